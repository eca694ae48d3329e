"""Read what a plan names, as its identity: every item authorised before any is read, so a
denial reads nothing."""

from __future__ import annotations

from kvault.controller.vaultsecret.access import authorize
from kvault.controller.vaultsecret.identity import principal_for
from kvault.controller.vaultsecret.outcome import Refused
from kvault.controller.vaultsecret.plan import Plan, Ref
from kvault.controller.vaultsecret.source import Reading
from kvault.controller.vaultsecret.sources import DATA_FROM_KIND, SOURCES
from kvault.errors import NotFound
from kvault.vault.core import Caller
from kvault.vault.service import Kvault


async def read(kv: Kvault, plan: Plan) -> tuple[dict[str, str], dict[str, str]]:
    """Projected values by secretKey, and the versions read."""
    try:
        info = await kv.vault(plan.vault)
    except NotFound:
        raise Refused(
            "VaultNotFound", f"vault {plan.vault_ref} ({plan.vault}) was not found", drop=False
        ) from None
    unsupported = sorted(plan.kinds - set(SOURCES))
    if unsupported:
        raise Refused(
            "Error",
            f"remoteRef.kind {', '.join(unsupported)} is not supported yet "
            f"(only {', '.join(sorted(SOURCES))})",
            drop=False,
        )
    who = principal_for(plan.namespace, plan.sa)
    reading = Reading(kv, plan, Caller.of(who, f"vaultsecret/{plan.namespace}/{plan.name}"))
    wanted: list[Ref] = list(plan.refs)
    lister = SOURCES[DATA_FROM_KIND]
    for selector in plan.data_from:
        authorize(kv, plan, who, info, lister.list_operation, None)
        wanted += await lister.find(reading, selector)
    for ref in wanted:
        source = SOURCES[ref.kind]
        authorize(kv, plan, who, info, source.get_operation, source.scope(ref.name))
    values: dict[str, str] = {}
    versions: dict[str, str] = {}
    for ref in wanted:
        got = await SOURCES[ref.kind].get(reading, ref)
        values[ref.key] = got.value
        versions[ref.key] = got.version
    return values, versions
