"""Read what a plan names, as its identity: every item authorised before any is read, so a
denial reads nothing."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kvault.controller.vaultsecret.access import authorize
from kvault.controller.vaultsecret.identity import principal_for
from kvault.controller.vaultsecret.outcome import Refused
from kvault.controller.vaultsecret.plan import Plan, Ref
from kvault.controller.vaultsecret.source import Reading, needs
from kvault.controller.vaultsecret.sources import DATA_FROM_KIND, SOURCES
from kvault.controller.vaultsecret.values import Value
from kvault.errors import NotFound
from kvault.vault.core import Caller
from kvault.vault.service import Kvault


@dataclass(slots=True)
class Projection:
    """What one read found: values by Secret key (text, or a keystore's
    :class:`~.values.Binary`), versions by ``secretKey`` (an entry that writes several keys,
    a ``Certificate``, has one version), and the status facts of each entry that has some
    (certificates: serial, expiry, renewal)."""

    values: dict[str, Value] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    certificates: list[dict[str, Any]] = field(default_factory=list)


async def read(kv: Kvault, plan: Plan) -> tuple[dict[str, Value], dict[str, str]]:
    """Projected values by Secret key, and the versions read by ``secretKey``."""
    found = await project(kv, plan)
    return found.values, found.versions


async def project(kv: Kvault, plan: Plan) -> Projection:
    """Everything the plan names, read as its identity (see :class:`Projection`)."""
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
    misplaced = [r.key for r in plan.refs if r.pkcs12 is not None and r.kind != "Certificate"]
    if misplaced:  # the CRD refuses it first; never ignore what was asked
        raise Refused(
            "Error",
            f"data[{misplaced[0]}].keystores applies to remoteRef.kind Certificate only",
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
        for need in needs(SOURCES[ref.kind], ref):
            authorize(kv, plan, who, info, need.operation, need.scope, need.note)
    out = Projection()
    keys = {r.key for r in plan.refs}
    for ref in wanted:
        got = await SOURCES[ref.kind].get(reading, ref)
        out.versions[ref.key] = got.version
        if got.facts is not None:
            out.certificates.append(dict(got.facts))
        if not got.parts:
            out.values[ref.key] = got.value
            continue
        for key, value in got.parts.items():
            if key in keys or key in out.values:
                raise Refused(
                    "Error",
                    f"data[{ref.key}] ({ref.kind} {ref.name}) writes Secret key {key!r}, "
                    "which another data entry writes too; choose another secretKey",
                    drop=False,
                )
            out.values[key] = value
    return out
