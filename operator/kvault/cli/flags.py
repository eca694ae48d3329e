"""Flags that ``kvault server`` and ``kvault operator`` share, declared and read once."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from kvault.app.defaults import (
    DEFAULT_HSM,
    DEFAULT_PORT,
    DEFAULT_PRINCIPAL_RATE,
    DEFAULT_STORAGE,
    DEFAULT_VAULT_RATE,
)
from kvault.app.listener import DEFAULT_CONNECTIONS
from kvault.cli.errors import EXIT_USAGE, CliError

if TYPE_CHECKING:
    from kvault.app.backends import Backends
    from kvault.app.cluster import DataPlane, RateLimits
    from kvault.app.listener import ConnectionLimits


def add_listener(parser: Any, *, what: str = "port") -> None:
    """``--host`` and ``--port``, and the connection caps and deadlines (docs/api.md)."""
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"{what} (default {DEFAULT_PORT}; 0: any)"
    )
    c = DEFAULT_CONNECTIONS
    for flag, kind, default, metavar, text in (
        ("--header-timeout", float, c.header_timeout, "SECONDS",
         "close a connection whose request headers (or TLS handshake) take longer"),
        ("--body-timeout", float, c.body_timeout, "SECONDS",
         "close a connection whose request body takes longer after its headers"),
        ("--idle-timeout", float, c.idle_timeout, "SECONDS",
         "close a keep-alive connection idle for longer"),
        ("--max-connections", int, c.max_connections, "N",
         "open connections in total; more are closed as they are accepted"),
        ("--max-connections-per-client", int, c.max_connections_per_client, "N",
         "open connections from one client address; more are closed as they are accepted"),
    ):  # fmt: skip
        parser.add_argument(
            flag, type=kind, default=default, metavar=metavar, help=f"{text} (default {default})"
        )


def connections(args: argparse.Namespace) -> ConnectionLimits:
    """The connection caps and deadlines of :func:`add_listener`'s flags."""
    from kvault.app.listener import connection_limits
    from kvault.errors import ConfigError

    try:
        return connection_limits(
            header_timeout=args.header_timeout,
            body_timeout=args.body_timeout,
            idle_timeout=args.idle_timeout,
            max_connections=args.max_connections,
            max_connections_per_client=args.max_connections_per_client,
        )
    except ConfigError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None


def add_limits(parser: Any) -> None:
    """``--vault-rate-limit`` and ``--principal-rate-limit`` (429 ``Throttled`` beyond)."""
    parser.add_argument(
        "--vault-rate-limit",
        default=DEFAULT_VAULT_RATE,
        metavar="COUNT/SECONDS",
        help=f"requests one vault serves per SECONDS, COUNT at once at most (token bucket); "
        f"beyond: 429 Throttled + Retry-After (default {DEFAULT_VAULT_RATE}, Azure's; 0: none)",
    )
    parser.add_argument(
        "--principal-rate-limit",
        default=DEFAULT_PRINCIPAL_RATE,
        metavar="COUNT/SECONDS",
        help=f"requests one principal may make per SECONDS, across vaults "
        f"(default {DEFAULT_PRINCIPAL_RATE}; 0: none)",
    )


def limits(args: argparse.Namespace) -> RateLimits:
    """The rate limits of ``--vault-rate-limit`` and ``--principal-rate-limit``."""
    from kvault.app.cluster import rate_limits
    from kvault.errors import ConfigError

    try:
        return rate_limits(args.vault_rate_limit, args.principal_rate_limit)
    except ConfigError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None


def add_cluster(parser: Any, *, audience_help: str) -> None:
    """``--kubeconfig``, ``--audience``, ``--hsm``, ``--hsm-option``, ``--storage``,
    ``--storage-option`` and ``--dev-certificate-validity-floor``."""
    parser.add_argument("--kubeconfig", help="default: $KUBECONFIG, in-cluster, ~/.kube/config")
    parser.add_argument("--audience", action="append", help=audience_help)
    parser.add_argument("--hsm", default=DEFAULT_HSM, help="HSM plugin (software, pkcs11, ...)")
    parser.add_argument(
        "--hsm-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="plugin option (repeatable, one KEY=VALUE each)",
    )
    parser.add_argument(
        "--storage",
        default=DEFAULT_STORAGE,
        help=f"storage backend: sqlite (a file in --data-dir) or postgresql "
        f"(default {DEFAULT_STORAGE})",
    )
    parser.add_argument(
        "--storage-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="storage option (repeatable): postgresql takes dsn_env=VARIABLE or dsn_file=PATH "
        "(the DSN, never on the command line), pool_size=N, timeout=SECONDS",
    )
    parser.add_argument(
        "--dev-certificate-validity-floor",
        type=int,
        metavar="SECONDS",
        help="tests and demos only: certificate policies may give x509_props.validity_seconds "
        "from SECONDS up (short-lived certificates that renew on real time); unset: refused",
    )


def port(value: int, flag: str, *, lowest: int = 0) -> int:
    if not lowest <= value <= 65535:
        raise CliError(f"{flag} must be {lowest}-65535, got {value}", EXIT_USAGE)
    return value


def backends(args: argparse.Namespace) -> Backends:
    """:class:`kvault.app.backends.Backends` from ``--hsm``, ``--hsm-option``, ``--storage``,
    ``--storage-option`` and ``--dev-certificate-validity-floor``."""
    from kvault.app.backends import Backends, parse_options
    from kvault.errors import ConfigError

    storage: str = getattr(args, "storage", DEFAULT_STORAGE)
    if "://" in storage or "@" in storage:  # a DSN: never echo it (it may hold a password)
        raise CliError(
            "--storage takes a backend name (sqlite, postgresql); give PostgreSQL's DSN with "
            "--storage-option dsn_env=VARIABLE or dsn_file=PATH, never on the command line",
            EXIT_USAGE,
        )
    try:
        options = parse_options(args.hsm_option)
        storage_options = parse_options(getattr(args, "storage_option", []), "--storage-option")
    except ConfigError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    floor = args.dev_certificate_validity_floor
    if floor is not None and floor < 1:
        raise CliError(
            f"--dev-certificate-validity-floor must be at least 1 second, got {floor}", EXIT_USAGE
        )
    return Backends(
        hsm=args.hsm,
        hsm_options=options,
        storage=storage,
        storage_options=storage_options,
        certificate_validity_floor=floor,
    )


def data_plane(args: argparse.Namespace, **extra: Any) -> DataPlane:
    """The cluster data plane that the shared flags describe (``extra``: the command's own)."""
    from kvault.app.cluster import DataPlane

    return DataPlane(
        data_dir=args.data_dir,
        kubeconfig=args.kubeconfig,
        backends=backends(args),
        audiences=tuple(args.audience or ()),
        host=args.host,
        port=args.port,
        limits=limits(args),
        connections=connections(args),
        **extra,
    )
