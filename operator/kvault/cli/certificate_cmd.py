"""``kvault certificate ...``: the verbs of ``az keyvault certificate``, against kvault's data
plane.

``--policy`` takes az's policy JSON (``get-default-policy`` and ``show`` print it: camelCase
or snake_case members such as ``x509CertificateProperties``) or the REST wire form
(``key_props``, ``x509_props``, ...), as JSON, ``@FILE`` or a file path; it is sent in the wire
form. Output is shaped as az prints it (``policy.x509CertificateProperties.validityInMonths``,
``statusDetails``, ``contactList``, ...); ``cer`` and ``csr`` are standard base64 DER.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import re
import time
from functools import partial
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, pkcs12

from kvault.cli.client import DataPlane
from kvault.cli.common import (
    UsageParser,
    attributes_out,
    backup_to,
    collect,
    deletion_out,
    emit,
    iso,
    item_path,
    json_value,
    name_of,
    new_file,
    parse_bool,
    parse_tags,
    read_bytes,
    restore_from,
    unb64url,
    verb,
    version_of,
)
from kvault.cli.errors import EXIT_FAILED, EXIT_NOT_FOUND, EXIT_USAGE, CliError

PKCS12 = "application/x-pkcs12"
PEM = "application/x-pem-file"
#: How often ``create`` asks whether a certificate from a signing issuer is ready.
POLL_SECONDS = 1.0

# -- policies: az's JSON <-> the wire form ------------------------------------------------------

#: ``az keyvault certificate get-default-policy`` (a client-side constant in az).
DEFAULT_POLICY: dict[str, Any] = {
    "issuerParameters": {"certificateTransparency": None, "name": "Self"},
    "keyProperties": {
        "curve": None,
        "exportable": True,
        "keySize": 2048,
        "keyType": "RSA",
        "reuseKey": True,
    },
    "lifetimeActions": [
        {"action": {"actionType": "AutoRenew"}, "trigger": {"daysBeforeExpiry": 90}}
    ],
    "secretProperties": {"contentType": PKCS12},
    "x509CertificateProperties": {
        "keyUsage": [
            "cRLSign",
            "dataEncipherment",
            "digitalSignature",
            "keyEncipherment",
            "keyAgreement",
            "keyCertSign",
        ],
        "subject": "CN=CLIGetDefaultPolicy",
        "validityInMonths": 12,
    },
}

#: ``get-default-policy --scaffold``: every member, with hints as values.
SCAFFOLD_POLICY: dict[str, Any] = {
    "issuerParameters": {
        "certificateTransparency": None,
        "certificateType": "(optional) DigiCert, GlobalSign or WoSign",
        "name": "Unknown, Self, or {IssuerName}",
    },
    "keyProperties": {
        "curve": None,
        "exportable": True,
        "keySize": 2048,
        "keyType": "(optional) RSA or RSA-HSM (default RSA)",
        "reuseKey": True,
    },
    "lifetimeActions": [
        {
            "action": {"actionType": "AutoRenew"},
            "trigger": {"daysBeforeExpiry": 90, "lifetimePercentage": None},
        }
    ],
    "secretProperties": {"contentType": f"{PKCS12} or {PEM}"},
    "x509CertificateProperties": {
        "ekus": ["1.3.6.1.5.5.7.3.1"],
        "keyUsage": DEFAULT_POLICY["x509CertificateProperties"]["keyUsage"],
        "subject": "C=US, ST=WA, L=Redmond, O=Contoso, OU=Contoso HR, CN=www.contoso.com",
        "subjectAlternativeNames": {
            "dnsNames": ["hr.contoso.com", "m.contoso.com"],
            "emails": ["hello@contoso.com"],
            "upns": [],
        },
        "validityInMonths": 24,
    },
}

# Top-level members (snake_case) -> the wire member they become.
_SECTIONS = {
    "key_properties": "key_props",
    "key_props": "key_props",
    "secret_properties": "secret_props",
    "secret_props": "secret_props",
    "x509_certificate_properties": "x509_props",
    "x509_props": "x509_props",
    "lifetime_actions": "lifetime_actions",
    "issuer_parameters": "issuer",
    "issuer": "issuer",
    "attributes": "attributes",
    "id": "",
}
# Members of each section (snake_case, az's and the wire's names) -> the wire name.
_MEMBERS = {
    "key_props": {
        "exportable": "exportable",
        "key_type": "kty",
        "kty": "kty",
        "key_size": "key_size",
        "reuse_key": "reuse_key",
        "curve": "crv",
        "crv": "crv",
    },
    "secret_props": {"content_type": "contentType"},
    "x509_props": {
        "subject": "subject",
        "ekus": "ekus",
        "key_usage": "key_usage",
        "validity_in_months": "validity_months",
        "validity_months": "validity_months",
        "subject_alternative_names": "sans",
        "sans": "sans",
        "basic_constraints": "basic_constraints",
    },
    "issuer": {
        "name": "name",
        "certificate_type": "cty",
        "cty": "cty",
        "certificate_transparency": "cert_transparency",
        "cert_transparency": "cert_transparency",
    },
    "attributes": {"enabled": "enabled"},
}
_SANS = {
    "dns_names": "dns_names",
    "emails": "emails",
    "upns": "upns",
    "uris": "uris",
    "ip_addresses": "ipAddresses",
}
_TRIGGERS = ("lifetime_percentage", "days_before_expiry")


def _snake(text: str) -> str:
    """az's ``to_snake_case`` (``x509CertificateProperties`` -> ``x509_certificate_properties``)."""
    text = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", text)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", text).lower()


def _snake_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {_snake(str(k)): _snake_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_snake_keys(v) for v in value]
    return value


def _section(doc: dict[str, Any], wire: str, value: Any, flag: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise CliError(f"{flag}: {wire} must be a JSON object", EXIT_USAGE)
    out: dict[str, Any] = doc.setdefault(wire, {})
    for key, member in value.items():
        name = _MEMBERS[wire].get(key)
        if name is None or member is None:
            continue  # az's output members the service sets (created, ...) or nulls
        if name == "sans":
            if not isinstance(member, dict):
                raise CliError(f"{flag}: subjectAlternativeNames must be a JSON object", EXIT_USAGE)
            member = {_SANS[k]: v for k, v in member.items() if k in _SANS and v is not None}
        out[name] = member
    return out


def _actions(value: Any, flag: str) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise CliError(f"{flag}: lifetimeActions must be a JSON array", EXIT_USAGE)
    out = []
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise CliError(f"{flag}: lifetimeActions[{i}] must be a JSON object", EXIT_USAGE)
        nested = item.get("trigger")
        trigger: dict[str, Any] = nested if isinstance(nested, dict) else {}
        action = item.get("action")
        kind = action.get("action_type") if isinstance(action, dict) else action
        out.append(
            {
                "trigger": {k: trigger[k] for k in _TRIGGERS if trigger.get(k) is not None},
                "action": {"action_type": kind},
            }
        )
    return out


def policy_body(doc: Any, flag: str = "--policy") -> dict[str, Any]:
    """az's policy JSON (or the wire form, or ``show``'s ``policy``) as the REST policy."""
    if not isinstance(doc, dict):
        raise CliError(f"{flag} must be a JSON object (a certificate policy)", EXIT_USAGE)
    body: dict[str, Any] = {}
    for key, value in _snake_keys(doc).items():
        wire = _SECTIONS.get(key)
        if wire is None:
            raise CliError(
                f"{flag}: unknown member {key!r} (a policy has keyProperties, "
                "secretProperties, x509CertificateProperties, lifetimeActions, "
                "issuerParameters and attributes)",
                EXIT_USAGE,
            )
        if not wire or value is None:
            continue
        if wire == "lifetime_actions":
            body[wire] = _actions(value, flag)
        else:
            _section(body, wire, value, flag)
    return body


def _policy_out(policy: Any) -> dict[str, Any] | None:
    """A wire policy as az prints it."""
    if not isinstance(policy, dict):
        return None
    key = policy.get("key_props") or {}
    x = policy.get("x509_props") or {}
    issuer = policy.get("issuer") or {}
    given = x.get("sans") or {}
    sans: dict[str, Any] | None = None
    if any(given.values()):
        sans = {"dnsNames": given.get("dns_names"), "emails": given.get("emails")}
        sans["upns"] = given.get("upns")
        for extra in ("ipAddresses", "uris"):  # newer API versions
            if given.get(extra):
                sans[extra] = given[extra]
    actions = []
    for item in policy.get("lifetime_actions") or []:
        trigger = item.get("trigger") or {}
        actions.append(
            {
                "action": {"actionType": (item.get("action") or {}).get("action_type")},
                "trigger": {
                    "daysBeforeExpiry": trigger.get("days_before_expiry"),
                    "lifetimePercentage": trigger.get("lifetime_percentage"),
                },
            }
        )
    return {
        "attributes": attributes_out(policy.get("attributes") or {}),
        "id": policy.get("id"),
        "issuerParameters": {
            "certificateTransparency": issuer.get("cert_transparency"),
            "certificateType": issuer.get("cty"),
            "name": issuer.get("name"),
        },
        "keyProperties": {
            "curve": key.get("crv"),
            "exportable": key.get("exportable"),
            "keySize": key.get("key_size"),
            "keyType": key.get("kty"),
            "reuseKey": key.get("reuse_key"),
        },
        "lifetimeActions": actions,
        "secretProperties": {"contentType": (policy.get("secret_props") or {}).get("contentType")},
        "x509CertificateProperties": {
            "ekus": x.get("ekus"),
            "keyUsage": x.get("key_usage"),
            "subject": x.get("subject"),
            "subjectAlternativeNames": sans,
            "validityInMonths": x.get("validity_months"),
        },
    }


# -- other shapes as az prints them -------------------------------------------------------------


def _thumbprints(item: dict[str, Any], out: dict[str, Any]) -> dict[str, Any]:
    x5t = item.get("x5t")
    raw = None
    if isinstance(x5t, str):
        try:
            raw = unb64url(x5t)
        except (binascii.Error, ValueError):
            raw = None
    out["x509Thumbprint"] = None if raw is None else base64.b64encode(raw).decode()
    out["x509ThumbprintHex"] = None if raw is None else raw.hex().upper()
    return out


def _item_out(item: dict[str, Any]) -> dict[str, Any]:
    """A CertificateItem (or DeletedCertificateItem) as ``az keyvault certificate list``."""
    item_id = item.get("id") or item.get("recoveryId") or ""
    out = {
        "attributes": attributes_out(item.get("attributes") or {}),
        "id": item.get("id"),
        "name": name_of(item_id),
        "tags": item.get("tags") or {},
    }
    return deletion_out(item, _thumbprints(item, out))


def _cert_out(bundle: dict[str, Any]) -> dict[str, Any]:
    """A CertificateBundle (or DeletedCertificateBundle) as ``az keyvault certificate show``."""
    if "cer" not in bundle:
        return _item_out(bundle)
    policy = _policy_out(bundle.get("policy"))
    content_type = bundle.get("contentType")
    if content_type is None and policy is not None:
        content_type = policy["secretProperties"]["contentType"]
    out = {
        **_item_out(bundle),
        "cer": bundle.get("cer"),
        "contentType": content_type,
        "kid": bundle.get("kid"),
        "pending": bundle.get("pending"),
        "policy": policy,
        "sid": bundle.get("sid"),
    }
    return out


def _operation_out(op: dict[str, Any]) -> dict[str, Any]:
    """A CertificateOperation as ``az keyvault certificate pending show``."""
    issuer = op.get("issuer") or {}
    return {
        "cancellationRequested": op.get("cancellation_requested"),
        "csr": op.get("csr"),
        "error": op.get("error"),
        "id": op.get("id"),
        "issuerParameters": {
            "certificateTransparency": issuer.get("cert_transparency"),
            "certificateType": issuer.get("cty"),
            "name": issuer.get("name"),
        },
        "requestId": op.get("request_id"),
        "status": op.get("status"),
        "statusDetails": op.get("status_details"),
        "target": op.get("target"),
    }


def _contacts_out(doc: dict[str, Any]) -> dict[str, Any]:
    return {
        "contactList": [
            {"emailAddress": c.get("email"), "name": c.get("name"), "phone": c.get("phone")}
            for c in doc.get("contacts") or []
        ],
        "id": doc.get("id"),
    }


def _issuer_out(doc: dict[str, Any]) -> dict[str, Any]:
    attributes = doc.get("attributes") or {}
    credentials = doc.get("credentials")
    org = doc.get("org_details")
    return {
        "attributes": {
            "created": iso(attributes.get("created")),
            "enabled": attributes.get("enabled"),
            "updated": iso(attributes.get("updated")),
        },
        "credentials": None
        if not isinstance(credentials, dict)
        else {"accountId": credentials.get("account_id"), "password": None},
        "id": doc.get("id"),
        "name": _issuer_name(doc),
        "organizationDetails": None
        if not isinstance(org, dict)
        else {
            "adminDetails": [
                {
                    "emailAddress": a.get("email"),
                    "firstName": a.get("first_name"),
                    "lastName": a.get("last_name"),
                    "phone": a.get("phone"),
                }
                for a in org.get("admin_details") or []
            ],
            "id": org.get("id"),
        },
        "provider": doc.get("provider"),
    }


def _issuer_name(doc: dict[str, Any]) -> str | None:
    issuer_id = str(doc.get("id") or "")
    return issuer_id.rsplit("/", 1)[-1] or None


# -- local files: certificates, PFX and PEM ------------------------------------------------------


def _pem_certificates(data: bytes, flag: str) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError:
        raise CliError(
            f"{flag}: no readable CERTIFICATE block in the PEM file", EXIT_USAGE
        ) from None


def _der_certificates(data: bytes, flag: str) -> list[x509.Certificate]:
    """One DER certificate, or several back to back (a chain)."""
    certs = []
    rest = data
    while rest:
        size = _der_length(rest)
        if size is None or size > len(rest):
            raise CliError(f"{flag}: neither PEM nor DER certificates", EXIT_USAGE)
        try:
            certs.append(x509.load_der_x509_certificate(rest[:size]))
        except ValueError:
            raise CliError(f"{flag}: neither PEM nor DER certificates", EXIT_USAGE) from None
        rest = rest[size:]
    if not certs:
        raise CliError(f"{flag}: the file is empty", EXIT_USAGE)
    return certs


def _der_length(data: bytes) -> int | None:
    """The size of the DER SEQUENCE at the start of ``data`` (header included)."""
    if len(data) < 2 or data[0] != 0x30:
        return None
    first = data[1]
    if first < 0x80:
        return 2 + first
    count = first & 0x7F
    if count == 0 or count > 4 or len(data) < 2 + count:
        return None
    return 2 + count + int.from_bytes(data[2 : 2 + count], "big")


def _chain(data: bytes, flag: str) -> list[x509.Certificate]:
    """A certificate chain file: PEM (every CERTIFICATE block) or DER."""
    if b"-----BEGIN" in data:
        return _pem_certificates(data, flag)
    return _der_certificates(data, flag)


def _sniff_import(data: bytes, password: str | None) -> str:
    """The content type of an import file (as az decides it), after checking it loads."""
    if b"-----BEGIN" in data:
        _pem_certificates(data, "--file")
        if b"PRIVATE KEY-----" not in data:
            raise CliError("--file: the PEM file holds no private key", EXIT_USAGE)
        return PEM
    try:
        key, cert, _ = pkcs12.load_key_and_certificates(
            data, password.encode() if password is not None else None
        )
    except ValueError:
        if password is None:
            raise CliError(
                "--file is neither PEM nor a PFX that opens without a password "
                "(give --password if it has one)",
                EXIT_USAGE,
            ) from None
        raise CliError(
            "--password does not open --file (or --file is neither PEM nor PFX)", EXIT_USAGE
        ) from None
    if cert is None or key is None:
        raise CliError("--file: the PFX must hold a private key and its certificate", EXIT_USAGE)
    return PKCS12


# -- request pieces ---------------------------------------------------------------------------


def _path(args: argparse.Namespace, *rest: str) -> str:
    return item_path("certificates", args.name, *rest)


def _state(args: argparse.Namespace, body: dict[str, Any]) -> dict[str, Any]:
    """``--disabled`` and ``--tags`` of create, import and merge."""
    if args.disabled is not None:
        body["attributes"] = {"enabled": not args.disabled}
    tags = parse_tags(args.tags)
    if tags is not None:
        body["tags"] = tags
    return body


def _policy_flag(args: argparse.Namespace) -> dict[str, Any] | None:
    if args.policy is None:
        return None
    return policy_body(json_value(args.policy, "--policy", "a certificate policy"))


def _listing(args: argparse.Namespace) -> dict[str, str] | None:
    return {"includePending": "true"} if getattr(args, "include_pending", False) else None


# -- verbs --------------------------------------------------------------------------------------


def _create(dp: DataPlane, args: argparse.Namespace) -> Any:
    policy = _policy_flag(args)
    assert policy is not None  # --policy is required
    if args.validity is not None:
        if args.validity < 1:
            raise CliError(f"--validity must be at least 1 month, got {args.validity}", EXIT_USAGE)
        policy.setdefault("x509_props", {})["validity_months"] = args.validity
    dp.request("POST", _path(args, "create"), _state(args, {"policy": policy}))
    issuer = str((policy.get("issuer") or {}).get("name") or "Self")
    while True:  # as az: return at once for Unknown, else wait for the outcome
        op = dp.request("GET", _path(args, "pending"))
        if issuer.lower() == "unknown" or str(op.get("status")).lower() != "inprogress":
            return _operation_out(op)
        time.sleep(POLL_SECONDS)


def _default_policy(args: argparse.Namespace) -> int:
    return emit(SCAFFOLD_POLICY if args.scaffold else DEFAULT_POLICY, args)


def _import(dp: DataPlane, args: argparse.Namespace) -> Any:
    data = read_bytes(args.file, "--file")
    content_type = _sniff_import(data, args.password)
    if content_type == PEM:
        data = data.replace(b"\r\n", b"\n")
    policy = _policy_flag(args) or {}
    policy.setdefault("secret_props", {}).setdefault("contentType", content_type)
    body: dict[str, Any] = {"value": base64.b64encode(data).decode(), "policy": policy}
    if args.password is not None:
        body["pwd"] = args.password
    return _cert_out(dp.request("POST", _path(args, "import"), _state(args, body)))


def _show(dp: DataPlane, args: argparse.Namespace) -> Any:
    return _cert_out(dp.request("GET", _path(args, version_of(args))))


def _list(dp: DataPlane, args: argparse.Namespace) -> Any:
    return collect(dp, "/certificates", args, _item_out, _listing(args))


def _list_versions(dp: DataPlane, args: argparse.Namespace) -> Any:
    return collect(dp, _path(args, "versions"), args, _item_out)


def _set_attributes(dp: DataPlane, args: argparse.Namespace) -> Any:
    policy = _policy_flag(args)
    body: dict[str, Any] = {}
    if args.enabled is not None:
        body["attributes"] = {"enabled": args.enabled}
    tags = parse_tags(args.tags)
    if tags is not None:
        body["tags"] = tags
    path = _path(args, version_of(args))
    updated = dp.request("PATCH", path, body) if body or policy is None else None
    new_policy = None if policy is None else dp.request("PATCH", _path(args, "policy"), policy)
    if not isinstance(updated, dict) or "cer" not in updated:
        try:  # the whole bundle (this server's PATCH answers with the item only)
            updated = dp.request("GET", path)
        except CliError as exc:  # a disabled certificate may not be read
            if exc.exit_code != EXIT_FAILED or not isinstance(updated, dict):
                raise
    out = _cert_out(updated)
    if new_policy is not None:
        out["policy"] = _policy_out(new_policy)
    return out


def _delete(dp: DataPlane, args: argparse.Namespace) -> Any:
    return _cert_out(dp.request("DELETE", _path(args)))


def _list_deleted(dp: DataPlane, args: argparse.Namespace) -> Any:
    return collect(dp, "/deletedcertificates", args, _item_out, _listing(args))


def _show_deleted(dp: DataPlane, args: argparse.Namespace) -> Any:
    return _cert_out(dp.request("GET", item_path("deletedcertificates", args.name)))


def _recover(dp: DataPlane, args: argparse.Namespace) -> Any:
    return _cert_out(dp.request("POST", item_path("deletedcertificates", args.name, "recover")))


def _purge(dp: DataPlane, args: argparse.Namespace) -> Any:
    dp.request("DELETE", item_path("deletedcertificates", args.name))
    return None


def _backup(dp: DataPlane, args: argparse.Namespace) -> Any:
    backup_to(dp, _path(args, "backup"), args.file)


def _restore(dp: DataPlane, args: argparse.Namespace) -> Any:
    return _cert_out(restore_from(dp, "certificates", args.file))


def _download(dp: DataPlane, args: argparse.Namespace) -> Any:
    """The public certificate (``cer``), PEM or DER, as ``az keyvault certificate download``."""
    target = new_file(args.file)
    bundle = dp.request("GET", _path(args, version_of(args)))
    try:
        cert = x509.load_der_x509_certificate(base64.b64decode(bundle.get("cer") or ""))
    except (binascii.Error, ValueError) as exc:
        raise CliError(
            f"the service returned no readable certificate ({exc})", EXIT_FAILED
        ) from None
    encoding = Encoding.DER if args.encoding == "DER" else Encoding.PEM
    target.write_bytes(cert.public_bytes(encoding))
    return None


def _pending_show(dp: DataPlane, args: argparse.Namespace) -> Any:
    return _operation_out(dp.request("GET", _path(args, "pending")))


def _pending_merge(dp: DataPlane, args: argparse.Namespace) -> Any:
    chain = _chain(read_bytes(args.file, "--file"), "--file")
    x5c = [base64.b64encode(c.public_bytes(Encoding.DER)).decode() for c in chain]
    body = _state(args, {"x5c": x5c})
    return _cert_out(dp.request("POST", _path(args, "pending", "merge"), body))


def _pending_cancel(dp: DataPlane, args: argparse.Namespace) -> Any:
    body = {"cancellation_requested": True}
    return _operation_out(dp.request("PATCH", _path(args, "pending"), body))


def _pending_delete(dp: DataPlane, args: argparse.Namespace) -> Any:
    return _operation_out(dp.request("DELETE", _path(args, "pending")))


_CONTACTS = "/certificates/contacts"


def _email(text: str) -> str:
    if "@" not in text.strip("@"):
        raise argparse.ArgumentTypeError(f"expected an e-mail address, got {text!r}")
    return text


def _contacts(dp: DataPlane) -> list[dict[str, Any]]:
    """The vault's contacts; none yet is an empty list."""
    try:
        doc = dp.request("GET", _CONTACTS)
    except CliError as exc:
        if exc.exit_code != EXIT_NOT_FOUND:
            raise
        return []
    return [c for c in doc.get("contacts") or [] if isinstance(c, dict)]


def _contact_add(dp: DataPlane, args: argparse.Namespace) -> Any:
    contacts = _contacts(dp)
    if any(c.get("email") == args.email for c in contacts):
        raise CliError(f"contact '{args.email}' already exists", EXIT_FAILED)
    new = {"email": args.email, "name": args.contact_name, "phone": args.phone}
    contacts.append({k: v for k, v in new.items() if v is not None})
    return _contacts_out(dp.request("PUT", _CONTACTS, {"contacts": contacts}))


def _contact_list(dp: DataPlane, args: argparse.Namespace) -> Any:
    return _contacts_out(dp.request("GET", _CONTACTS))


def _contact_delete(dp: DataPlane, args: argparse.Namespace) -> Any:
    contacts = _contacts(dp)
    remaining = [c for c in contacts if c.get("email") != args.email]
    if len(remaining) == len(contacts):
        raise CliError(
            f"contact '{args.email}' not found in vault '{args.vault_name}'", EXIT_NOT_FOUND
        )
    if remaining:
        return _contacts_out(dp.request("PUT", _CONTACTS, {"contacts": remaining}))
    return _contacts_out(dp.request("DELETE", _CONTACTS))


def _issuer_path(args: argparse.Namespace) -> str:
    return item_path("certificates", "issuers", args.issuer_name)


def _issuer_body(args: argparse.Namespace, enabled: bool | None) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if args.provider_name is not None:
        body["provider"] = args.provider_name
    credentials = {"account_id": args.account_id, "pwd": args.password}
    if any(v is not None for v in credentials.values()):
        body["credentials"] = {k: v for k, v in credentials.items() if v is not None}
    if args.organization_id is not None:
        body["org_details"] = {"id": args.organization_id}
    if enabled is not None:
        body["attributes"] = {"enabled": enabled}
    return body


def _issuer_create(dp: DataPlane, args: argparse.Namespace) -> Any:
    body = _issuer_body(args, not args.disabled)
    body.setdefault("org_details", {})["admin_details"] = []
    return _issuer_out(dp.request("PUT", _issuer_path(args), body))


def _issuer_update(dp: DataPlane, args: argparse.Namespace) -> Any:
    return _issuer_out(dp.request("PATCH", _issuer_path(args), _issuer_body(args, args.enabled)))


def _issuer_show(dp: DataPlane, args: argparse.Namespace) -> Any:
    return _issuer_out(dp.request("GET", _issuer_path(args)))


def _issuer_list(dp: DataPlane, args: argparse.Namespace) -> Any:
    return [
        {"id": i.get("id"), "name": _issuer_name(i), "provider": i.get("provider")}
        for i in dp.pages("/certificates/issuers")
        if isinstance(i, dict)
    ]


def _issuer_delete(dp: DataPlane, args: argparse.Namespace) -> Any:
    return _issuer_out(dp.request("DELETE", _issuer_path(args)))


# -- wiring -------------------------------------------------------------------------------------


#: A certificate verb; ``--id`` is a certificate id or a deleted one's recovery id.
_verb = partial(verb, noun="certificate", collections=("certificates", "deletedcertificates"))


def _group(verbs: Any, name: str, help_text: str) -> Any:
    group = verbs.add_parser(name, help=help_text)
    return group.add_subparsers(
        dest=f"{name}_verb", required=True, metavar="VERB", parser_class=UsageParser
    )


def _state_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--disabled", type=parse_bool, help="create the version disabled (true/false)")
    p.add_argument("--tags", nargs="*", metavar="KEY=VALUE", help="space-separated tags")


def _policy_arg(p: argparse.ArgumentParser, *, required: bool = False) -> None:
    p.add_argument(
        "--policy",
        "-p",
        required=required,
        help="the certificate policy: JSON, @FILE or a file path (see get-default-policy)",
    )


def _issuer_flags(p: argparse.ArgumentParser, *, create: bool) -> None:
    p.add_argument("--issuer-name", required=True, help="the issuer's name")
    p.add_argument(
        "--provider-name", required=create, help="the provider (kvault signs with kvault-ca)"
    )
    p.add_argument("--account-id", help="kvault-ca: the name of the CA certificate")
    p.add_argument("--password", help="the issuer account's password (write-only)")
    p.add_argument("--organization-id", help="the organization's id")
    if create:
        p.add_argument("--disabled", action="store_true", help="create the issuer disabled")
    else:
        p.add_argument("--enabled", type=parse_bool, help="true or false")


def register(groups: Any) -> None:
    group = groups.add_parser(
        "certificate", help="manage certificates (the verbs of az keyvault certificate)"
    )
    verbs = group.add_subparsers(
        dest="verb", required=True, metavar="VERB", parser_class=UsageParser
    )

    p = _verb(verbs, "create", _create, "create a certificate (or a new version) from a policy")
    _policy_arg(p, required=True)
    p.add_argument("--validity", type=int, help="months the certificate is valid (overrides)")
    _state_flags(p)

    p = verbs.add_parser("get-default-policy", help="az's default policy, to edit for create")
    p.add_argument("--scaffold", action="store_true", help="every member, with hints")
    p.add_argument("--output", "-o", choices=("json", "jsonc", "yaml"), default="json")
    p.add_argument("--query", help="JMESPath query applied to the output")
    p.set_defaults(handler=_default_policy)

    p = _verb(verbs, "import", _import, "import a certificate and its key (PFX or PEM)")
    p.add_argument("--file", "-f", required=True, help="a PFX, or a PEM with key and certificate")
    p.add_argument("--password", help="the PFX's (or encrypted PEM key's) password")
    _policy_arg(p)
    _state_flags(p)

    _verb(verbs, "show", _show, "a certificate version (the latest with its policy)", version=True)
    p = _verb(verbs, "list", _list, "the certificates of a vault", item=False)
    p.add_argument("--maxresults", type=int, help="at most this many certificates")
    p.add_argument("--include-pending", action="store_true", help="include pending ones")
    p = _verb(verbs, "list-versions", _list_versions, "the versions of a certificate")
    p.add_argument("--maxresults", type=int, help="at most this many versions")
    p = _verb(
        verbs,
        "set-attributes",
        _set_attributes,
        "change a version's attributes and tags (and the certificate's policy)",
        version=True,
    )
    p.add_argument("--enabled", type=parse_bool, help="true or false")
    p.add_argument("--tags", nargs="*", metavar="KEY=VALUE", help="space-separated tags")
    _policy_arg(p)
    _verb(verbs, "delete", _delete, "soft-delete a certificate with its key and secret")
    p = _verb(verbs, "list-deleted", _list_deleted, "deleted certificates", item=False)
    p.add_argument("--maxresults", type=int, help="at most this many certificates")
    p.add_argument("--include-pending", action="store_true", help="include pending ones")
    _verb(verbs, "show-deleted", _show_deleted, "a deleted certificate")
    _verb(verbs, "recover", _recover, "recover a deleted certificate")
    _verb(verbs, "purge", _purge, "remove a deleted certificate for good")
    p = _verb(verbs, "backup", _backup, "write an encrypted backup of all versions to a file")
    p.add_argument("--file", "-f", required=True, help="where to write the backup")
    p = _verb(verbs, "restore", _restore, "restore a backup file", item=False)
    p.add_argument("--file", "-f", required=True, help="the backup file")
    p = _verb(verbs, "download", _download, "write the public certificate to a file", version=True)
    p.add_argument("--file", "-f", required=True, help="where to write the certificate")
    p.add_argument("--encoding", "-e", choices=("PEM", "DER"), default="PEM", help="default PEM")

    pending = _group(verbs, "pending", "the pending create operation (Unknown issuer: a CSR)")
    _verb(pending, "show", _pending_show, "the operation (its csr while it waits)")
    p = _verb(pending, "merge", _pending_merge, "complete it with the certificate the CA signed")
    p.add_argument(
        "--file", "-f", required=True, help="the signed certificate and chain: PEM or DER"
    )
    _state_flags(p)
    _verb(pending, "cancel", _pending_cancel, "ask to cancel the operation")
    _verb(pending, "delete", _pending_delete, "delete the operation")

    contact = _group(verbs, "contact", "who hears about certificates (EmailContacts)")
    p = _verb(contact, "add", _contact_add, "add a contact", item=False)
    p.add_argument("--email", required=True, type=_email, help="the contact's e-mail address")
    p.add_argument("--name", dest="contact_name", help="the contact's name")
    p.add_argument("--phone", help="the contact's phone number")
    _verb(contact, "list", _contact_list, "the vault's contacts", item=False)
    p = _verb(contact, "delete", _contact_delete, "remove a contact", item=False)
    p.add_argument("--email", required=True, type=_email, help="the contact's e-mail address")

    issuer = _group(verbs, "issuer", "issuers that policies name (provider kvault-ca signs)")
    p = _verb(issuer, "create", _issuer_create, "create or replace an issuer", item=False)
    _issuer_flags(p, create=True)
    p = _verb(issuer, "update", _issuer_update, "change an issuer", item=False)
    _issuer_flags(p, create=False)
    p = _verb(issuer, "show", _issuer_show, "an issuer", item=False)
    p.add_argument("--issuer-name", required=True, help="the issuer's name")
    _verb(issuer, "list", _issuer_list, "the vault's issuers", item=False)
    p = _verb(issuer, "delete", _issuer_delete, "delete an issuer", item=False)
    p.add_argument("--issuer-name", required=True, help="the issuer's name")
