"""The envelope format of one item version, the DEK cache and the decode memo, unit by unit:
the layout to the byte, the limits to the byte, each refusal's message, and what the caches
spare (a counting KEK shows when a DEK is unwrapped)."""

from __future__ import annotations

import os
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kvault.barrier import envelope
from kvault.barrier.memo import Memo
from kvault.errors import IntegrityError

AAD = b"vault\x1fsecret-version\x1fname\x1fversion"
HEADER = 5
OVERHEAD = HEADER + 12 + 48 + 12 + 16  # header, DEK nonce, wrapped DEK, data nonce, data tag
FAILED = "ciphertext failed authentication (altered, moved or foreign)"


class CountingKek:
    """An AES-GCM KEK that counts its DEK wraps and unwraps."""

    def __init__(self) -> None:
        self.aead = AESGCM(AESGCM.generate_key(256))
        self.encrypts = 0
        self.decrypts = 0

    def encrypt(self, nonce: bytes, data: bytes, aad: bytes) -> bytes:
        self.encrypts += 1
        return self.aead.encrypt(nonce, data, aad)

    def decrypt(self, nonce: bytes, data: bytes, aad: bytes) -> bytes:
        self.decrypts += 1
        return self.aead.decrypt(nonce, data, aad)


def _seal(kek: Any, plaintext: bytes, term: int = 1, cache: Any = None) -> bytes:
    return envelope.seal(kek, term, AAD, plaintext, cache)


def test_the_layout_to_the_byte() -> None:
    kek = CountingKek()
    blob = _seal(kek, b"hello", term=0x01020304)
    assert len(blob) == OVERHEAD + 5
    assert blob[0] == envelope.FORMAT == 1
    assert blob[1:5] == bytes([1, 2, 3, 4])
    assert envelope.kek_term(blob) == 0x01020304
    assert envelope.open_(kek, AAD, blob) == b"hello"  # type: ignore[arg-type]
    assert _seal(kek, b"hello") != _seal(kek, b"hello")  # a fresh DEK and nonces each time


def test_the_shortest_blob_is_an_empty_value_and_one_byte_less_is_truncated() -> None:
    kek = CountingKek()
    empty = _seal(kek, b"", term=7)
    assert len(empty) == OVERHEAD
    assert envelope.kek_term(empty) == 7
    assert envelope.open_(kek, AAD, empty) == b""  # type: ignore[arg-type]
    with pytest.raises(IntegrityError) as info:
        envelope.kek_term(empty[:-1])
    assert info.value.message == "ciphertext is truncated"


def test_an_unknown_format_is_named() -> None:
    blob = bytearray(_seal(CountingKek(), b"x", term=3))
    blob[0] = 2
    with pytest.raises(IntegrityError) as info:
        envelope.kek_term(bytes(blob))
    assert info.value.message == "unknown ciphertext format 2"


@pytest.mark.parametrize("region", ["header", "dek", "nonce", "body", "aad"])
def test_anything_altered_fails_authentication_with_or_without_the_dek_cached(
    region: str,
) -> None:
    for cached in (False, True):
        kek, cache = CountingKek(), envelope.DekCache()
        blob = bytearray(_seal(kek, b"value", cache=cache if cached else None))
        aad = AAD
        position = {"header": 4, "dek": 20, "nonce": 66, "body": len(blob) - 1}.get(region)
        if position is None:
            aad = AAD + b"x"
        else:
            blob[position] ^= 1
        with pytest.raises(IntegrityError) as info:
            envelope.open_(kek, aad, bytes(blob), cache)  # type: ignore[arg-type]
        assert info.value.message == FAILED


def test_sealing_caches_the_dek_so_the_first_read_unwraps_nothing() -> None:
    kek, cache = CountingKek(), envelope.DekCache()
    blob = _seal(kek, b"value", cache=cache)
    assert envelope.open_(kek, AAD, blob, cache) == b"value"  # type: ignore[arg-type]
    assert (kek.encrypts, kek.decrypts) == (1, 0)


def test_a_read_caches_the_dek_for_the_next() -> None:
    kek, cache = CountingKek(), envelope.DekCache()
    blob = _seal(kek, b"value")
    for _ in range(3):
        assert envelope.open_(kek, AAD, blob, cache) == b"value"  # type: ignore[arg-type]
    assert kek.decrypts == 1
    other = _seal(kek, b"other")
    assert envelope.open_(kek, AAD, other, cache) == b"other"  # type: ignore[arg-type]
    assert kek.decrypts == 2  # another version: its own DEK


def test_without_a_cache_every_read_unwraps() -> None:
    kek = CountingKek()
    blob = _seal(kek, b"value")
    for _ in range(2):
        assert envelope.open_(kek, AAD, blob) == b"value"  # type: ignore[arg-type]
    assert kek.decrypts == 2


def test_the_dek_cache_is_bounded_and_evicts_the_oldest() -> None:
    cache = envelope.DekCache(size=2)
    deks = {name: AESGCM(os.urandom(32)) for name in (b"a", b"b", b"c")}
    for name, dek in deks.items():
        cache.put(name, dek)
    assert cache.get(b"a") is None
    assert cache.get(b"b") is deks[b"b"] and cache.get(b"c") is deks[b"c"]
    cache.clear()
    assert cache.get(b"c") is None


def test_the_memo_needs_room_for_a_row() -> None:
    with pytest.raises(ValueError) as info:
        Memo[str](0)
    assert str(info.value) == "a memo holds at least one row, not 0"
    one = Memo[str](1)
    one.put("k", b"ct", "decoded")
    assert one.get("k", b"ct") == "decoded"


def test_the_memo_answers_only_for_the_same_bytes_and_evicts_the_least_used() -> None:
    memo = Memo[str](2)
    memo.put("a", b"ct-a", "A")
    memo.put("b", b"ct-b", "B")
    assert memo.get("a", b"ct-other") is None  # rewritten since: decode again
    assert memo.get("a", b"ct-a") == "A"  # a is now the most recently used
    memo.put("c", b"ct-c", "C")
    assert memo.get("b", b"ct-b") is None
    assert (memo.get("a", b"ct-a"), memo.get("c", b"ct-c")) == ("A", "C")
    memo.put("a", b"ct-a2", "A2")
    assert memo.get("a", b"ct-a") is None and memo.get("a", b"ct-a2") == "A2"
