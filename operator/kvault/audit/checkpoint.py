"""Checkpoints: the audit chain's head, sealed under the HSM root and kept outside the file.

The hash chain shows a line edited, removed or reordered, but not a tail cut off (or the
whole file emptied): what is left still chains. A checkpoint says "the file held ``lines``
lines and the last one hashed to ``head`` at ``time``", sealed with a key wrapped by the HSM
root (:meth:`kvault.barrier.barrier.Barrier.seal_portable`), so no one without the HSM can
make one. Published where whoever can write the audit volume cannot also rewrite it (a
ConfigMap in the cluster), a checkpoint lets ``kvault audit verify FILE --checkpoint CP``
report a cut tail: fewer lines than the checkpoint counts, or another line at its place.

What it does not show: lines cut after the last published checkpoint (checkpoints are
published every minute and at shutdown), and a checkpoint replaced by an older one by
someone who can also write where it is published.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from kvault.audit.chain import canonical
from kvault.errors import IntegrityError

PURPOSE = "audit-checkpoint"


class Sealer(Protocol):
    """Seals and opens under the HSM root (the barrier's portable sealing)."""

    async def seal_portable(self, purpose: str, plaintext: bytes) -> bytes: ...

    async def open_portable(self, purpose: str, blob: bytes) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The file named ``file`` held ``lines`` lines at ``time``; the last hashed to ``head``."""

    file: str
    lines: int
    head: str
    time: str

    async def sealed(self, sealer: Sealer) -> dict[str, Any]:
        """The published form: the fields in the clear (for people) and ``seal`` (for verify)."""
        blob = await sealer.seal_portable(PURPOSE, canonical(asdict(self)))
        return {**asdict(self), "seal": base64.b64encode(blob).decode()}

    @classmethod
    async def opened(cls, doc: Any, sealer: Sealer) -> Checkpoint:
        """The checkpoint a published form seals; :class:`IntegrityError` if it was not made
        under this HSM root, or its clear fields were changed."""
        try:
            blob = base64.b64decode(doc["seal"], validate=True)
            fields = json.loads(await sealer.open_portable(PURPOSE, blob))
            checkpoint = cls(
                str(fields["file"]), int(fields["lines"]), str(fields["head"]), str(fields["time"])
            )
        except (KeyError, TypeError, ValueError, binascii.Error):
            raise IntegrityError("not an audit checkpoint, or a damaged one") from None
        if {k: v for k, v in doc.items() if k != "seal"} != asdict(checkpoint):
            raise IntegrityError("the checkpoint's fields differ from what its seal holds")
        return checkpoint


def against(path: Path, checkpoint: Checkpoint) -> str | None:
    """Why the file at ``path`` is not a continuation of what ``checkpoint`` saw, or ``None``."""
    seen = 0
    with path.open("rb") as f:
        for raw in f:
            if not raw.strip():
                continue
            seen += 1
            if seen == checkpoint.lines:
                try:
                    head = json.loads(raw).get("hash")
                except (ValueError, AttributeError):
                    head = None
                if head != checkpoint.head:
                    return (
                        f"line {seen} is not the one the checkpoint of {checkpoint.time} saw "
                        "(the file was rewritten)"
                    )
                return None
    if checkpoint.lines == 0:
        return None
    return (
        f"cut tail: the checkpoint of {checkpoint.time} counts {checkpoint.lines} lines, "
        f"the file has {seen}"
    )
