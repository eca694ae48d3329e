"""``kvault key ...``: the verbs of ``az keyvault key``, against kvault's data plane.

Flags take az's formats (``--iv/--aad/--tag`` hex, ``--digest/--signature/--value`` standard
base64) and the output is shaped as az prints it; the REST bodies carry base64url.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from kvault.cli.client import DataPlane
from kvault.cli.common import (
    UsageParser,
    attributes_out,
    b64url,
    backup_to,
    collect,
    deletion_out,
    iso,
    item_path,
    json_value,
    name_of,
    new_file,
    parse_bool,
    parse_tags,
    parse_time,
    read_bytes,
    restore_from,
    short,
    std_b64,
    unb64url,
    verb,
    version_of,
)
from kvault.cli.errors import EXIT_FAILED, EXIT_USAGE, CliError

KTYS = ("RSA", "RSA-HSM", "EC", "EC-HSM", "oct", "oct-HSM")
CURVES = ("P-256", "P-256K", "P-384", "P-521")
KEY_OPS = ("encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey", "import", "export")
ENCRYPTION_ALGORITHMS = (
    "RSA1_5",
    "RSA-OAEP",
    "RSA-OAEP-256",
    "A128GCM",
    "A192GCM",
    "A256GCM",
    "A128CBC",
    "A192CBC",
    "A256CBC",
    "A128CBCPAD",
    "A192CBCPAD",
    "A256CBCPAD",
)
SIGNATURE_ALGORITHMS = (
    "PS256",
    "PS384",
    "PS512",
    "RS256",
    "RS384",
    "RS512",
    "RSNULL",
    "ES256",
    "ES256K",
    "ES384",
    "ES512",
    "HS256",
    "HS384",
    "HS512",
)
DATA_TYPES = ("base64", "plaintext")

_CURVE_NAMES = {  # cryptography's curve name -> JWK crv
    "secp256r1": "P-256",
    "secp256k1": "P-256K",
    "secp384r1": "P-384",
    "secp521r1": "P-521",
}
_CURVES: dict[str, type[ec.EllipticCurve]] = {
    "P-256": ec.SECP256R1,
    "P-256K": ec.SECP256K1,
    "SECP256K1": ec.SECP256K1,
    "P-384": ec.SECP384R1,
    "P-521": ec.SECP521R1,
}


# -- argument types and encodings --------------------------------------------------------------


def _key_op(text: str) -> str:
    for op in KEY_OPS:
        if op.lower() == text.lower():
            return op
    raise argparse.ArgumentTypeError(f"invalid key operation {text!r} (choose from {KEY_OPS})")


def _hex_out(value: Any) -> str | None:
    return unb64url(value).hex() if isinstance(value, str) else None


def _from_base64(text: str, flag: str) -> bytes:
    """Standard base64 as az takes it (URL-safe and unpadded text are accepted too)."""
    cleaned = "".join(text.split()).replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(cleaned + "=" * (-len(cleaned) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise CliError(f"{flag} must be base64, got {short(text)}", EXIT_USAGE) from None


def _from_hex(text: str | None, flag: str) -> bytes | None:
    if text is None:
        return None
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise CliError(f"{flag} must be hex, got {short(text)}", EXIT_USAGE) from None


# -- shapes as az prints them -----------------------------------------------------------------

_JWK_TEXT = ("crv", "kid", "kty")
_JWK_BYTES = ("d", "dp", "dq", "e", "k", "n", "p", "q", "qi", "t", "x", "y")


def _attributes_out(attributes: dict[str, Any]) -> dict[str, Any]:
    return {
        **attributes_out(attributes),
        "exportable": attributes.get("exportable"),
        "hsmPlatform": attributes.get("hsmPlatform"),
    }


def _release_policy(bundle: dict[str, Any]) -> dict[str, Any] | None:
    policy = bundle.get("release_policy")
    if not isinstance(policy, dict):
        return None
    return {
        "contentType": policy.get("contentType"),
        "encodedPolicy": std_b64(policy.get("data")),
        "immutable": policy.get("immutable"),
    }


def _key_out(bundle: dict[str, Any]) -> dict[str, Any]:
    """A KeyBundle (or DeletedKeyBundle) as ``az keyvault key show`` prints it: the JWK's
    binary members in standard base64, ``key_ops`` as ``keyOps``."""
    if not isinstance(bundle.get("key"), dict):
        return _item_out(bundle)
    jwk: dict[str, Any] = bundle["key"]
    key: dict[str, Any] = {f: jwk.get(f) for f in _JWK_TEXT}
    key.update((f, std_b64(jwk.get(f))) for f in _JWK_BYTES)
    key["keyOps"] = jwk.get("key_ops")
    out = {
        "attributes": _attributes_out(bundle.get("attributes") or {}),
        "key": dict(sorted(key.items())),
        "managed": bundle.get("managed"),
        "releasePolicy": _release_policy(bundle),
        "tags": bundle.get("tags") or {},
    }
    return deletion_out(bundle, out)


def _item_out(item: dict[str, Any]) -> dict[str, Any]:
    """A KeyItem (or DeletedKeyItem) as ``az keyvault key list`` prints it."""
    kid = item.get("kid") or ""
    out = {
        "attributes": _attributes_out(item.get("attributes") or {}),
        "kid": kid or None,
        "managed": item.get("managed"),
        "name": name_of(kid or item.get("recoveryId") or ""),
        "releasePolicy": _release_policy(item),
        "tags": item.get("tags") or {},
    }
    return deletion_out(item, out)


def _policy_out(doc: dict[str, Any]) -> dict[str, Any]:
    """A rotation policy as ``az keyvault key rotation-policy show`` prints it."""
    attributes = doc.get("attributes") or {}
    actions = []
    for item in doc.get("lifetimeActions") or []:
        trigger = item.get("trigger") or {}
        action = item.get("action") or {}
        actions.append(
            {
                "action": action.get("type"),
                "timeAfterCreate": trigger.get("timeAfterCreate"),
                "timeBeforeExpiry": trigger.get("timeBeforeExpiry"),
            }
        )
    return {
        "createdOn": iso(attributes.get("created")),
        "expiresIn": attributes.get("expiryTime"),
        "id": doc.get("id"),
        "lifetimeActions": actions,
        "updatedOn": iso(attributes.get("updated")),
    }


# -- request pieces ---------------------------------------------------------------------------


def _attributes(args: argparse.Namespace, enabled: bool | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if enabled is not None:
        out["enabled"] = enabled
    if args.expires is not None:
        out["exp"] = args.expires
    if args.not_before is not None:
        out["nbf"] = args.not_before
    return out


def _common_body(args: argparse.Namespace, body: dict[str, Any]) -> dict[str, Any]:
    """``--disabled``, ``--expires``, ``--not-before`` and ``--tags`` of create and import."""
    attributes = _attributes(args, None if args.disabled is None else not args.disabled)
    if attributes:
        body["attributes"] = attributes
    tags = parse_tags(args.tags)
    if tags is not None:
        body["tags"] = tags
    return body


# -- import: private key -> JWK ----------------------------------------------------------------


def _int(value: int, length: int | None = None) -> str:
    size = length or max(1, (value.bit_length() + 7) // 8)
    return b64url(value.to_bytes(size, "big"))


def _jwk_from_pem(data: bytes, password: str | None) -> dict[str, Any]:
    try:
        key = serialization.load_pem_private_key(
            data, password.encode() if password is not None else None
        )
    except TypeError as exc:  # encrypted without a password, or a password for a clear key
        raise CliError(f"--pem-password: {exc}", EXIT_USAGE) from None
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise CliError(f"--pem-file: cannot load the private key: {exc}", EXIT_USAGE) from None
    if isinstance(key, rsa.RSAPrivateKey):
        numbers = key.private_numbers()
        public = numbers.public_numbers
        return {
            "kty": "RSA",
            "n": _int(public.n),
            "e": _int(public.e),
            "d": _int(numbers.d),
            "p": _int(numbers.p),
            "q": _int(numbers.q),
            "dp": _int(numbers.dmp1),
            "dq": _int(numbers.dmq1),
            "qi": _int(numbers.iqmp),
        }
    if isinstance(key, ec.EllipticCurvePrivateKey):
        crv = _CURVE_NAMES.get(key.curve.name)
        if crv is None:
            raise CliError(
                f"--pem-file: unsupported curve {key.curve.name} (supported: {', '.join(CURVES)})",
                EXIT_USAGE,
            )
        size = (key.curve.key_size + 7) // 8
        ec_numbers = key.private_numbers()
        return {
            "kty": "EC",
            "crv": crv,
            "x": _int(ec_numbers.public_numbers.x, size),
            "y": _int(ec_numbers.public_numbers.y, size),
            "d": _int(ec_numbers.private_value, size),
        }
    raise CliError(
        f"--pem-file: unsupported key type {type(key).__name__} (RSA and EC only)", EXIT_USAGE
    )


def _jwk_from_file(path: str) -> dict[str, Any]:
    try:
        doc = json.loads(read_bytes(path, "--jwk-file"))
    except ValueError:
        raise CliError(f"--jwk-file: {path} is not JSON", EXIT_USAGE) from None
    if isinstance(doc, dict) and "kty" not in doc and isinstance(doc.get("key"), dict):
        doc = doc["key"]  # a KeyImportParameters body
    if not isinstance(doc, dict) or not isinstance(doc.get("kty"), str):
        raise CliError(
            f"--jwk-file: {path} must hold a JSON Web Key (an object with kty)", EXIT_USAGE
        )
    return dict(doc)


# -- verbs --------------------------------------------------------------------------------------


def _create(dp: DataPlane, args: argparse.Namespace) -> Any:
    kty = args.kty or ("EC" if args.curve else "RSA")
    if args.protection == "hsm" and not kty.endswith("-HSM"):
        kty += "-HSM"
    base = kty.removesuffix("-HSM")
    if args.curve and base != "EC":
        raise CliError(f"--curve applies to EC keys only, not to --kty {kty}", EXIT_USAGE)
    if args.size is not None and base == "EC":
        raise CliError("--size applies to RSA and oct keys; EC keys take --curve", EXIT_USAGE)
    body: dict[str, Any] = {"kty": kty}
    if args.size is not None:
        body["key_size"] = args.size
    if args.curve:
        body["crv"] = args.curve
    if args.ops is not None:
        body["key_ops"] = args.ops
    return _key_out(
        dp.request("POST", item_path("keys", args.name, "create"), _common_body(args, body))
    )


def _import(dp: DataPlane, args: argparse.Namespace) -> Any:
    sources = [s for s in (args.pem_file, args.pem_string, args.jwk_file) if s is not None]
    if len(sources) != 1:
        raise CliError("pass exactly one of --pem-file, --pem-string and --jwk-file", EXIT_USAGE)
    if args.pem_password is not None and args.jwk_file is not None:
        raise CliError("--pem-password goes with --pem-file or --pem-string", EXIT_USAGE)
    if args.jwk_file is not None:
        jwk = _jwk_from_file(args.jwk_file)
    else:
        pem = read_bytes(args.pem_file, "--pem-file") if args.pem_file else args.pem_string.encode()
        jwk = _jwk_from_pem(pem, args.pem_password)
    if args.ops is not None:
        jwk["key_ops"] = args.ops
    body = {"key": jwk, "Hsm": args.protection == "hsm"}
    return _key_out(dp.request("PUT", item_path("keys", args.name), _common_body(args, body)))


def _show(dp: DataPlane, args: argparse.Namespace) -> Any:
    return _key_out(dp.request("GET", item_path("keys", args.name, version_of(args))))


def _list(dp: DataPlane, args: argparse.Namespace) -> Any:
    return collect(dp, "/keys", args, _item_out)


def _list_versions(dp: DataPlane, args: argparse.Namespace) -> Any:
    return collect(dp, item_path("keys", args.name, "versions"), args, _item_out)


def _set_attributes(dp: DataPlane, args: argparse.Namespace) -> Any:
    body: dict[str, Any] = {}
    attributes = _attributes(args, args.enabled)
    if attributes:
        body["attributes"] = attributes
    if args.ops is not None:
        body["key_ops"] = args.ops
    if args.tags is not None:
        body["tags"] = parse_tags(args.tags)
    return _key_out(dp.request("PATCH", item_path("keys", args.name, version_of(args)), body))


def _delete(dp: DataPlane, args: argparse.Namespace) -> Any:
    return _key_out(dp.request("DELETE", item_path("keys", args.name)))


def _list_deleted(dp: DataPlane, args: argparse.Namespace) -> Any:
    return collect(dp, "/deletedkeys", args, _item_out)


def _show_deleted(dp: DataPlane, args: argparse.Namespace) -> Any:
    return _key_out(dp.request("GET", item_path("deletedkeys", args.name)))


def _recover(dp: DataPlane, args: argparse.Namespace) -> Any:
    return _key_out(dp.request("POST", item_path("deletedkeys", args.name, "recover")))


def _purge(dp: DataPlane, args: argparse.Namespace) -> Any:
    dp.request("DELETE", item_path("deletedkeys", args.name))
    return None


def _backup(dp: DataPlane, args: argparse.Namespace) -> Any:
    backup_to(dp, item_path("keys", args.name, "backup"), args.file)


def _restore(dp: DataPlane, args: argparse.Namespace) -> Any:
    return _key_out(restore_from(dp, "keys", args.file))


def _rotate(dp: DataPlane, args: argparse.Namespace) -> Any:
    return _key_out(dp.request("POST", item_path("keys", args.name, "rotate")))


def _public_key(jwk: dict[str, Any]) -> rsa.RSAPublicKey | ec.EllipticCurvePublicKey:
    kty = str(jwk.get("kty") or "")
    try:
        if kty.removesuffix("-HSM") == "RSA":
            n = int.from_bytes(unb64url(jwk["n"]), "big")
            e = int.from_bytes(unb64url(jwk["e"]), "big")
            return rsa.RSAPublicNumbers(e, n).public_key()
        if kty.removesuffix("-HSM") == "EC":
            curve = _CURVES[jwk["crv"]]
            x = int.from_bytes(unb64url(jwk["x"]), "big")
            y = int.from_bytes(unb64url(jwk["y"]), "big")
            return ec.EllipticCurvePublicNumbers(x, y, curve()).public_key()
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise CliError(
            f"the service returned an incomplete {kty} public key ({exc})", EXIT_FAILED
        ) from None
    raise CliError(
        f"cannot download a key of type {kty or '(none)'}: only RSA and EC keys have a public key",
        EXIT_FAILED,
    )


def _download(dp: DataPlane, args: argparse.Namespace) -> Any:
    target = new_file(args.file)
    bundle = dp.request("GET", item_path("keys", args.name, version_of(args)))
    public = _public_key(bundle.get("key") or {})
    encoding = serialization.Encoding.DER if args.encoding == "DER" else serialization.Encoding.PEM
    target.write_bytes(
        public.public_bytes(encoding, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return None


def _op_path(args: argparse.Namespace, op: str) -> str:
    return item_path("keys", args.name, version_of(args), op)


def _encrypt(dp: DataPlane, args: argparse.Namespace) -> Any:
    if args.data_type == "plaintext":
        value = args.value.encode()
    else:
        value = _from_base64(args.value, "--value")
    body: dict[str, Any] = {"alg": args.algorithm, "value": b64url(value)}
    for field, raw in (("iv", args.iv), ("aad", args.aad)):
        data = _from_hex(raw, f"--{field}")
        if data is not None:
            body[field] = b64url(data)
    doc = dp.request("POST", _op_path(args, "encrypt"), body)
    return {
        "aad": _hex_out(doc.get("aad") or body.get("aad")),
        "algorithm": args.algorithm,
        "iv": _hex_out(doc.get("iv") or body.get("iv")),
        "kid": doc.get("kid"),
        "result": std_b64(doc.get("value")),
        "tag": _hex_out(doc.get("tag")),
    }


def _decrypt(dp: DataPlane, args: argparse.Namespace) -> Any:
    body: dict[str, Any] = {
        "alg": args.algorithm,
        "value": b64url(_from_base64(args.value, "--value")),
    }
    for field, raw in (("iv", args.iv), ("aad", args.aad), ("tag", args.tag)):
        data = _from_hex(raw, f"--{field}")
        if data is not None:
            body[field] = b64url(data)
    doc = dp.request("POST", _op_path(args, "decrypt"), body)
    plaintext = unb64url(doc.get("value") or "")
    if args.data_type == "plaintext":
        try:
            result = plaintext.decode()
        except UnicodeDecodeError:
            raise CliError(
                "the plaintext is not UTF-8 text; use --data-type base64", EXIT_USAGE
            ) from None
    else:
        result = base64.b64encode(plaintext).decode()
    return {"algorithm": args.algorithm, "kid": doc.get("kid"), "result": result}


def _sign(dp: DataPlane, args: argparse.Namespace) -> Any:
    digest = _from_base64(args.digest, "--digest")
    doc = dp.request(
        "POST", _op_path(args, "sign"), {"alg": args.algorithm, "value": b64url(digest)}
    )
    return {
        "algorithm": args.algorithm,
        "keyId": doc.get("kid"),
        "signature": std_b64(doc.get("value")),
    }


def _verify(dp: DataPlane, args: argparse.Namespace) -> Any:
    digest = _from_base64(args.digest, "--digest")
    signature = _from_base64(args.signature, "--signature")
    # As az's CryptographyClient does: read the key first, its kid names the version to use;
    # if the service refuses that read (403: a disabled key), ask it to verify all the same.
    try:
        bundle = dp.request("GET", item_path("keys", args.name, version_of(args)))
    except CliError as exc:
        if exc.exit_code != EXIT_FAILED:
            raise
        bundle = {}
    kid = str((bundle.get("key") or {}).get("kid") or "")
    version = urlsplit(kid).path.strip("/").split("/")[-1] if kid.count("/") >= 5 else ""
    body = {"alg": args.algorithm, "digest": b64url(digest), "value": b64url(signature)}
    doc = dp.request(
        "POST", item_path("keys", args.name, version or version_of(args), "verify"), body
    )
    return {"algorithm": args.algorithm, "isValid": doc.get("value") is True, "keyId": kid or None}


def _pick(doc: dict[str, Any], camel: str, snake: str) -> Any:
    return doc.get(camel) if doc.get(camel) is not None else doc.get(snake)


def _policy_body(doc: Any) -> dict[str, Any]:
    """az's policy JSON (camelCase or snake_case; the REST form or az's own ``show`` output)
    as the REST body ``{"lifetimeActions":[{"trigger","action"}],"attributes"}``."""
    if not isinstance(doc, dict):
        raise CliError("--value must be a JSON object (a rotation policy)", EXIT_USAGE)
    raw = _pick(doc, "lifetimeActions", "lifetime_actions") or []
    if not isinstance(raw, list):
        raise CliError("--value: lifetimeActions must be an array", EXIT_USAGE)
    actions = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise CliError(f"--value: lifetimeActions[{i}] must be an object", EXIT_USAGE)
        action = item.get("action")
        kind = action.get("type") if isinstance(action, dict) else action
        nested = item.get("trigger")
        trigger: dict[str, Any] = nested if isinstance(nested, dict) else item
        times = {
            "timeAfterCreate": _pick(trigger, "timeAfterCreate", "time_after_create"),
            "timeBeforeExpiry": _pick(trigger, "timeBeforeExpiry", "time_before_expiry"),
        }
        actions.append(
            {"trigger": {k: v for k, v in times.items() if v is not None}, "action": {"type": kind}}
        )
    expiry = None
    for where in (doc, doc.get("attributes")):
        if isinstance(where, dict):
            found = _pick(where, "expiryTime", "expiry_time")
            found = found if found is not None else _pick(where, "expiresIn", "expires_in")
            expiry = found if found is not None else expiry
    return {
        "lifetimeActions": actions,
        "attributes": {} if expiry is None else {"expiryTime": expiry},
    }


def _policy_show(dp: DataPlane, args: argparse.Namespace) -> Any:
    return _policy_out(dp.request("GET", item_path("keys", args.name, "rotationpolicy")))


def _policy_update(dp: DataPlane, args: argparse.Namespace) -> Any:
    body = _policy_body(json_value(args.value, "--value", "a rotation policy"))
    return _policy_out(dp.request("PUT", item_path("keys", args.name, "rotationpolicy"), body))


# -- wiring -------------------------------------------------------------------------------------


#: A key verb; ``--id`` is a key id or a deleted key's recovery id.
_verb = partial(verb, noun="key", collections=("keys", "deletedkeys"))


def _state_flags(p: argparse.ArgumentParser, *, enabled: bool = False) -> None:
    if enabled:
        p.add_argument("--enabled", type=parse_bool, help="true or false")
    else:
        p.add_argument(
            "--disabled", type=parse_bool, help="create the version disabled (true/false)"
        )
    p.add_argument(
        "--expires", type=parse_time, help="expiry, ISO 8601 (e.g. 2030-01-01T00:00:00Z)"
    )
    p.add_argument("--not-before", type=parse_time, help="not valid before, ISO 8601")
    p.add_argument(
        "--ops",
        nargs="+",
        type=_key_op,
        metavar="OP",
        help=f"permitted operations: {' '.join(KEY_OPS)}",
    )
    p.add_argument("--tags", nargs="*", metavar="KEY=VALUE", help="space-separated tags")


def _protection(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--protection",
        "-p",
        choices=("hsm", "software"),
        help="hsm: keep the key in the HSM (-HSM key types)",
    )


def register(groups: Any) -> None:
    key = groups.add_parser("key", help="manage keys (the verbs of az keyvault key)")
    verbs = key.add_subparsers(dest="verb", required=True, metavar="VERB", parser_class=UsageParser)

    p = _verb(verbs, "create", _create, "create a key or add a new version")
    p.add_argument("--kty", choices=KTYS, help="key type (default RSA, or EC with --curve)")
    p.add_argument("--size", type=int, help="RSA: 2048, 3072 or 4096; oct: 128, 192 or 256")
    p.add_argument("--curve", choices=CURVES, help="EC curve")
    _protection(p)
    _state_flags(p)

    p = _verb(verbs, "import", _import, "import a private key (PEM or JWK)")
    p.add_argument("--pem-file", help="a PEM file holding an RSA or EC private key")
    p.add_argument("--pem-string", help="the PEM text itself")
    p.add_argument("--pem-password", help="the PEM's password, if it is encrypted")
    p.add_argument("--jwk-file", help="a JSON Web Key with its private members (base64url)")
    _protection(p)
    _state_flags(p)

    _verb(verbs, "show", _show, "a key's public part and attributes", version=True)
    p = _verb(verbs, "list", _list, "the keys of a vault", item=False)
    p.add_argument("--maxresults", type=int, help="at most this many keys")
    p.add_argument(
        "--include-managed", action="store_true", help="include keys that back certificates"
    )
    p = _verb(verbs, "list-versions", _list_versions, "the versions of a key")
    p.add_argument("--maxresults", type=int, help="at most this many versions")
    p = _verb(
        verbs, "set-attributes", _set_attributes, "change a version's attributes", version=True
    )
    _state_flags(p, enabled=True)
    _verb(verbs, "delete", _delete, "soft-delete a key (recoverable)")
    p = _verb(verbs, "list-deleted", _list_deleted, "deleted keys", item=False)
    p.add_argument("--maxresults", type=int, help="at most this many keys")
    _verb(verbs, "show-deleted", _show_deleted, "a deleted key")
    _verb(verbs, "recover", _recover, "recover a deleted key")
    _verb(verbs, "purge", _purge, "remove a deleted key for good")
    p = _verb(verbs, "backup", _backup, "write an encrypted backup of all versions to a file")
    p.add_argument("--file", "-f", required=True, help="where to write the backup")
    p = _verb(verbs, "restore", _restore, "restore a backup file", item=False)
    p.add_argument("--file", "-f", required=True, help="the backup file")
    _verb(verbs, "rotate", _rotate, "add a new version with the same parameters")
    p = _verb(
        verbs, "download", _download, "write the public key (RSA, EC) to a file", version=True
    )
    p.add_argument("--file", "-f", required=True, help="where to write the public key")
    p.add_argument("--encoding", "-e", choices=("PEM", "DER"), default="PEM", help="default PEM")

    p = _verb(verbs, "encrypt", _encrypt, "encrypt with the key", version=True)
    p.add_argument("--algorithm", "-a", required=True, choices=ENCRYPTION_ALGORITHMS)
    p.add_argument("--value", required=True, help="the data (see --data-type)")
    p.add_argument("--data-type", choices=DATA_TYPES, default="base64", help="of --value")
    p.add_argument("--iv", help="initialization vector, hex (AES-CBC)")
    p.add_argument("--aad", help="additional authenticated data, hex (AES-GCM)")
    p = _verb(verbs, "decrypt", _decrypt, "decrypt with the key", version=True)
    p.add_argument("--algorithm", "-a", required=True, choices=ENCRYPTION_ALGORITHMS)
    p.add_argument("--value", required=True, help="the ciphertext, base64")
    p.add_argument("--data-type", choices=DATA_TYPES, default="base64", help="of the result")
    p.add_argument("--iv", help="initialization vector, hex")
    p.add_argument("--aad", help="additional authenticated data, hex")
    p.add_argument("--tag", help="authentication tag, hex (AES-GCM)")
    p = _verb(verbs, "sign", _sign, "sign a digest with the key", version=True)
    p.add_argument("--algorithm", "-a", required=True, choices=SIGNATURE_ALGORITHMS)
    p.add_argument("--digest", required=True, help="the digest to sign, base64")
    p = _verb(verbs, "verify", _verify, "verify a signature of a digest", version=True)
    p.add_argument("--algorithm", "-a", required=True, choices=SIGNATURE_ALGORITHMS)
    p.add_argument("--digest", required=True, help="the signed digest, base64")
    p.add_argument("--signature", required=True, help="the signature, base64")

    policy = verbs.add_parser("rotation-policy", help="a key's rotation policy")
    policy_verbs = policy.add_subparsers(
        dest="policy_verb", required=True, metavar="VERB", parser_class=UsageParser
    )
    _verb(policy_verbs, "show", _policy_show, "show a key's rotation policy")
    p = _verb(policy_verbs, "update", _policy_update, "replace a key's rotation policy")
    p.add_argument("--value", required=True, help="the policy: JSON, @FILE or a file path")
