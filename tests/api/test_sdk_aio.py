"""The async SecretClient (aiohttp transport) against ``kvault server --dev``: every operation."""

from __future__ import annotations

from datetime import timedelta

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.keyvault.secrets.aio import SecretClient

from tests.api.conftest import unique
from tests.fixtures.devserver import DevServer


async def test_every_operation(aclient: SecretClient, dev_server: DevServer) -> None:
    name = unique("aio")
    first = await aclient.set_secret(name, "one", content_type="text/plain")
    second = await aclient.set_secret(name, "two", tags={"a": "b"})
    assert second.id == f"{dev_server.endpoint}/secrets/{name}/{second.properties.version}"
    assert (await aclient.get_secret(name)).value == "two"
    assert (await aclient.get_secret(name, first.properties.version)).value == "one"

    props = await aclient.update_secret_properties(name, enabled=False, tags={"c": "d"})
    assert (props.enabled, props.tags) == (False, {"c": "d"})
    with pytest.raises(HttpResponseError) as disabled:
        await aclient.get_secret(name)
    assert disabled.value.status_code == 403
    await aclient.update_secret_properties(name, enabled=True)

    for extra in range(3):
        await aclient.set_secret(name, f"v{extra}")
    pages = [
        [p.version async for p in page]
        async for page in aclient.list_properties_of_secret_versions(
            name, max_page_size=2
        ).by_page()
    ]
    assert [len(p) for p in pages] == [2, 2, 1]
    listed = [p.name async for p in aclient.list_properties_of_secrets(max_page_size=1)]
    assert name in listed

    blob = await aclient.backup_secret(name)

    deleted = await aclient.delete_secret(name)  # the aio client waits for the poller itself
    assert deleted.recovery_id == f"{dev_server.endpoint}/deletedsecrets/{name}"
    assert deleted.scheduled_purge_date is not None and deleted.deleted_date is not None
    assert deleted.scheduled_purge_date - deleted.deleted_date == timedelta(days=7)
    assert (await aclient.get_deleted_secret(name)).name == name
    assert name in [d.name async for d in aclient.list_deleted_secrets(max_page_size=1)]
    with pytest.raises(ResourceExistsError):
        await aclient.set_secret(name, "other")

    recovered = await aclient.recover_deleted_secret(name)
    assert recovered.name == name
    assert (await aclient.get_secret(name)).value == "v2"

    await aclient.delete_secret(name)
    await aclient.purge_deleted_secret(name)
    with pytest.raises(ResourceNotFoundError):
        await aclient.get_deleted_secret(name)

    restored = await aclient.restore_secret_backup(blob)
    assert restored.name == name
    assert (await aclient.get_secret(name)).value == "v2"
    assert (await aclient.get_secret(name, first.properties.version)).value == "one"
