"""The software plugin's root key file: format, strict parsing and crash-safe rewriting.

Format (text, UTF-8)::

    # comment lines and blank lines are ignored
    <base64 of 32 random bytes>      <- oldest root key
    <base64 of 32 random bytes>      <- the last key line is the active one

Keys are only ever appended (rotation), never edited, so every older wrap keeps unwrapping.
The file must be mode 0600 (or stricter); it is rewritten atomically (temp file, fsync,
rename, fsync of the directory) so a crash never leaves a half-written key file.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import hashlib
import hmac
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from kvault.errors import ConfigError
from kvault.hsm._options import read_secret_file

KEY_BYTES = 32
HEADER = (
    "# kvault software HSM root keys: SECRET, keep mode 0600.\n"
    "# One base64 AES-256 key per line, oldest first; the last line is the active key.\n"
)
_KEY_ID_INFO = b"kvault root key id"


def key_id(key: bytes) -> str:
    """A stable public name for a key; an HMAC so the id reveals nothing about the key."""
    return hmac.new(key, _KEY_ID_INFO, hashlib.sha256).hexdigest()[:16]


def parse_keys(text: str, source: str) -> list[bytes]:
    """Decode one base64 key per line (or whitespace/comma separated), oldest first.

    ``source`` names where the text came from, for error messages; the text itself is never
    echoed because it is key material.
    """
    keys: list[bytes] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        for token in line.replace(",", " ").split():
            try:
                key = base64.b64decode(token, validate=True)
            except (binascii.Error, ValueError):
                raise ConfigError(
                    f"{source}, line {lineno}: malformed root key (not valid base64)"
                ) from None
            if len(key) != KEY_BYTES:
                raise ConfigError(
                    f"{source}, line {lineno}: malformed root key "
                    f"({len(key)} bytes, expected {KEY_BYTES} for AES-256)"
                )
            if key not in keys:
                keys.append(key)
    if not keys:
        raise ConfigError(f"{source}: contains no root key")
    return keys


def read_key_file(path: Path) -> list[bytes]:
    data = read_secret_file(path, "root key file")
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise ConfigError(f"root key file {path}: malformed (not ASCII text)") from None
    return parse_keys(text, f"root key file {path}")


def render(keys: Sequence[bytes]) -> bytes:
    return (HEADER + "".join(base64.b64encode(k).decode() + "\n" for k in keys)).encode()


@contextlib.contextmanager
def dir_lock(directory: Path) -> Iterator[None]:
    """Serialise creators/rotators across processes with ``flock`` on the directory itself
    (the key file is replaced by rename, so a lock on it would guard the wrong inode)."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def ensure_parent(path: Path) -> None:
    """Create missing parent directories private (0700), like ~/.ssh."""
    missing = [p for p in reversed(path.parents) if not p.exists()]
    for p in missing:
        try:
            p.mkdir(mode=0o700)
        except FileExistsError:
            continue
        os.chmod(p, 0o700)  # mkdir's mode is filtered by the umask


def write_atomic(path: Path, content: bytes) -> None:
    """Replace ``path`` by a fully written and synced 0600 file, or leave it untouched."""
    directory = path.parent
    tmp = directory / f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        try:
            os.fchmod(fd, 0o600)
            view = memoryview(content)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def create_or_read(path: Path) -> list[bytes]:
    """First start: generate the first root key into a new file; otherwise read the file."""
    try:
        ensure_parent(path)
        with dir_lock(path.parent):
            if path.exists():
                return read_key_file(path)
            keys = [os.urandom(KEY_BYTES)]
            write_atomic(path, render(keys))
            return keys
    except OSError as e:
        raise ConfigError(f"cannot create root key file {path}: {e.strerror}") from None


def append_key(path: Path) -> list[bytes]:
    """Rotation: re-read (another process may have rotated), append a fresh key, rewrite."""
    try:
        with dir_lock(path.parent):
            keys = read_key_file(path)
            keys.append(os.urandom(KEY_BYTES))
            write_atomic(path, render(keys))
            return keys
    except OSError as e:
        raise ConfigError(f"cannot rotate root key file {path}: {e.strerror}") from None
