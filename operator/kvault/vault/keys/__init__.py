"""Keys: the second item kind on the items engine, with cryptographic operations.

- :mod:`.kind` — a key version's metadata (``kty``, ``key_ops``) and value (public JWK,
  private material or HSM handle) as the engine stores them.
- :mod:`.material` — where private key material lives: sealed in the version record
  (software keys) or inside the HSM (``-HSM`` keys on premium vaults).
- :mod:`.policies` — rotation policy rows.
- :mod:`.keys` — :class:`~.keys.Keys`: create, import, rotate, update, the cryptographic
  operations, rotation policies, random bytes.
"""

from kvault.vault.keys.keys import KEY, Keys

__all__ = ["KEY", "Keys"]
