"""``kvault vault backup|restore``: a whole vault to one encrypted file and back (docs/backup.md).

::

    kvault vault backup --vault-name V --file F [--passphrase-file P]
    kvault vault restore --file F [--vault-name NEW] [--passphrase-file P]

The server builds and checks the file (plaintext never leaves it); the CLI moves the bytes,
keeps a backup only once it arrived whole (written to ``F.partial``, mode 0600, then renamed),
and shows progress on stderr: a bar on a terminal, else one JSON line per step
(``{"phase": "backup", "done": n, "total": m}``). The summary (counts, digest) goes to stdout.
Vaults themselves are Kubernetes resources: any other ``kvault vault`` word gets that hint.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import urlencode

from kvault.cli import endpoint
from kvault.cli.client import API_VERSION, DataPlane, _error
from kvault.cli.common import emit
from kvault.cli.errors import EXIT_FAILED, EXIT_USAGE, CliError
from kvault.cli.output import FORMATS
from kvault.errors import KvaultError

if TYPE_CHECKING:
    from kvault.app.backup_file import Header

PIECE = 64 * 1024
#: Seconds a backup or restore may wait for the server between two reads (a large vault's
#: restore is checked and committed before the answer).
TIMEOUT = 600.0
_BAR = 30


def register(groups: Any) -> None:
    vault = groups.add_parser(
        "vault", help="back up or restore a whole vault (vaults are Kubernetes resources)"
    )
    verbs = vault.add_subparsers(dest="verb", required=True, metavar="VERB")
    b = verbs.add_parser(
        "backup",
        help="every item of every kind (all versions, deleted items), role assignments and "
        "settings into one encrypted file",
    )
    endpoint.add_flags(b)
    b.set_defaults(handler=_backup)
    r = verbs.add_parser(
        "restore", help="a whole-vault backup into a new or empty vault (all or nothing)"
    )
    endpoint.add_flags(r)
    for action in r._actions:
        if action.dest == "vault_name":
            action.required = False
            action.help = "the vault to restore into (default: the vault the backup names)"
    r.set_defaults(handler=_restore)
    for p in (b, r):
        p.add_argument("--file", "-f", required=True, help="the backup file")
        p.add_argument(
            "--passphrase-file",
            help="seal (open) the file with a key derived from the passphrase in this file "
            "(scrypt): restorable in another installation. Without it the file is sealed "
            "under this installation's HSM root key and restores only where that key is",
        )
        p.add_argument("--output", "-o", choices=FORMATS, default="json")
        p.add_argument("--query", help="JMESPath query applied to the output")


# -- progress -------------------------------------------------------------------------------------


class Progress:
    """Records done of a total: a bar when stderr is a terminal, JSON lines otherwise."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self._out = stream if stream is not None else sys.stderr
        self._tty = self._out.isatty()
        self._last: tuple[str, int, int] | None = None
        self._open = False

    def update(self, phase: str, done: int, total: int) -> None:
        if (phase, done, total) == self._last:
            return
        if self._tty and self._last is not None and self._last[0] != phase:
            self.close()
        self._last = (phase, done, total)
        if self._tty:
            filled = _BAR if total <= 0 else min(_BAR, done * _BAR // total)
            bar = "#" * filled + "-" * (_BAR - filled)
            self._out.write(f"\r{phase:<8} [{bar}] {done}/{total} records")
            self._open = True
        else:
            self._out.write(json.dumps({"phase": phase, "done": done, "total": total}) + "\n")
        self._out.flush()

    def close(self) -> None:
        if self._open:
            self._out.write("\n")
            self._out.flush()
            self._open = False


# -- transfer -------------------------------------------------------------------------------------


class Transfer(DataPlane):
    """The data-plane client, for a request whose body or answer is a file."""

    def send(
        self, path: str, body: bytes | Iterator[bytes], content_type: str
    ) -> http.client.HTTPResponse:
        """``POST path``; the response once its status is a success (an error status raises
        as every verb's does). An iterator body goes with chunked transfer encoding."""
        target = f"{path}?{urlencode({'api-version': API_VERSION})}"
        headers = {
            "Host": self._endpoint.vault_host,
            "Authorization": f"Bearer {self._endpoint.token}",
            "Content-Type": content_type,
            "x-ms-client-request-id": str(uuid.uuid4()),
        }
        with self.reaching():
            # The server may answer (an error) before it read everything: read that answer.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self._conn.request("POST", target, body=body, headers=headers)
            response = self._conn.getresponse()
        if response.status >= 400:
            raw = response.read()
            try:
                doc = json.loads(raw)
            except ValueError:
                raise CliError(f"({response.status}) {response.reason}", EXIT_FAILED) from None
            raise _error(response.status, doc)
        return response


def _passphrase(args: argparse.Namespace) -> str | None:
    if not args.passphrase_file:
        return None
    try:
        text = Path(args.passphrase_file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "not UTF-8"
        raise CliError(
            f"--passphrase-file: cannot read {args.passphrase_file}: {why}", EXIT_USAGE
        ) from None
    if text.endswith("\n"):
        text = text[:-1].removesuffix("\r")
    if not text:
        raise CliError(f"--passphrase-file: {args.passphrase_file} holds no passphrase", EXIT_USAGE)
    return text


def _client(args: argparse.Namespace) -> Transfer:
    return Transfer(endpoint.resolve(args), timeout=TIMEOUT)


# -- backup ---------------------------------------------------------------------------------------


def _backup(args: argparse.Namespace) -> int:
    from kvault.app.backup_file import MEDIA_TYPE, Splitter

    target = Path(args.file)
    if target.exists():
        raise CliError(f"{target} exists; choose another --file", EXIT_USAGE)
    partial = target.with_name(target.name + ".partial")
    passphrase = _passphrase(args)
    body = json.dumps({} if passphrase is None else {"passphrase": passphrase}).encode()
    progress = Progress()
    dp = _client(args)
    try:
        response = dp.send("/kvault/backup", body, "application/json")
        if response.getheader("Content-Type", "").split(";")[0].strip() != MEDIA_TYPE:
            raise CliError("the service did not answer with a vault backup", EXIT_FAILED)
        splitter = Splitter()
        try:
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as exc:
            raise CliError(f"cannot write {partial}: {exc.strerror}", EXIT_USAGE) from None
        try:
            with os.fdopen(fd, "wb") as out:
                while True:
                    try:
                        piece = response.read(PIECE)
                    except (OSError, http.client.HTTPException):
                        piece = b""  # cut off: the splitter says where
                    if not piece:
                        splitter.end()
                        break
                    header, chunks = splitter.feed(piece)
                    out.write(piece)
                    if header is not None:
                        progress.update("backup", 0, header.records)
                    if chunks and splitter.header is not None:
                        progress.update("backup", splitter.records, splitter.header.records)
                out.flush()
                os.fsync(out.fileno())
            os.replace(partial, target)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    except KvaultError as exc:
        raise CliError(f"the backup arrived incomplete ({exc.message}); no file was kept") from None
    finally:
        progress.close()
        dp.close()
    assert splitter.header is not None
    return emit({"file": str(target), "bytes": splitter.size, **splitter.header.summary()}, args)


# -- restore --------------------------------------------------------------------------------------


def _read_header(path: Path) -> Header:
    """The file's header (what it holds and how it is sealed), before anything is sent."""
    from kvault.app.backup_file import Splitter

    splitter = Splitter()
    try:
        with path.open("rb") as f:
            while splitter.header is None:
                piece = f.read(PIECE)
                if not piece:
                    splitter.end()
                try:
                    splitter.feed(piece)
                except KvaultError:
                    if splitter.header is None:
                        raise
                    # a damaged chunk: the server refuses it, naming what is wrong
    except OSError as exc:
        raise CliError(f"--file: cannot read {path}: {exc.strerror}", EXIT_USAGE) from None
    except KvaultError as exc:
        raise CliError(f"--file: {exc.message}", EXIT_USAGE) from None
    return splitter.header


def _restore(args: argparse.Namespace) -> int:
    from kvault.app.backup_file import Splitter

    path = Path(args.file)
    header = _read_header(path)
    if not args.vault_name:
        args.vault_name = header.vault
    passphrase = _passphrase(args)
    if header.sealed_with == "scrypt" and passphrase is None:
        raise CliError(f"{path} is sealed with a passphrase: pass --passphrase-file", EXIT_USAGE)
    if header.sealed_with == "hsm" and passphrase is not None:
        raise CliError(
            f"{path} is sealed under the HSM root key of the installation that made it, not "
            "with a passphrase: restore it without --passphrase-file",
            EXIT_USAGE,
        )
    options = json.dumps({} if passphrase is None else {"passphrase": passphrase}) + "\n"
    progress = Progress()
    total = header.records

    def body() -> Iterator[bytes]:
        """The options line, then the file as it is read; progress by chunks sent."""
        splitter = Splitter()
        yield options.encode()
        progress.update("restore", 0, total)
        with path.open("rb") as f:
            while piece := f.read(PIECE):
                try:
                    _, chunks = splitter.feed(piece)
                except KvaultError:
                    chunks = []  # the server names what is wrong with the file
                yield piece
                if chunks:
                    progress.update("restore", splitter.records, total)
        progress.update("commit", 0, 1)

    dp = _client(args)
    try:
        response = dp.send("/kvault/restore", body(), "application/vnd.kvault.vault-restore")
        try:
            result = json.loads(response.read())
        except (ValueError, OSError, http.client.HTTPException):
            raise CliError("the service's answer to the restore was cut off", EXIT_FAILED) from None
        progress.update("commit", 1, 1)
    finally:
        progress.close()
        dp.close()
    return emit({"file": str(path), **result}, args)
