"""Whole-vault backup and restore in the domain (``vault/wholebackup.py``, the file format in
``vault/backupfile.py``): every row of every kind comes back byte for byte under the target's
own keys, settings and role assignments with it; a file that is altered anywhere, cut short,
reordered, foreign or opened with the wrong passphrase restores nothing; only administrators
may run either; HSM-held keys restore only where their HSM objects still are."""

from __future__ import annotations

import base64
import io
import json
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from kvault.app.backends import AUDIT_FILE, open_kvault
from kvault.errors import BadParameter, Conflict, ForbiddenByRbac, NotFound
from kvault.hsm.registry import load
from kvault.identity import rbac
from kvault.identity.model import Principal, RoleAssignment
from kvault.vault import backupfile as bf
from kvault.vault import layout
from kvault.vault.changes import Change
from kvault.vault.core import Caller
from kvault.vault.keys.operations import KeyInput
from kvault.vault.service import Kvault
from kvault.vault.wholebackup import ByteSource, WholeVault

PASS = "correct horse battery staple"
SELF = {"issuer": {"name": "Self"}, "x509_props": {"subject": "CN=web"}}
ADMIN = Principal("system:serviceaccount:team-a:admin")
OFFICER = Principal("system:serviceaccount:team-a:officer")
ASSIGNMENTS = (
    RoleAssignment("team-a/admin", "Key Vault Administrator"),
    RoleAssignment("team-a/officer", "Key Vault Secrets Officer"),
    RoleAssignment("team-a/app", "Key Vault Secrets User", "/secrets/db"),
)
VALUES = ("first-value-1", "second-value-2", "deleted-value-3", "disabled-value-4")


async def _open(path: Path) -> Kvault:
    return await open_kvault(path / "data", load("software", {"key_file": str(path / "hsm.key")}))


@pytest.fixture
async def kv(tmp_path: Path) -> AsyncIterator[Kvault]:
    kv = await _open(tmp_path / "a")
    yield kv
    await kv.close()


@pytest.fixture
async def other(tmp_path: Path) -> AsyncIterator[Kvault]:
    """Another installation: its own storage and its own HSM root key."""
    kv = await _open(tmp_path / "b")
    yield kv
    await kv.close()


async def _fill(kv: Kvault, name: str = "src") -> None:
    """A vault with something in every row class."""
    await kv.vaults.create(
        name, sku="premium", retention_days=30, purge_protection=False, role_assignments=ASSIGNMENTS
    )
    await kv.secrets.set(name, "db", VALUES[0], content_type="text/plain", tags={"env": "prod"})
    await kv.secrets.set(name, "db", VALUES[1], expires=4_000_000_000)
    await kv.secrets.set(name, "gone", VALUES[2])
    await kv.secrets.delete(name, "gone")
    await kv.secrets.set(name, "off", VALUES[3], enabled=False, not_before=1_700_000_000)
    for i in range(12):
        await kv.secrets.set(name, f"bulk-{i}", f"bulk-value-{i}")
    await kv.keys.create(name, "sig", "EC", crv="P-256")
    await kv.keys.rotate(name, "sig")
    await kv.keys.set_rotation_policy(
        name,
        "sig",
        {
            "lifetimeActions": [
                {"trigger": {"timeAfterCreate": "P90D"}, "action": {"type": "Rotate"}}
            ]
        },
    )
    await kv.keys.create(name, "old", "RSA", size=2048)
    await kv.keys.delete(name, "old")
    await kv.certificates.create(name, "web", SELF)
    web = await kv.certificates.get(name, "web")
    info = await kv.vault(name)
    await kv.certificates.mark_done(info, "web", web.properties.version, "EmailContacts")
    await kv.certificates.create(name, "retired", SELF)
    await kv.certificates.delete(name, "retired")
    await kv.certificates.create(name, "csr", {**SELF, "issuer": {"name": "Unknown"}})
    await kv.certificates.set_contacts(name, [{"email": "ops@example.com", "name": "Ops"}])
    await kv.certificates.set_issuer(name, "ext", {"provider": "DigiCert"})


def _source(data: bytes, piece: int = 1000) -> ByteSource:
    buf = io.BytesIO(data)

    async def read(n: int) -> bytes:
        return buf.read(min(n, piece))

    return read


async def _file(kv: Kvault, vault: str = "src", **kw: Any) -> bytes:
    sealed = await WholeVault(kv).backup(vault, **kw)
    return sealed.preamble + b"".join(sealed.frames())


async def _rows(kv: Kvault, vault: str) -> list[tuple[str, bytes]]:
    """Every row of the vault, opened: (key below the vault's prefix, plaintext)."""
    info = await kv.vault(vault)
    found = await kv.core.store.scan(
        layout.vault_prefix(info.id), lambda s: WholeVault(kv)._context(info.id, s)
    )
    return [(r.suffix, r.plaintext) for r in found]


def _frames(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of each chunk frame in the file."""
    splitter = bf.Splitter()
    splitter.feed(data)
    assert splitter.header is not None
    start = len(splitter.header.raw) + bf.TAG
    out = []
    while start < len(data):
        (length,) = bf._U32.unpack_from(data, start + 5)
        out.append((start, start + bf.FRAME_HEAD + length))
        start += bf.FRAME_HEAD + length
    return out


# -- round trips ---------------------------------------------------------------------------------


@pytest.mark.parametrize("passphrase", [None, PASS], ids=["hsm-root", "passphrase"])
async def test_every_row_comes_back_identical(
    kv: Kvault, other: Kvault, passphrase: str | None
) -> None:
    await _fill(kv)
    sealed = await WholeVault(kv).backup("src", passphrase=passphrase, chunk_records=5)
    data = sealed.preamble + b"".join(sealed.frames())
    header = sealed.header
    assert header.chunks > 3 and header.records == len(await _rows(kv, "src"))
    assert all(header.counts[label] > 0 for label in header.counts), header.counts
    for value in VALUES:  # sealed: no value in the clear, nor in the header
        assert value.encode() not in data
    target = kv if passphrase is None else other  # another installation needs the passphrase
    restored = await WholeVault(target).restore("copy", _source(data), passphrase=passphrase)
    assert restored.created and restored.settings_restored
    assert restored.digest == header.digest and restored.records == header.records
    assert await _rows(target, "copy") == await _rows(kv, "src")
    copy, src = await target.vault("copy"), await kv.vault("src")
    assert copy.id != src.id
    assert (copy.sku, copy.retention_days, copy.purge_protection, copy.role_assignments) == (
        src.sku,
        src.retention_days,
        src.purge_protection,
        src.role_assignments,
    )
    # The content digest does not depend on the vault, its keys or the chunking.
    again = await WholeVault(target).backup("copy", chunk_records=1000)
    assert again.header.digest == header.digest and again.header.chunks == 1
    # And the restored vault works: values, old versions, deleted items, keys, certificates.
    assert (await target.secrets.get("copy", "db")).value == VALUES[1]
    versions = await target.secrets.list_versions("copy", "db")
    assert len(versions.items) == 2
    assert (await target.secrets.get_deleted("copy", "gone")).properties.name == "gone"
    await target.secrets.recover("copy", "gone")
    assert (await target.secrets.get("copy", "gone")).value == VALUES[2]
    signed = await target.keys.operate("copy", "sig", "", "Sign", "ES256", KeyInput(b"\0" * 32))
    assert signed.value
    assert (await target.certificates.get("copy", "web")).cer
    assert (await target.certificates.get_operation("copy", "csr")).status == "inProgress"
    assert [i.name for i in await target.certificates.list_issuers("copy")] == ["ext"]


async def test_restore_into_an_existing_empty_vault(kv: Kvault) -> None:
    await _fill(kv)
    data = await _file(kv)
    await kv.vaults.create("empty", retention_days=7)
    restored = await WholeVault(kv).restore("empty", _source(data))
    assert not restored.created and restored.settings_restored
    info = await kv.vault("empty")
    assert (info.sku, info.retention_days, info.role_assignments) == ("premium", 30, ASSIGNMENTS)
    assert await _rows(kv, "empty") == await _rows(kv, "src")


async def test_a_vault_administrator_restores_items_but_not_role_assignments(kv: Kvault) -> None:
    await _fill(kv)
    data = await _file(kv)
    mine = (RoleAssignment("team-a/admin", "Key Vault Administrator"),)
    await kv.vaults.create("team", role_assignments=mine)
    admin = Caller.of(ADMIN, "r1")
    restored = await WholeVault(kv).restore("team", _source(data), caller=admin)
    assert not restored.settings_restored
    info = await kv.vault("team")
    assert info.role_assignments == mine and info.sku == "standard"
    assert len(await _rows(kv, "team")) == restored.records
    # Creating a vault is not theirs: a missing one is not found.
    with pytest.raises(NotFound):
        await WholeVault(kv).restore("new-one", _source(data), caller=admin)
    assert await kv.vaults.find("new-one") is None


async def test_an_empty_vault_backs_up_and_restores(kv: Kvault, other: Kvault) -> None:
    await kv.vaults.create("bare", role_assignments=ASSIGNMENTS[:1])
    data = await _file(kv, "bare", passphrase=PASS)
    restored = await WholeVault(other).restore("bare", _source(data), passphrase=PASS)
    assert restored.records == 0 and restored.created
    assert (await other.vault("bare")).role_assignments == ASSIGNMENTS[:1]


# -- refusals that restore nothing -------------------------------------------------------------


async def _refused(kv: Kvault, data: bytes, vault: str = "copy", **kw: Any) -> str:
    with pytest.raises(BadParameter) as caught:
        await WholeVault(kv).restore(vault, _source(data, 777), **kw)
    assert await kv.vaults.find(vault) is None, "a refused restore left a vault behind"
    return caught.value.message


async def test_any_altered_byte_is_refused(kv: Kvault) -> None:
    await _fill(kv)
    data = await _file(kv, chunk_records=6)
    frames = _frames(data)
    preamble = frames[0][0]
    rng = random.Random(13)
    positions = set(range(preamble))  # magic, header, check tag: every byte
    for start, end in frames:  # each frame's head, the edges of its ciphertext, a sample
        positions |= set(range(start, start + bf.FRAME_HEAD + 2)) | {end - 1, end - 17}
        positions |= set(rng.sample(range(start, end), 8))
    messages = set()
    for pos in sorted(positions):
        altered = bytearray(data)
        altered[pos] ^= 0x20
        messages.add(await _refused(kv, bytes(altered)))
    assert any("chunk" in m and "failed authentication" in m for m in messages), messages
    assert any("header" in m for m in messages), messages
    assert all(v not in m for m in messages for v in VALUES)


async def test_a_truncated_or_rearranged_file_is_refused(kv: Kvault) -> None:
    await _fill(kv)
    data = await _file(kv, passphrase=PASS, chunk_records=6)
    frames = _frames(data)
    assert len(frames) >= 4
    cuts = [0, 5, frames[0][0] - 1, frames[0][0]] + [end for _, end in frames[:-1]]
    cuts += [start + 3 for start, _ in frames] + [len(data) - 1]
    for cut in cuts:
        message = await _refused(kv, data[:cut], passphrase=PASS)
        assert "truncated" in message or "damaged" in message, (cut, message)
    last = await _refused(kv, data[: frames[-1][0]], passphrase=PASS)
    assert f"after {len(frames) - 1} of its {len(frames)} chunks" in last
    (a0, a1), (b0, b1) = frames[1], frames[2]
    swapped = data[:a0] + data[b0:b1] + data[a0:a1] + data[b1:]
    dropped = data[:a0] + data[a1:]
    doubled = data[:a1] + data[a0:]
    for bad in (swapped, dropped, doubled, data + b"\0", data + data[a0:a1]):
        await _refused(kv, bad, passphrase=PASS)
    # A chunk of another backup (same passphrase, same vault) does not fit either.
    second = await _file(kv, passphrase=PASS, chunk_records=6)
    c0, c1 = _frames(second)[1]
    await _refused(kv, data[:a0] + second[c0:c1] + data[a1:], passphrase=PASS)


async def test_wrong_passphrase_missing_passphrase_and_foreign_root(
    kv: Kvault, other: Kvault
) -> None:
    await _fill(kv)
    sealed_pw = await _file(kv, passphrase=PASS)
    message = await _refused(kv, sealed_pw, passphrase="not the passphrase at all")
    assert "passphrase is wrong" in message
    assert "--passphrase-file" in await _refused(kv, sealed_pw)
    sealed_root = await _file(kv)
    message = await _refused(other, sealed_root)
    assert "HSM root" in message and "--passphrase-file" in message
    assert "not with a passphrase" in await _refused(kv, sealed_root, passphrase=PASS)
    assert "not a kvault vault backup" in await _refused(kv, b"PK\x03\x04 a zip file")
    assert "truncated" in await _refused(kv, b"")


async def test_a_crafted_passphrase_file_is_checked_record_by_record(kv: Kvault) -> None:
    """Whoever knows the passphrase can write a file: its records are checked as kvault's own
    rows would be (each names its own row, reads back), before anything is written."""
    await _fill(kv)
    rows = await _rows(kv, "src")
    info = await kv.vault("src")
    from kvault.vault.wholebackup import settings_doc

    def forged(rows: list[tuple[str, bytes]], settings: dict[str, Any] | None = None) -> bytes:
        settings = settings or settings_doc(info)
        digest = bf.Digest(settings)
        for k, v in rows:
            digest.row(k, v)
        seal = bf.scrypt_seal()
        key = bf.derive(PASS, seal)
        header = bf.header_bytes(
            {
                "format": bf.KIND,
                "version": bf.FORMAT,
                "vault": "src",
                "created": 0,
                "records": len(rows),
                "chunks": 1,
                "counts": WholeVault(kv)._rows.labels()
                | {
                    c.label: sum(1 for k, _ in rows if k.startswith(c.prefix))
                    for c in WholeVault(kv)._rows.classes
                },
                "digest": digest.hexdigest(),
                "seal": seal,
            }
        )
        frame = bf.ChunkSealer(key, header).seal(
            0, len(rows), bf.chunk_plaintext(rows, settings), True
        )
        return header + bf.check_tag(key, header) + frame

    # The honest rows go in (the forger's own tool works) ...
    restored = await WholeVault(kv).restore("forged", _source(forged(rows)), passphrase=PASS)
    assert restored.records == len(rows)
    # ... but a record moved to another item's row, an unknown row, a malformed record, rows
    # out of order, or bad settings do not.
    secret = next(i for i, (k, _) in enumerate(rows) if k.startswith("sv/db/"))
    moved = list(rows)
    moved[secret] = ("sv/dc/" + rows[secret][0].split("/")[2], rows[secret][1])
    moved.sort()
    junk = list(rows)
    junk[secret] = (rows[secret][0], b'{"name": "db"}')
    unknown = sorted([*rows, ("zz/x", b"{}")])
    cases = [moved, junk, unknown, list(reversed(rows))]
    for case in cases:
        await _refused(kv, forged(case), passphrase=PASS)
    bad_role = {
        **settings_doc(info),
        "roleAssignments": [{"principal": "x", "role": "God", "scope": "/"}],
    }
    assert "settings" in await _refused(kv, forged(rows, bad_role), passphrase=PASS)


async def test_restore_refuses_a_vault_that_holds_anything(kv: Kvault) -> None:
    await _fill(kv)
    data = await _file(kv)
    await kv.vaults.create("busy")
    await kv.secrets.set("busy", "x", "y")
    await kv.secrets.delete("busy", "x")  # a deleted item counts too
    whole = WholeVault(kv)
    with pytest.raises(Conflict, match="not empty"):
        await whole.check("busy", "VaultRestore")
    with pytest.raises(Conflict, match="not empty"):
        await whole.restore("busy", _source(data))
    assert len(await _rows(kv, "busy")) == 2  # the deleted secret and its version, no more
    await kv.vaults.delete("busy")
    with pytest.raises(Conflict, match="deleted but recoverable"):
        await whole.restore("busy", _source(data))


async def test_a_restore_that_loses_the_race_writes_nothing(
    kv: Kvault, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _fill(kv)
    data = await _file(kv)
    await kv.vaults.create("target")
    store = kv.core.store
    real = store.commit

    async def racing(txn: Any) -> None:  # someone writes the vault record just before us
        monkeypatch.setattr(store, "commit", real)
        await kv.vaults.update("target", role_assignments=ASSIGNMENTS[:1])
        await real(txn)

    monkeypatch.setattr(store, "commit", racing)
    with pytest.raises(Conflict, match="changed while"):
        await WholeVault(kv).restore("target", _source(data))
    assert await _rows(kv, "target") == []


# -- who may, and what is written down -----------------------------------------------------------


def test_only_the_administrator_role_holds_the_vault_actions() -> None:
    for operation in ("VaultBackup", "VaultRestore"):
        action = rbac.data_action(operation)
        assert action.startswith("Microsoft.KeyVault/vaults/kvault/")
        allowed = {role for role in rbac.ROLES if rbac.role_allows(role, action)}
        assert allowed == {"Key Vault Administrator"}, (operation, allowed)


async def test_denials_are_audited_and_nothing_leaks_into_the_audit_log(
    kv: Kvault, tmp_path: Path
) -> None:
    await _fill(kv)
    whole = WholeVault(kv)
    officer = Caller.of(OFFICER, "denied-1")
    with pytest.raises(ForbiddenByRbac):
        await whole.check("src", "VaultBackup", caller=officer)
    with pytest.raises(ForbiddenByRbac):
        await whole.backup("src", caller=officer)
    await kv.vaults.create("dst", role_assignments=ASSIGNMENTS)
    with pytest.raises(ForbiddenByRbac):
        await whole.check("dst", "VaultRestore", caller=officer)
    admin = Caller.of(ADMIN, "allowed-1")
    data = await _file(kv, caller=admin, passphrase=PASS)
    changes: list[Change] = []
    kv.subscribe(changes.append)
    await whole.restore("dst", _source(data), passphrase=PASS, caller=admin)
    assert changes[-1] == Change("dst", "VaultRestore")
    log = (tmp_path / "a" / "data" / AUDIT_FILE).read_text()
    lines = [json.loads(line) for line in log.splitlines()]
    mine = [
        (ln["operation"], ln["vault"], ln["outcome"])
        for ln in lines
        if ln["request_id"] in ("denied-1", "allowed-1")
    ]
    assert mine == [
        ("VaultBackup", "src", "ForbiddenByRbac"),
        ("VaultBackup", "src", "ForbiddenByRbac"),
        ("VaultRestore", "dst", "ForbiddenByRbac"),
        ("VaultBackup", "src", "ok"),
        ("VaultRestore", "dst", "committing"),
        ("VaultRestore", "dst", "ok"),
    ]
    for secret in (*VALUES, PASS, base64.b64encode(PASS.encode()).decode()):
        assert secret not in log


async def test_a_short_passphrase_is_refused_for_a_new_backup(kv: Kvault) -> None:
    await kv.vaults.create("v")
    with pytest.raises(BadParameter, match="shorter than 12"):
        await WholeVault(kv).backup("v", passphrase="short")


# -- HSM-held keys ---------------------------------------------------------------------------------


async def test_hsm_held_keys_stay_with_their_hsm(
    kv: Kvault, other: Kvault, monkeypatch: pytest.MonkeyPatch
) -> None:
    await kv.vaults.create("prem", sku="premium")
    await kv.keys.create("prem", "held", "EC-HSM", crv="P-256")
    with pytest.raises(BadParameter, match="HSM-held key held"):
        await WholeVault(kv).backup("prem", passphrase=PASS)
    data = await _file(kv, "prem")
    # Where the HSM objects are, the key restores (and works) ...
    restored = await WholeVault(kv).restore("prem-copy", _source(data))
    assert restored.records == 2
    signed = await kv.keys.operate("prem-copy", "held", "", "Sign", "ES256", KeyInput(b"1" * 32))
    assert signed.value
    # ... another installation's HSM does not hold them ...
    assert "HSM root" in await _refused(other, data)

    # ... and where the plugin says an object is gone (a pkcs11 token after a purge; the
    # software plugin's handles are sealed keys that never go), the restore writes nothing.
    async def gone(value: Any) -> bool:
        return False

    monkeypatch.setattr(kv.keys.material, "usable", gone)
    message = await _refused(kv, data, "prem-2")
    assert "HSM-held key held, which no longer exists" in message
