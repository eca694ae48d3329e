"""No plaintext on disk: random markers never reach any file, in raw, base64 or hex form."""

from __future__ import annotations

import base64
import os
from pathlib import Path

from kvault.vault.service import Kvault


def _forms(marker: str) -> list[bytes]:
    raw = marker.encode()
    # Every base64 alignment, so a marker inside a longer encoded string is still found.
    b64 = {base64.b64encode(b"\0" * pad + raw)[4 if pad else 0 :][:-4] for pad in range(3)}
    urlsafe = {f.replace(b"+", b"-").replace(b"/", b"_") for f in b64}
    return sorted({raw, raw.hex().encode(), raw.hex().upper().encode(), *b64, *urlsafe})


def _scan(directory: Path, markers: list[str]) -> list[str]:
    leaks = []
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        data = path.read_bytes()
        for marker in markers:
            found = [form for form in _forms(marker) if form in data]
            if found:
                leaks.append(f"{path.name} holds {marker} as {found[0][:20]!r}")
    return leaks


async def test_no_marker_reaches_the_data_directory_or_audit_log(
    kv: Kvault, kv_factory: object, tmp_path: Path
) -> None:
    markers = [f"MARKER{os.urandom(12).hex()}" for _ in range(8)]
    await kv.secrets.set("v1", "a", markers[0], tags={"purpose": "scan"})
    await kv.secrets.set("v1", "a", markers[1])  # a new version
    await kv.secrets.set("v1", "b", markers[2] * 100)  # a long value
    await kv.secrets.set("v1", "c", f'{{"password": "{markers[3]}"}}', content_type="json")
    blob = await kv.secrets.backup("v1", "a")
    await kv.vaults.create("v2", retention_days=7)
    await kv.secrets.restore("v2", blob)
    await kv.secrets.delete("v1", "b")
    await kv.secrets.recover("v1", "b")
    await kv.secrets.delete("v1", "c")
    await kv.secrets.set("v1", "d", markers[4])
    await kv.secrets.update("v1", "d", enabled=False)
    await kv.secrets.set("v1", "e", markers[5])
    await kv.secrets.delete("v1", "e")
    await kv.secrets.purge("v1", "e")
    # Reads must not write plaintext anywhere either.
    assert (await kv.secrets.get("v1", "a")).value == markers[1]
    (tmp_path / "backup.blob").write_bytes(blob)  # what a user would keep as a backup file

    leaks = _scan(tmp_path, markers)  # while open: db, -wal, -shm, audit log
    await kv.close()
    leaks += _scan(tmp_path, markers)  # after close (checkpointed)
    assert leaks == []
    files = sorted(p.name for p in (tmp_path / "data").iterdir())
    assert files == ["audit.log", "kvault.db"] or set(files) <= {
        "audit.log",
        "kvault.db",
        "kvault.db-wal",
        "kvault.db-shm",
    }


def test_the_scanner_finds_what_it_looks_for(tmp_path: Path) -> None:
    marker = "MARKERdeadbeef"
    (tmp_path / "a").write_bytes(b"xx" + base64.b64encode(b"12" + marker.encode()) + b"yy")
    (tmp_path / "b").write_bytes(marker.encode().hex().encode())
    assert len(_scan(tmp_path, [marker])) == 2
