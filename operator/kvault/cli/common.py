"""What the ``kvault key|secret|certificate`` verbs share: argument types, az's encodings and
output conventions, ``--id`` parsing, and the verb wiring with its one-line usage errors."""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import quote, urlsplit

from kvault.cli import endpoint
from kvault.cli.client import DataPlane
from kvault.cli.errors import EXIT_USAGE, CliError
from kvault.cli.output import FORMATS, render

Handler = Callable[[DataPlane, argparse.Namespace], Any]


class UsageParser(argparse.ArgumentParser):
    """Bad flags end in one ``ERROR:`` line (as az prints them) and the usage exit code."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"ERROR: {self.prog}: {message}\n")


# -- argument types ---------------------------------------------------------------------------


def parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("true", "yes", "1"):
        return True
    if lowered in ("false", "no", "0"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def parse_time(text: str) -> int:
    """ISO 8601 (as az takes it), e.g. 2030-01-01T00:00:00Z, to Unix seconds."""
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an ISO 8601 time such as 2030-01-01T00:00:00Z, got {text!r}"
        ) from None
    return int((when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp())


def parse_tags(pairs: list[str] | None) -> dict[str, str] | None:
    if pairs is None:
        return None
    tags = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not key:
            raise CliError(f"invalid tag {pair!r}: use KEY=VALUE", EXIT_USAGE)
        tags[key] = value if sep else ""
    return tags


# -- encodings and local files ----------------------------------------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def std_b64(value: Any) -> Any:
    """A base64url value of the service as az shows bytes: standard base64 (or as is)."""
    if not isinstance(value, str):
        return value
    try:
        return base64.b64encode(unb64url(value)).decode()
    except (binascii.Error, ValueError):
        return value


def short(text: str) -> str:
    return repr(text) if len(text) <= 40 else repr(text[:37] + "...")


def read_bytes(path: str, flag: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise CliError(f"{flag}: cannot read {path}: {exc.strerror}", EXIT_USAGE) from None


def new_file(path: str) -> Path:
    target = Path(path)
    if target.exists():
        raise CliError(f"{target} exists; choose another --file", EXIT_USAGE)
    return target


def backup_to(dp: DataPlane, path: str, file: str) -> None:
    """``backup --file``: the blob that ``POST path`` answers, into a new file."""
    target = new_file(file)
    target.write_bytes(unb64url(dp.request("POST", path)["value"]))


def restore_from(dp: DataPlane, collection: str, file: str) -> Any:
    """``restore --file``: the blob in ``file`` to ``POST /<collection>/restore``."""
    blob = read_bytes(file, "--file")
    return dp.request("POST", f"/{collection}/restore", {"value": b64url(blob)})


def json_value(text: str, flag: str, what: str) -> Any:
    """A JSON flag value: the JSON itself, ``@FILE``, or a file path (az reads an existing
    path as a file)."""
    if text.startswith("@"):
        text = read_bytes(text[1:], flag).decode(errors="replace")
    elif os.path.isfile(text):
        text = read_bytes(text, flag).decode(errors="replace")
    try:
        return json.loads(text)
    except ValueError:
        raise CliError(f"{flag} must be {what}: JSON, @FILE or a file", EXIT_USAGE) from None


# -- shapes as az prints them -----------------------------------------------------------------


def iso(ts: int | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat()


def name_of(item_id: str) -> str:
    """The item name in ``https://HOST/COLLECTION/NAME[/VERSION]``."""
    parts = urlsplit(item_id).path.strip("/").split("/")
    return parts[1] if len(parts) > 1 else ""


def attributes_out(attributes: dict[str, Any]) -> dict[str, Any]:
    """The attributes every item kind has, named as az prints them."""
    return {
        "created": iso(attributes.get("created")),
        "enabled": attributes.get("enabled"),
        "expires": iso(attributes.get("exp")),
        "notBefore": iso(attributes.get("nbf")),
        "recoverableDays": attributes.get("recoverableDays"),
        "recoveryLevel": attributes.get("recoveryLevel"),
        "updated": iso(attributes.get("updated")),
    }


def deletion_out(bundle: dict[str, Any], out: dict[str, Any]) -> dict[str, Any]:
    """``out`` with the recovery members of a deleted item, if ``bundle`` is one."""
    if "recoveryId" in bundle:
        out["deletedDate"] = iso(bundle.get("deletedDate"))
        out["recoveryId"] = bundle["recoveryId"]
        out["scheduledPurgeDate"] = iso(bundle.get("scheduledPurgeDate"))
    return out


# -- request pieces ---------------------------------------------------------------------------


def item_path(*parts: str) -> str:
    return "/" + "/".join(quote(p, safe="") for p in parts)


def version_of(args: argparse.Namespace) -> str:
    return str(getattr(args, "version", "") or "")


def collect(
    dp: DataPlane,
    path: str,
    args: argparse.Namespace,
    shape: Callable[[Any], Any],
    query: dict[str, str] | None = None,
) -> list[Any]:
    """A listing; like az, ``--maxresults N`` returns at most N items."""
    limit = getattr(args, "maxresults", None)
    if limit is not None and limit < 1:
        raise CliError(f"--maxresults must be at least 1, got {limit}", EXIT_USAGE)
    params = dict(query or {})
    if limit:
        params["maxresults"] = str(min(limit, 25))
    items = dp.pages(path, params or None)
    if not getattr(args, "include_managed", True):
        items = [i for i in items if not i.get("managed")]
    return [shape(i) for i in items[:limit] if isinstance(i, dict)]


# -- --id: an item id or recovery id names the vault, the item and the version -----------------


def vault_of_host(host: str) -> tuple[str, str | None] | None:
    """``V.localhost`` -> (V, None); ``V.N.localhost`` and ``V.N.svc[.cluster.local]`` ->
    (V, N): the inverse of the Host header :func:`kvault.cli.endpoint.resolve` builds."""
    for suffix in (".svc.cluster.local", ".svc", ".localhost"):
        if host.endswith(suffix) and len(host) > len(suffix):
            labels = host[: -len(suffix)].split(".")
            if len(labels) == 1 and labels[0]:
                return labels[0], None
            if len(labels) == 2 and all(labels):
                return labels[0], labels[1]
    return None


def apply_id(args: argparse.Namespace) -> None:
    """Fill ``--vault-name``, ``--namespace``, ``--name`` (and ``--version``) from ``--id``,
    whose path must start with one of ``args.id_collections``."""
    if args.name or args.vault_name or version_of(args) or args.namespace:
        raise CliError(
            "--id cannot be combined with --vault-name, --namespace, --name or --version",
            EXIT_USAGE,
        )
    collections: Sequence[str] = args.id_collections
    hint = f"a {args.noun} id such as https://dev.localhost:8443/{collections[0]}/NAME[/VERSION]"
    parts = urlsplit(args.id)
    segments = parts.path.strip("/").split("/")
    if (
        parts.scheme != "https"
        or not parts.hostname
        or not 2 <= len(segments) <= 3
        or segments[0] not in collections
        or not segments[1]
    ):
        raise CliError(f"--id must be {hint}, got {short(args.id)}", EXIT_USAGE)
    vault = vault_of_host(parts.hostname.lower())
    if vault is None:
        raise CliError(
            f"--id: cannot tell the vault from host {parts.hostname!r}; "
            "use --vault-name and --name instead",
            EXIT_USAGE,
        )
    args.vault_name, args.namespace = vault
    args.name = segments[1]
    if len(segments) == 3 and hasattr(args, "version"):
        args.version = segments[2]
    if not args.endpoint and not os.environ.get("KVAULT_ENDPOINT"):
        args.endpoint = f"https://{parts.netloc}"


# -- wiring -------------------------------------------------------------------------------------


def verb(
    verbs: Any,
    name: str,
    handler: Handler,
    help_text: str,
    *,
    noun: str,
    collections: Sequence[str],
    item: bool = True,
    version: bool = False,
) -> argparse.ArgumentParser:
    """A verb with the endpoint flags, ``--name``/``--id`` (``item``), ``--version``,
    ``--output`` and ``--query``; :func:`run` calls ``handler`` with a :class:`DataPlane`.
    ``collections``: the first path segments ``--id`` may have (e.g. keys, deletedkeys)."""
    p: argparse.ArgumentParser = verbs.add_parser(name, help=help_text)
    endpoint.add_flags(p)
    for action in p._actions:  # --id may name the vault instead
        if action.dest == "vault_name":
            action.required = False
    if item:
        p.add_argument("--name", "-n", help=f"the {noun}'s name")
        p.add_argument(
            "--id",
            help=f"the {noun}'s id (https://VAULT-HOST/{collections[0]}/NAME[/VERSION]) "
            "instead of --vault-name, --name and --version",
        )
    if version:
        p.add_argument("--version", "-v", default="", help="a version (default: the latest)")
    p.add_argument("--output", "-o", choices=FORMATS, default="json")
    p.add_argument("--query", help="JMESPath query applied to the output")
    p.set_defaults(
        handler=run,
        verb_handler=handler,
        item=item,
        noun=noun,
        id_collections=tuple(collections),
    )
    return p


def run(args: argparse.Namespace) -> int:
    if args.item and args.id:
        apply_id(args)
    if not args.vault_name:
        raise CliError(
            "the following arguments are required: --vault-name"
            + (" (or --id)" if args.item else ""),
            EXIT_USAGE,
        )
    if args.item and not args.name:
        raise CliError("the following arguments are required: --name/-n (or --id)", EXIT_USAGE)
    dp = DataPlane(endpoint.resolve(args))
    try:
        result = args.verb_handler(dp, args)
    finally:
        dp.close()
    return emit(result, args)


def emit(result: Any, args: argparse.Namespace) -> int:
    """Print ``result`` in ``--output`` (nothing for ``none``) after ``--query``."""
    text = render(result, args.output, args.query)
    if text:
        sys.stdout.write(text + "\n")
    return 0
