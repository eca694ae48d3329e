"""Every replica serves under one CA, sealed in the shared storage (app/shared_ca.py)."""

from __future__ import annotations

from pathlib import Path

from kvault.app.shared_ca import ROW, shared_authority
from kvault.crypto.authority import CA_CERT, CA_KEY, CertificateAuthority
from kvault.hsm.software import SoftwareHSM
from kvault.storage.sqlite import SQLiteStorage
from kvault.vault.service import Kvault


async def _kvault(tmp_path: Path) -> Kvault:
    storage = SQLiteStorage(tmp_path / "shared" / "kvault.db")
    await storage.open()
    hsm = SoftwareHSM(key_file=tmp_path / "hsm.key")
    await hsm.open()
    return await Kvault.open(storage, hsm)


async def test_replicas_with_their_own_data_directories_share_one_ca(tmp_path: Path) -> None:
    kv = await _kvault(tmp_path)
    try:
        first = await shared_authority(kv.sealed, tmp_path / "pod-0" / "tls")
        second = await shared_authority(kv.sealed, tmp_path / "pod-1" / "tls")
        assert first.cert == second.cert
        assert (tmp_path / "pod-1" / "tls" / CA_CERT).read_bytes() == first.pems()[0]
        for pod in ("pod-0", "pod-1"):  # the key is sealed in storage, never on the volume
            assert not (tmp_path / pod / "tls" / CA_KEY).exists()
        stored = await kv.storage.get(ROW)
        assert stored is not None and first.pems()[1] not in stored.value
    finally:
        await kv.close()


async def test_the_ca_of_an_existing_data_directory_is_kept(tmp_path: Path) -> None:
    directory = tmp_path / "pod-0" / "tls"
    before = CertificateAuthority.load_or_create(directory)  # as an older kvault left it
    kv = await _kvault(tmp_path)
    try:
        kept = await shared_authority(kv.sealed, directory)
        assert kept.cert == before.cert
        assert not (directory / CA_KEY).exists()
        again = await shared_authority(kv.sealed, tmp_path / "pod-1" / "tls")
        assert again.cert == before.cert
    finally:
        await kv.close()
