"""The VaultSecret spec, parsed once per reconcile into a frozen plan that every step reads."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from kvault.controller.vault.spec import domain_name

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
#: ``remoteRef.format`` of a ``Key``: its public part as PEM (default) or as a JWK.
FORMATS = ("PEM", "JWK")
#: ``keystores.pkcs12.profile`` of a ``Certificate`` entry (cert-manager's names; the default
#: first). ``LegacyRC2`` is not offered: see :mod:`kvault.crypto.keystore`.
PKCS12_PROFILES = ("Modern2023", "LegacyDES")


def parse_duration(text: str | None, default: float) -> float:
    """ESO/Go durations: ``1h``, ``30m``, ``1h30m``, ``45s``, ``0`` (no periodic refresh)."""
    if not text:
        return default
    text = str(text).strip()
    if text == "0":
        return 0.0
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return default
    return sum(float(n) * _UNITS[u] for n, u in parts)


class Pkcs12(NamedTuple):
    """``keystores.pkcs12`` of a ``Certificate`` entry, with ``create: true``: PKCS#12 files
    encrypted with the value of vault item ``password`` (of ``password_kind``, at
    ``password_version`` or the latest), in ``profile`` (as written: the source refuses a
    value outside :data:`PKCS12_PROFILES`)."""

    password: str
    password_version: str = ""
    password_kind: str = "Secret"
    profile: str = PKCS12_PROFILES[0]


class Ref(NamedTuple):
    """One ``data[]`` entry: project item ``name`` (of ``kind``, at ``version`` or the latest)
    under ``key``; ``format`` is how a ``Key`` is shown (as written: the source refuses a
    value outside :data:`FORMATS`); ``pkcs12``: the keystores a ``Certificate`` also writes."""

    key: str
    name: str
    version: str
    kind: str = "Secret"
    format: str = "PEM"
    pkcs12: Pkcs12 | None = None


@dataclass(frozen=True, slots=True)
class Plan:
    """What one VaultSecret asks for, as read from its spec."""

    namespace: str
    name: str
    uid: str
    generation: int | None
    sa: str
    vault: str
    vault_ref: str  # "name" or "ns/name" as the user wrote it
    refs: tuple[Ref, ...]
    data_from: tuple[Mapping[str, Any], ...]
    target: str
    type: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    templates: Mapping[str, str] | None
    merge_templates: bool  # template.mergePolicy Merge: item keys stay beside template keys
    creation: str
    deletion: str
    restarts: tuple[tuple[str, str], ...]
    refresh: float

    @property
    def items(self) -> list[tuple[str, str, str]]:
        """(secretKey, remote name, version) of every ``data[]`` entry."""
        return [(r.key, r.name, r.version) for r in self.refs]

    @property
    def kinds(self) -> set[str]:
        return {r.kind for r in self.refs}


def _pkcs12(entry: Mapping[str, Any]) -> Pkcs12 | None:
    """``keystores.pkcs12`` when it asks for the files (``create: true``)."""
    spec = (entry.get("keystores") or {}).get("pkcs12") or {}
    if spec.get("create") is not True:
        return None
    password = spec.get("passwordRef") or {}
    return Pkcs12(
        str(password.get("name") or ""),
        str(password.get("version") or ""),
        str(password.get("kind") or "Secret"),
        str(spec.get("profile") or PKCS12_PROFILES[0]),
    )


def _ref(entry: Mapping[str, Any]) -> Ref:
    remote = entry.get("remoteRef") or {}
    return Ref(
        str(entry.get("secretKey")),
        str(remote.get("name")),
        str(remote.get("version") or ""),
        str(remote.get("kind") or "Secret"),
        str(remote.get("format") or "PEM"),
        _pkcs12(entry),
    )


def _strings(value: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in (value or {}).items()}


def plan_of(body: Mapping[str, Any], default_refresh: float) -> Plan:
    meta, spec = body["metadata"], body.get("spec") or {}
    ns = meta["namespace"]
    ref = spec.get("vaultRef") or {}
    vns = ref.get("namespace") or ns
    target = spec.get("target") or {}
    template = target.get("template") or {}
    tpl = template.get("data")
    return Plan(
        namespace=ns,
        name=meta["name"],
        uid=str(meta.get("uid", "")),
        generation=meta.get("generation"),
        sa=str(spec.get("serviceAccountName") or "default"),
        vault=domain_name(str(ref.get("name", "")), vns),
        vault_ref=f"{vns}/{ref.get('name')}" if vns != ns else str(ref.get("name")),
        refs=tuple(_ref(d) for d in spec.get("data") or ()),
        data_from=tuple(spec.get("dataFrom") or ()),
        target=str(target.get("name") or meta["name"]),
        type=str(target.get("type") or "Opaque"),
        labels=_strings(target.get("labels")),
        annotations=_strings(target.get("annotations")),
        templates=_strings(tpl) if tpl else None,
        merge_templates=str(template.get("mergePolicy") or "Replace") == "Merge",
        creation=str(target.get("creationPolicy") or "Owner"),
        deletion=str(target.get("deletionPolicy") or "Delete"),
        restarts=tuple(
            (str(r.get("kind")), str(r.get("name"))) for r in spec.get("rolloutRestart") or ()
        ),
        refresh=parse_duration(spec.get("refreshInterval"), default_refresh),
    )


def interesting_items(body: Mapping[str, Any]) -> tuple[str, set[str], bool]:
    """(vault, item names lower-cased, whether it lists the vault) for the refresh index: the
    items of ``data[]`` and the secrets holding their keystores' passwords."""
    plan = plan_of(body, 0)
    names = {r.name.lower() for r in plan.refs}
    names |= {r.pkcs12.password.lower() for r in plan.refs if r.pkcs12 and r.pkcs12.password}
    return plan.vault, names, bool(plan.data_from)
