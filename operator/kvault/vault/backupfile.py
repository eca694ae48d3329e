"""The whole-vault backup file: a plaintext header, then AES-256-GCM chunks (format 1).

Layout::

    b"KVAULTBK" | u32 header length | header (JSON, UTF-8) | 16-byte check tag
    chunk*:  u8 flags (1: the last chunk) | u32 records | u32 length | ciphertext+tag

The header names the format, the vault, when it was made, the record counts, the number of
chunks, the content digest and how the file key is held (``seal``): ``hsm`` (a random key
sealed under the HSM root, :mod:`kvault.barrier.portable`) or ``scrypt`` (the key derived from
a passphrase with its salt and cost). Chunk ``i`` is encrypted under the file key with nonce
``i`` (a file key is never used for two files: random, or derived with a fresh salt) and bound
to the SHA-256 of the header and to its own flags, count and length, so a chunk that is
altered, dropped, reordered, moved to another file or marked last when it was not fails to
open. The check tag (an empty message under nonce ``ff..ff``, bound to the header) tells a
wrong passphrase (or an altered header) from a damaged chunk.

This module knows the bytes only: which rows go in, and what they mean, is
:mod:`kvault.vault.wholebackup`'s. The framing helpers (:class:`Splitter`,
:func:`parse_header`) need no key, so the CLI uses them to show progress and to see that a
file it wrote is complete.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from kvault.errors import BadParameter

MAGIC = b"KVAULTBK"
FORMAT = 1
#: What the header's ``format`` member says (a file of another tool is told apart by it).
KIND = "kvault-vault-backup"
MEDIA_TYPE = "application/vnd.kvault.vault-backup"
_U32 = struct.Struct(">I")
_FRAME = struct.Struct(">BII")
FRAME_HEAD = _FRAME.size
TAG = 16
LAST = 1
MAX_HEADER = 64 * 1024
#: A chunk's ciphertext at most (the writer makes far smaller ones).
MAX_CHUNK = 64 * 1024 * 1024
_CHECK_NONCE = b"\xff" * 12
_CHECK_LABEL = b"kvault-vault-backup/check\x1f"
#: scrypt cost written into new files, and the costs a file may name (bounded, so a crafted
#: header cannot make the server spend more than 128 MiB or much more than a second).
SCRYPT_N = 2**15
SCRYPT_R = 8
SCRYPT_P = 1
_SCRYPT_N_ALLOWED = (2**15, 2**16, 2**17)
SALT_BYTES = 16
KEY_BYTES = 32
MIN_PASSPHRASE = 12
MAX_PASSPHRASE = 1024


class FileError(BadParameter):
    """The backup file is not one kvault can restore (damaged, altered, truncated, foreign):
    the client's input, not a server fault. Messages never quote the file's content."""


# -- the header -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Header:
    vault: str
    created: int
    records: int
    chunks: int
    counts: dict[str, int]
    digest: str
    seal: dict[str, Any]
    #: The exact bytes ``b"KVAULTBK" | length | JSON`` (what the chunks are bound to).
    raw: bytes

    @property
    def sealed_with(self) -> str:
        return str(self.seal.get("kind"))

    def summary(self) -> dict[str, Any]:
        """What the CLI shows of a file: never the seal's key material."""
        return {
            "vault": self.vault,
            "created": self.created,
            "records": self.records,
            "chunks": self.chunks,
            "counts": dict(self.counts),
            "digest": self.digest,
            "sealed": self.sealed_with,
        }


def header_bytes(doc: dict[str, Any]) -> bytes:
    body = json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()
    return MAGIC + _U32.pack(len(body)) + body


def _count(doc: dict[str, Any], field: str) -> int:
    value = doc.get(field)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise FileError(f"the backup header's {field} is not a count")
    return value


def parse_header(raw: bytes) -> Header:
    """The header of ``raw`` (``MAGIC | length | JSON``), checked for shape only: nothing in it
    is trusted until the check tag and the chunks open under the file key."""
    if raw[: len(MAGIC)] != MAGIC:
        raise FileError("this is not a kvault vault backup (its first bytes are not KVAULTBK)")
    try:
        doc = json.loads(raw[len(MAGIC) + _U32.size :].decode())
    except (ValueError, UnicodeDecodeError):
        raise FileError("the backup header is damaged (not JSON)") from None
    if not isinstance(doc, dict) or doc.get("format") != KIND:
        raise FileError("the backup header is damaged (it names no kvault backup format)")
    if doc.get("version") != FORMAT:
        raise FileError(
            f"the backup is in format version {doc.get('version')!r}; this kvault reads version "
            f"{FORMAT}"
        )
    counts = doc.get("counts")
    seal = doc.get("seal")
    vault, digest = doc.get("vault"), doc.get("digest")
    if (
        not isinstance(vault, str)
        or not isinstance(digest, str)
        or not isinstance(seal, dict)
        or not isinstance(counts, dict)
        or not all(isinstance(k, str) and type(v) is int and v >= 0 for k, v in counts.items())
    ):
        raise FileError("the backup header is damaged (a member is missing or of the wrong type)")
    chunks = _count(doc, "chunks")
    if chunks < 1:
        raise FileError("the backup header is damaged (it names no chunks)")
    return Header(
        vault, _count(doc, "created"), _count(doc, "records"), chunks, counts, digest, seal, raw
    )


# -- framing (no key needed) -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Chunk:
    index: int
    last: bool
    records: int
    #: The frame as it is in the file: its 9 header bytes, then the ciphertext.
    frame: bytes

    @property
    def ciphertext(self) -> bytes:
        return self.frame[FRAME_HEAD:]


class Splitter:
    """Cuts a byte stream into the header (with its check tag) and chunks, as bytes arrive.

    ``feed`` takes any piece of the file and returns what became complete; ``end`` says the
    stream is over and raises :class:`FileError` when it stopped short (a truncated file) or
    went on after the last chunk."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self.header: Header | None = None
        self.check: bytes = b""
        self.chunks = 0
        self.records = 0
        self.finished = False
        self.size = 0

    def feed(self, data: bytes) -> tuple[Header | None, list[Chunk]]:
        """Add ``data``; return the header if it just became complete, and the new chunks."""
        self.size += len(data)
        if self.finished:
            if data:
                raise FileError("the backup file goes on after its last chunk (altered)")
            return None, []
        self._buf += data
        fresh: Header | None = None
        if self.header is None:
            fresh = self._header()
            if fresh is None:
                return None, []
        out = []
        while not self.finished:
            chunk = self._chunk()
            if chunk is None:
                break
            out.append(chunk)
        if self.finished and self._buf:
            raise FileError("the backup file goes on after its last chunk (altered)")
        return fresh, out

    def _header(self) -> Header | None:
        buf = self._buf
        start = len(MAGIC) + _U32.size
        if len(buf) >= len(MAGIC) and bytes(buf[: len(MAGIC)]) != MAGIC:
            raise FileError("this is not a kvault vault backup (its first bytes are not KVAULTBK)")
        if len(buf) < start:
            return None
        (length,) = _U32.unpack_from(buf, len(MAGIC))
        if length > MAX_HEADER:
            raise FileError("the backup header is damaged (its length is implausible)")
        if len(buf) < start + length + TAG:
            return None
        header = parse_header(bytes(buf[: start + length]))
        self.check = bytes(buf[start + length : start + length + TAG])
        del buf[: start + length + TAG]
        self.header = header
        return header

    def _chunk(self) -> Chunk | None:
        buf = self._buf
        if len(buf) < FRAME_HEAD:
            return None
        flags, records, length = _FRAME.unpack_from(buf)
        if flags not in (0, LAST) or length > MAX_CHUNK or length < TAG:
            raise FileError(f"the backup file is damaged at chunk {self.chunks + 1}")
        if len(buf) < FRAME_HEAD + length:
            return None
        frame = bytes(buf[: FRAME_HEAD + length])
        del buf[: FRAME_HEAD + length]
        assert self.header is not None
        if self.chunks >= self.header.chunks:
            raise FileError(
                f"the backup file has more chunks than its header's {self.header.chunks} (altered)"
            )
        chunk = Chunk(self.chunks, flags == LAST, records, frame)
        self.chunks += 1
        self.records += records
        self.finished = chunk.last
        return chunk

    def end(self) -> None:
        """The stream ended: refuse a file without its header or its last chunk."""
        if self.header is None:
            raise FileError("the backup file is truncated: it ends inside its header")
        if not self.finished:
            raise FileError(
                f"the backup file is truncated: it ends after {self.chunks} of its "
                f"{self.header.chunks} chunks; nothing was restored"
            )


# -- keys and chunks ----------------------------------------------------------------------------


def new_key() -> bytes:
    return AESGCM.generate_key(256)


def scrypt_seal() -> dict[str, Any]:
    """The ``seal`` member of a new passphrase-sealed file (a fresh salt)."""
    return {
        "kind": "scrypt",
        "n": SCRYPT_N,
        "r": SCRYPT_R,
        "p": SCRYPT_P,
        "salt": base64.b64encode(os.urandom(SALT_BYTES)).decode(),
    }


def check_passphrase(passphrase: Any, *, new: bool) -> str:
    if not isinstance(passphrase, str) or not passphrase:
        raise BadParameter("passphrase must be a non-empty string")
    if len(passphrase) > MAX_PASSPHRASE:
        raise BadParameter(f"passphrase is longer than {MAX_PASSPHRASE} characters")
    if new and len(passphrase) < MIN_PASSPHRASE:
        raise BadParameter(
            f"passphrase is shorter than {MIN_PASSPHRASE} characters; the file is only as strong "
            "as its passphrase"
        )
    return passphrase


def derive(passphrase: str, seal: dict[str, Any]) -> bytes:
    """The file key from ``passphrase`` and the header's ``scrypt`` member (CPU-bound: run it
    in a thread)."""
    n, r, p, salt = seal.get("n"), seal.get("r"), seal.get("p"), seal.get("salt")
    if n not in _SCRYPT_N_ALLOWED or r != SCRYPT_R or p not in (1, 2) or not isinstance(salt, str):
        raise FileError("the backup header names scrypt parameters this kvault does not accept")
    try:
        raw_salt = base64.b64decode(salt, validate=True)
    except ValueError:
        raise FileError("the backup header is damaged (its salt is not base64)") from None
    if len(raw_salt) < SALT_BYTES:
        raise FileError("the backup header is damaged (its salt is too short)")
    assert isinstance(n, int) and isinstance(p, int)
    kdf = Scrypt(salt=raw_salt, length=KEY_BYTES, n=n, r=r, p=p)
    return kdf.derive(passphrase.encode())


def check_tag(key: bytes, header: bytes) -> bytes:
    return AESGCM(key).encrypt(_CHECK_NONCE, b"", _CHECK_LABEL + header)


def key_opens(key: bytes, header: bytes, tag: bytes) -> bool:
    try:
        AESGCM(key).decrypt(_CHECK_NONCE, tag, _CHECK_LABEL + header)
    except InvalidTag:
        return False
    return True


def _nonce(index: int) -> bytes:
    return index.to_bytes(12, "big")


class ChunkSealer:
    """Encrypts the chunks of one file (one key, one header)."""

    def __init__(self, key: bytes, header: bytes) -> None:
        self._aead = AESGCM(key)
        self._bound = hashlib.sha256(header).digest()

    def seal(self, index: int, records: int, plaintext: bytes, last: bool) -> bytes:
        length = len(plaintext) + TAG
        head = _FRAME.pack(LAST if last else 0, records, length)
        return head + self._aead.encrypt(_nonce(index), plaintext, self._bound + head)

    def open(self, chunk: Chunk) -> bytes:
        head = chunk.frame[:FRAME_HEAD]
        try:
            return self._aead.decrypt(_nonce(chunk.index), chunk.ciphertext, self._bound + head)
        except InvalidTag:
            raise FileError(
                f"the backup file is damaged or was altered: chunk {chunk.index + 1} failed "
                "authentication; nothing was restored"
            ) from None


# -- what the chunks hold -------------------------------------------------------------------


def chunk_plaintext(rows: list[tuple[str, bytes]], settings: dict[str, Any] | None) -> bytes:
    doc: dict[str, Any] = {"rows": [[k, base64.b64encode(v).decode()] for k, v in rows]}
    if settings is not None:
        doc["vault"] = settings
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


def read_chunk(
    plaintext: bytes, chunk: Chunk
) -> tuple[list[tuple[str, bytes]], dict[str, Any] | None]:
    """The rows (and, in the first chunk, the vault's settings) of an opened chunk."""
    try:
        doc = json.loads(plaintext)
        pairs = doc["rows"]
        rows = [(k, base64.b64decode(v, validate=True)) for k, v in pairs]
        if not all(isinstance(k, str) for k, _ in rows):
            raise TypeError
        settings = doc.get("vault")
        if (settings is not None and not isinstance(settings, dict)) or (
            (settings is None) == (chunk.index == 0)
        ):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise FileError(f"chunk {chunk.index + 1} of the backup is malformed") from None
    if len(rows) != chunk.records:
        raise FileError(f"chunk {chunk.index + 1} of the backup holds another count than it says")
    return rows, settings


def chunks_of(
    rows: list[tuple[str, bytes]], max_records: int, max_bytes: int
) -> Iterator[list[tuple[str, bytes]]]:
    """``rows`` in consecutive groups of at most ``max_records`` rows and about ``max_bytes``
    of values; at least one group (the first chunk carries the settings)."""
    group: list[tuple[str, bytes]] = []
    size = 0
    for row in rows:
        if group and (len(group) >= max_records or size + len(row[1]) > max_bytes):
            yield group
            group, size = [], 0
        group.append(row)
        size += len(row[1])
    yield group


class Digest:
    """The content digest: the vault's settings and every row (key and plaintext), in order;
    independent of chunking and encryption, so a vault restored and backed up again gives
    the same digest."""

    def __init__(self, settings: dict[str, Any]) -> None:
        self._h = hashlib.sha256(b"kvault-vault-backup-content/1\n")
        self._h.update(json.dumps(settings, separators=(",", ":"), sort_keys=True).encode())
        self._h.update(b"\n")

    def row(self, key: str, plaintext: bytes) -> None:
        self._h.update(key.encode() + b"\n" + base64.b64encode(plaintext) + b"\n")

    def hexdigest(self) -> str:
        return "sha256:" + self._h.hexdigest()
