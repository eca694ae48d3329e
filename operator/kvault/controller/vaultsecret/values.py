"""What a source projects under one Secret key: text, or a :class:`Binary` value whose bytes
are settled only when the Secret is written."""

from __future__ import annotations

from typing import Protocol, TypeAlias, runtime_checkable


@runtime_checkable
class Binary(Protocol):
    """A binary value whose encoding is not a function of its content: a PKCS#12 keystore is
    salted at random, so encoding the same key, certificates and password twice gives two
    different files. ``settle`` gives the bytes to write, from what the Secret holds under
    that key now (``current``, ``None`` when nothing): those same bytes when they already
    hold this content, else a new encoding. So a reconcile that read nothing new leaves the
    Secret, its content hash and the workloads alone.

    Templates pass a binary value on only whole (``{{ .keystore.p12 }}``); its ``repr``
    shows no material."""

    def settle(self, current: bytes | None) -> bytes:
        """The bytes to write under this value's key (``current`` when it holds this)."""
        ...


#: A projected value: text, or bytes settled when the Secret is written.
Value: TypeAlias = str | Binary
