"""Keys: the second item kind on the items engine, with cryptographic operations.

- :mod:`.kind` — a key version's metadata (``kty``, ``key_ops``) and value (public JWK,
  private material or HSM handle) as the engine stores them.
- :mod:`.material` — where private key material lives: sealed in the version record
  (software keys) or inside the HSM (``-HSM`` keys on premium vaults); the one place it is
  used.
- :mod:`.base` — what the parts share (material, operation names, JOSE errors as 400s).
- :mod:`.keys` — :class:`~.keys.Keys`: create, import, rotate, update, delete and purge
  (which destroys HSM objects), built from :mod:`.operations` (encrypt, decrypt, sign,
  verify, wrap, unwrap, random bytes) and :mod:`.schedules` (rotation policy operations).
- :mod:`.rotation` (policies and their schedule, pure), :mod:`.policies` (the policy row),
  :mod:`.scheduler` (the active replica's loop that rotates and notifies when due).
"""

from kvault.vault.keys.keys import KEY, Keys

__all__ = ["KEY", "Keys"]
