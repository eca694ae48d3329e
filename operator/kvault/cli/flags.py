"""Flags that ``kvault server`` and ``kvault operator`` share, declared and read once."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from kvault.app.defaults import DEFAULT_HSM, DEFAULT_PORT
from kvault.cli.errors import EXIT_USAGE, CliError

if TYPE_CHECKING:
    from kvault.app.backends import Backends
    from kvault.app.cluster import DataPlane


def add_listener(parser: Any, *, what: str = "port") -> None:
    """``--host`` and ``--port``."""
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"{what} (default {DEFAULT_PORT}; 0: any)"
    )


def add_cluster(parser: Any, *, audience_help: str) -> None:
    """``--kubeconfig``, ``--audience``, ``--hsm``, ``--hsm-option`` and
    ``--dev-certificate-validity-floor``."""
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
    """:class:`kvault.app.backends.Backends` from ``--hsm``, ``--hsm-option`` and
    ``--dev-certificate-validity-floor``."""
    from kvault.app.backends import Backends, parse_options
    from kvault.errors import ConfigError

    try:
        options = parse_options(args.hsm_option)
    except ConfigError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    floor = args.dev_certificate_validity_floor
    if floor is not None and floor < 1:
        raise CliError(
            f"--dev-certificate-validity-floor must be at least 1 second, got {floor}", EXIT_USAGE
        )
    return Backends(hsm=args.hsm, hsm_options=options, certificate_validity_floor=floor)


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
        **extra,
    )
