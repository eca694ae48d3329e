"""The official azure-keyvault-secrets SecretClient (sync) against ``kvault server --dev``
over TLS: every operation, with the results the Key Vault API documents."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.keyvault.secrets import SecretClient

from tests.api.conftest import unique
from tests.fixtures.devserver import DevServer

HEX32 = re.compile(r"[0-9a-f]{32}")


def test_set_get_and_versions(client: SecretClient, dev_server: DevServer) -> None:
    name = unique()
    first = client.set_secret(name, "one")
    second = client.set_secret(
        name, "two", content_type="text/plain", tags={"team": "a"}, enabled=True
    )
    endpoint = dev_server.endpoint
    assert second.id == f"{endpoint}/secrets/{name}/{second.properties.version}"
    assert HEX32.fullmatch(second.properties.version or "")
    assert second.properties.vault_url == endpoint
    assert second.value == "two"
    assert second.properties.content_type == "text/plain"
    assert second.properties.tags == {"team": "a"}
    assert second.properties.enabled is True
    assert second.properties.recovery_level == "CustomizedRecoverable+Purgeable"
    assert second.properties.recoverable_days == 7
    assert second.properties.created_on is not None
    assert second.properties.updated_on == second.properties.created_on

    latest = client.get_secret(name)
    assert (latest.value, latest.properties.version) == ("two", second.properties.version)
    older = client.get_secret(name, first.properties.version)
    assert older.value == "one"
    assert older.properties.content_type is None and older.properties.tags is None


def test_dates_round_trip(client: SecretClient) -> None:
    name = unique()
    created = client.set_secret(name, "v")
    assert created.properties.created_on is not None
    nbf = created.properties.created_on - timedelta(days=1)
    exp = created.properties.created_on + timedelta(days=30)
    updated = client.update_secret_properties(name, not_before=nbf, expires_on=exp)
    assert (updated.not_before, updated.expires_on) == (nbf, exp)
    got = client.get_secret(name)
    assert (got.properties.not_before, got.properties.expires_on) == (nbf, exp)


def test_update_properties_and_disable(client: SecretClient) -> None:
    name = unique()
    s = client.set_secret(name, "value")
    props = client.update_secret_properties(
        name, s.properties.version, content_type="application/json", tags={"k": "v"}
    )
    assert props.version == s.properties.version
    assert props.content_type == "application/json"
    assert props.tags == {"k": "v"}
    props = client.update_secret_properties(name, enabled=False)
    assert props.enabled is False
    with pytest.raises(HttpResponseError) as err:
        client.get_secret(name)
    assert err.value.status_code == 403
    assert err.value.error is not None and err.value.error.code == "Forbidden"
    client.update_secret_properties(name, enabled=True)
    assert client.get_secret(name).value == "value"


def test_list_secrets_and_versions_across_pages(client: SecretClient) -> None:
    names = sorted(unique("page") for _ in range(5))
    for n in names:
        client.set_secret(n, "x")
    pages = list(client.list_properties_of_secrets(max_page_size=2).by_page())
    listed = [p.name for page in pages for p in page]
    assert set(names) <= set(listed)
    assert len(listed) == len(set(listed))  # no item twice across pages
    assert len(pages) >= 3
    item = next(p for p in client.list_properties_of_secrets() if p.name == names[0])
    assert item.id == f"{client.vault_url}/secrets/{names[0]}" and item.version is None

    versions = [client.set_secret(names[0], f"v{i}").properties.version for i in range(4)]
    vpages = list(client.list_properties_of_secret_versions(names[0], max_page_size=2).by_page())
    listed_versions = [p.version for page in vpages for p in page]
    assert len(vpages) == 3  # 5 versions, 2 per page
    assert set(versions) < set(listed_versions) and len(listed_versions) == 5


def test_delete_recover_purge(client: SecretClient, dev_server: DevServer) -> None:
    name = unique()
    client.set_secret(name, "keep me")
    poller = client.begin_delete_secret(name)
    deleted = poller.result()
    poller.wait()
    assert poller.done()
    assert deleted.name == name
    assert deleted.recovery_id == f"{dev_server.endpoint}/deletedsecrets/{name}"
    assert deleted.deleted_date is not None and deleted.scheduled_purge_date is not None
    assert deleted.scheduled_purge_date - deleted.deleted_date == timedelta(days=7)

    with pytest.raises(ResourceNotFoundError):
        client.get_secret(name)
    again = client.get_deleted_secret(name)
    assert (again.recovery_id, again.deleted_date) == (deleted.recovery_id, deleted.deleted_date)
    assert name in [d.name for d in client.list_deleted_secrets()]
    with pytest.raises(ResourceExistsError):  # deleted but recoverable: the name is taken
        client.set_secret(name, "other")

    recover = client.begin_recover_deleted_secret(name)
    recovered = recover.result()
    recover.wait()
    assert recovered.name == name
    assert client.get_secret(name).value == "keep me"

    client.begin_delete_secret(name).wait()
    client.purge_deleted_secret(name)  # 204
    with pytest.raises(ResourceNotFoundError):
        client.get_deleted_secret(name)
    assert client.set_secret(name, "fresh").value == "fresh"


def test_backup_restore_round_trip(client: SecretClient) -> None:
    name = unique()
    v1 = client.set_secret(name, "one").properties.version
    v2 = client.set_secret(name, "two", tags={"t": "1"}).properties.version
    blob = client.backup_secret(name)
    assert isinstance(blob, bytes) and b"two" not in blob

    with pytest.raises(ResourceExistsError):
        client.restore_secret_backup(blob)
    client.begin_delete_secret(name).wait()
    client.purge_deleted_secret(name)

    restored = client.restore_secret_backup(blob)
    assert (restored.name, restored.version, restored.tags) == (name, v2, {"t": "1"})
    assert client.get_secret(name).value == "two"
    assert client.get_secret(name, v1).value == "one"

    with pytest.raises(HttpResponseError) as err:
        client.restore_secret_backup(blob[:-4] + b"abcd")
    assert err.value.status_code == 400
    assert err.value.error is not None and err.value.error.code == "BadParameter"


def test_restore_over_a_live_secret_of_other_versions_is_409(client: SecretClient) -> None:
    """Azure answers 409 Conflict when the name is taken, whatever versions it holds; the
    live secret is left as it was."""
    name = unique()
    client.set_secret(name, "backed-up")
    blob = client.backup_secret(name)
    client.begin_delete_secret(name).wait()
    client.purge_deleted_secret(name)
    live = client.set_secret(name, "live")
    with pytest.raises(ResourceExistsError) as err:
        client.restore_secret_backup(blob)
    assert err.value.status_code == 409
    assert err.value.error is not None and err.value.error.code == "Conflict"
    assert client.get_secret(name).value == "live"
    versions = [p.version for p in client.list_properties_of_secret_versions(name)]
    assert versions == [live.properties.version]


def test_errors_have_the_azure_shape(client: SecretClient) -> None:
    with pytest.raises(ResourceNotFoundError) as missing:
        client.get_secret(unique("missing"))
    assert missing.value.error is not None and missing.value.error.code == "SecretNotFound"
    with pytest.raises(HttpResponseError) as bad:
        client.set_secret("not_a_valid_name", "x")
    assert bad.value.status_code == 400
    assert bad.value.error is not None and bad.value.error.code == "BadParameter"
    assert "name" in (bad.value.error.message or "")
