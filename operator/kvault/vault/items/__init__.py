"""One engine for every item kind (secrets today; keys and certificates next).

- :mod:`.kind` — :class:`~.kind.ItemKind`: a kind as data (names, record codec, value and
  attribute validation, views, Azure error codes, operation names, links).
- :mod:`.records` — the plaintext rows of any kind (version, head, deleted) and their codec.
- :mod:`.engine` — :class:`~.engine.Items`, the engine: set, get, list, versions, update;
  on top of :mod:`.lifecycle` (soft delete, recover, purge, backup/restore) and :mod:`.base`
  (rows read and decoded, paging, the compare-and-set retry, the authorisation step).
- :mod:`.paging` — page sizes and continuation tokens.

A new kind is a module like :mod:`kvault.vault.secrets`: an :class:`~.records.ItemMeta`
subclass for its own metadata fields, a value codec, an ``ItemKind`` and a thin subclass of
``Items`` whose ``set``/``update`` spell the kind's keyword arguments; its row prefixes go
in :data:`kvault.barrier.rows.ITEM_ROWS`, its data actions in
:data:`kvault.identity.rbac.KIND_ACTIONS`, and :class:`kvault.vault.service.Kvault` lists
its engine in ``kinds`` (which gives it authorisation, item counts and the change feed).

Cross-kind links. A certificate owns a key and a secret of its name (Azure's "managed"
key and secret: the certificate's private key and its PFX/PEM bundle). The owning kind says
so with ``links=(Link("key"), Link("secret"))``; the rule for the engine is that an
operation on the owner that changes the item's life (delete, recover, purge, backup,
restore) stages the same change of each linked item in the *same* :class:`Txn
<kvault.barrier.view.Txn>` (one atomic commit, so no crash leaves a certificate without its
key), and that a linked item refuses ``set``/``update``/``delete`` through its own kind
while its owner exists (its head record will carry ``managed``). The engine's row helpers
are per kind and take the vault and the lower-cased name, so a linked kind's rows are
reachable from the owner's transaction without any new storage path. Nothing links yet.
"""
