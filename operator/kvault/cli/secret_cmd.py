"""``kvault secret ...``: the verbs of ``az keyvault secret``, against kvault's data plane."""

from __future__ import annotations

import argparse
import base64
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kvault.cli import endpoint
from kvault.cli.client import DataPlane
from kvault.cli.common import (
    attributes_out,
    backup_to,
    deletion_out,
    emit,
    item_path,
    name_of,
    parse_bool,
    parse_tags,
    parse_time,
    restore_from,
)
from kvault.cli.errors import EXIT_USAGE, CliError
from kvault.cli.output import FORMATS

Handler = Callable[[DataPlane, argparse.Namespace], Any]
ENCODINGS = ("utf-8", "ascii", "base64", "hex")


# -- shapes as az prints them -----------------------------------------------------------------


def _shape(bundle: dict[str, Any]) -> dict[str, Any]:
    attributes = bundle.get("attributes") or {}
    item_id = bundle.get("id") or bundle.get("recoveryId") or ""
    out: dict[str, Any] = {
        "attributes": attributes_out(attributes),
        "contentType": bundle.get("contentType"),
        "id": bundle.get("id"),
        "managed": bundle.get("managed"),
        "name": name_of(item_id),
        "tags": bundle.get("tags") or {},
    }
    if "value" in bundle:
        out["kid"] = bundle.get("kid")
        out["value"] = bundle["value"]
    return deletion_out(bundle, out)


def _attributes(args: argparse.Namespace, enabled: bool | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if enabled is not None:
        out["enabled"] = enabled
    if args.expires is not None:
        out["exp"] = args.expires
    if args.not_before is not None:
        out["nbf"] = args.not_before
    return out


# -- verbs --------------------------------------------------------------------------------------


def _read_value(args: argparse.Namespace) -> tuple[str, str | None]:
    """The value to store and the ``file-encoding`` tag az adds for ``--file``."""
    if (args.value is None) == (args.file is None):
        raise CliError("pass exactly one of --value and --file", EXIT_USAGE)
    if args.value is not None:
        return args.value, None
    try:
        raw = Path(args.file).read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {args.file}: {exc.strerror}", EXIT_USAGE) from None
    try:
        if args.encoding == "base64":
            return base64.b64encode(raw).decode(), args.encoding
        if args.encoding == "hex":
            return raw.hex(), args.encoding
        return raw.decode(args.encoding), args.encoding
    except UnicodeDecodeError:
        raise CliError(
            f"{args.file} is not valid {args.encoding}; try --encoding base64", EXIT_USAGE
        ) from None


def _set(dp: DataPlane, args: argparse.Namespace) -> Any:
    value, encoding = _read_value(args)
    tags = parse_tags(args.tags) or {}
    if encoding:
        tags.setdefault("file-encoding", encoding)
    body: dict[str, Any] = {"value": value, "tags": tags}
    if args.content_type is not None:
        body["contentType"] = args.content_type
    attributes = _attributes(args, None if args.disabled is None else not args.disabled)
    if attributes:
        body["attributes"] = attributes
    return _shape(dp.request("PUT", item_path("secrets", args.name), body))


def _show(dp: DataPlane, args: argparse.Namespace) -> Any:
    return _shape(dp.request("GET", item_path("secrets", args.name, args.version or "")))


def _list(dp: DataPlane, args: argparse.Namespace) -> Any:
    query = {"maxresults": str(args.maxresults)} if args.maxresults else None
    return [_shape(i) for i in dp.pages("/secrets", query)]


def _list_versions(dp: DataPlane, args: argparse.Namespace) -> Any:
    return [_shape(i) for i in dp.pages(item_path("secrets", args.name, "versions"))]


def _set_attributes(dp: DataPlane, args: argparse.Namespace) -> Any:
    body: dict[str, Any] = {}
    attributes = _attributes(args, args.enabled)
    if attributes:
        body["attributes"] = attributes
    if args.content_type is not None:
        body["contentType"] = args.content_type
    if args.tags is not None:
        body["tags"] = parse_tags(args.tags)
    return _shape(dp.request("PATCH", item_path("secrets", args.name, args.version or ""), body))


def _delete(dp: DataPlane, args: argparse.Namespace) -> Any:
    return _shape(dp.request("DELETE", item_path("secrets", args.name)))


def _list_deleted(dp: DataPlane, args: argparse.Namespace) -> Any:
    return [_shape(i) for i in dp.pages("/deletedsecrets")]


def _show_deleted(dp: DataPlane, args: argparse.Namespace) -> Any:
    return _shape(dp.request("GET", item_path("deletedsecrets", args.name)))


def _recover(dp: DataPlane, args: argparse.Namespace) -> Any:
    return _shape(dp.request("POST", item_path("deletedsecrets", args.name, "recover")))


def _purge(dp: DataPlane, args: argparse.Namespace) -> Any:
    dp.request("DELETE", item_path("deletedsecrets", args.name))
    return None


def _backup(dp: DataPlane, args: argparse.Namespace) -> Any:
    backup_to(dp, item_path("secrets", args.name, "backup"), args.file)


def _restore(dp: DataPlane, args: argparse.Namespace) -> Any:
    return _shape(restore_from(dp, "secrets", args.file))


# -- wiring -------------------------------------------------------------------------------------


def _verb(
    verbs: Any, name: str, handler: Handler, help_text: str, *, item: bool = True
) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = verbs.add_parser(name, help=help_text)
    endpoint.add_flags(p)
    if item:
        p.add_argument("--name", "-n", required=True, help="the secret's name")
    p.add_argument("--output", "-o", choices=FORMATS, default="json")
    p.add_argument("--query", help="JMESPath query applied to the output")
    p.set_defaults(handler=_run, verb_handler=handler)
    return p


def _timing_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--expires", type=parse_time, help="expiry, ISO 8601 (e.g. 2030-01-01T00:00:00Z)"
    )
    p.add_argument("--not-before", type=parse_time, help="not valid before, ISO 8601")
    p.add_argument("--content-type", help="a description of the value (e.g. text/plain)")
    p.add_argument("--tags", nargs="*", metavar="KEY=VALUE", help="space-separated tags")


def register(groups: Any) -> None:
    secret = groups.add_parser("secret", help="manage secrets (the verbs of az keyvault secret)")
    verbs = secret.add_subparsers(dest="verb", required=True, metavar="VERB")

    p = _verb(verbs, "set", _set, "create a secret or add a new version")
    p.add_argument("--value", help="the value")
    p.add_argument("--file", "-f", help="read the value from a file")
    p.add_argument("--encoding", "-e", choices=ENCODINGS, default="utf-8", help="with --file")
    p.add_argument("--disabled", type=parse_bool, help="create the version disabled (true/false)")
    _timing_flags(p)

    p = _verb(verbs, "show", _show, "a secret's value and attributes")
    p.add_argument("--version", "-v", default="", help="a version (default: the latest)")
    p = _verb(verbs, "list", _list, "the secrets of a vault (metadata only)", item=False)
    p.add_argument("--maxresults", type=int, help="page size (1-25)")
    _verb(verbs, "list-versions", _list_versions, "the versions of a secret")
    p = _verb(verbs, "set-attributes", _set_attributes, "change a version's attributes")
    p.add_argument("--version", "-v", default="", help="a version (default: the latest)")
    p.add_argument("--enabled", type=parse_bool, help="true or false")
    _timing_flags(p)
    _verb(verbs, "delete", _delete, "soft-delete a secret (recoverable)")
    _verb(verbs, "list-deleted", _list_deleted, "deleted secrets", item=False)
    _verb(verbs, "show-deleted", _show_deleted, "a deleted secret")
    _verb(verbs, "recover", _recover, "recover a deleted secret")
    _verb(verbs, "purge", _purge, "remove a deleted secret for good")
    p = _verb(verbs, "backup", _backup, "write an encrypted backup of all versions to a file")
    p.add_argument("--file", "-f", required=True, help="where to write the backup")
    p = _verb(verbs, "restore", _restore, "restore a backup file", item=False)
    p.add_argument("--file", "-f", required=True, help="the backup file")


def _run(args: argparse.Namespace) -> int:
    dp = DataPlane(endpoint.resolve(args))
    try:
        result = args.verb_handler(dp, args)
    finally:
        dp.close()
    return emit(result, args)
