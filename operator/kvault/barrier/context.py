"""What a ciphertext is bound to: moving a row to another vault, kind, name or version breaks it."""

from __future__ import annotations

from dataclasses import dataclass, field

_SEP = "\x1f"  # unit separator: cannot appear in vault ids, kinds, names or versions


@dataclass(frozen=True, slots=True)
class Context:
    vault_id: str
    kind: str
    name: str
    version: str = ""
    #: Unambiguous bytes for use as AES-GCM associated data (computed once).
    aad: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        aad = _SEP.join((self.vault_id, self.kind, self.name, self.version)).encode()
        object.__setattr__(self, "aad", aad)
