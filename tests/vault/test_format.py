"""The persisted format does not move: row keys, barrier contexts and record bytes are
exactly those the first release wrote (the literals below came from that code), so existing
data directories open and read."""

from __future__ import annotations

from kvault.barrier import rows
from kvault.barrier.context import Context
from kvault.vault import layout
from kvault.vault.items.records import HeadRecord, VersionRecord
from kvault.vault.secrets import SECRET, SecretMeta

V0 = "0" * 32
META = SecretMeta(
    name="Db-Pass",
    version=V0,
    enabled=True,
    created=1,
    updated=2,
    expires=9,
    content_type="text/plain",
    tags={"env": "prod"},
)
VERSION = (
    b'{"contentType":"text/plain","created":1,"enabled":true,"exp":9,"name":"Db-Pass",'
    b'"nbf":null,"tags":{"env":"prod"},"updated":2,"value":"hunter2","version":"'
    + V0.encode()
    + b'"}'
)
DELETED = (
    b'{"contentType":"text/plain","created":1,"deletedDate":5,"enabled":true,"exp":9,'
    b'"name":"Db-Pass","nbf":null,"scheduledPurgeDate":6,"tags":{"env":"prod"},"updated":2,'
    b'"version":"' + V0.encode() + b'"}'
)


def test_row_keys_and_contexts_are_unchanged() -> None:
    assert layout.vault_row("v1") == ("sys/vault/v1", Context("sys", "vault", "v1"))
    assert rows.keyring("id") == "sys/kek/id"
    assert rows.SIGNING_KEY == "sys/identity/signing-key"
    assert layout.head_row("id", "db") == ("v/id/s/db", Context("id", "secret", "db"))
    assert layout.version_row("id", "db", V0) == (
        f"v/id/sv/db/{V0}",
        Context("id", "secret-version", "db", V0),
    )
    assert layout.deleted_row("id", "db") == ("v/id/ds/db", Context("id", "deleted-secret", "db"))
    assert layout.vault_prefix("id") == "v/id/"


def test_secret_records_encode_and_decode_as_before() -> None:
    codec = SECRET.codec
    assert codec.encode_version(VersionRecord(META, "hunter2")) == VERSION
    assert codec.decode_version(VERSION) == VersionRecord(META, "hunter2")
    assert codec.encode_head(HeadRecord(META, 5, 6)) == DELETED
    assert codec.decode_head(DELETED) == HeadRecord(META, 5, 6)
