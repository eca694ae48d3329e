"""A tiny DER writer: just the ASN.1 types kvault assembles itself.

Certificates and CSRs signed through an HSM, and the legacy PKCS#12 files, are put together
from parts here; everything ``cryptography`` can encode (names, keys, extensions) it still does.
"""

from __future__ import annotations

SEQUENCE = 0x30
SET = 0x31


def tlv(tag: int, body: bytes) -> bytes:
    """One element: tag, definite length, contents."""
    size = len(body)
    if size < 0x80:
        return bytes((tag, size)) + body
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(length))) + length + body


def sequence(*items: bytes) -> bytes:
    return tlv(SEQUENCE, b"".join(items))


def set_of(*items: bytes) -> bytes:
    """SET OF: DER orders the encoded elements."""
    return tlv(SET, b"".join(sorted(items)))


def integer(value: int) -> bytes:
    """INTEGER, two's complement in the fewest bytes."""
    size = value.bit_length() // 8 + 1
    return tlv(0x02, value.to_bytes(size, "big", signed=True))


def boolean(value: bool) -> bytes:
    return tlv(0x01, b"\xff" if value else b"\x00")


def null() -> bytes:
    return b"\x05\x00"


def octets(data: bytes) -> bytes:
    return tlv(0x04, data)


def bits(data: bytes) -> bytes:
    """BIT STRING of whole bytes (no unused bits)."""
    return tlv(0x03, b"\x00" + data)


def utf8(text: str) -> bytes:
    return tlv(0x0C, text.encode("utf-8"))


def bmp(text: str) -> bytes:
    return tlv(0x1E, text.encode("utf-16-be"))


def oid(dotted: str) -> bytes:
    """OBJECT IDENTIFIER from its dotted form (at least two arcs)."""
    arcs = [int(arc) for arc in dotted.split(".")]
    if len(arcs) < 2 or arcs[0] > 2 or (arcs[0] < 2 and arcs[1] >= 40) or min(arcs) < 0:
        raise ValueError(f"{dotted!r} is not an object identifier")
    body = bytearray()
    for arc in [40 * arcs[0] + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        body.extend(reversed(chunk))
    return tlv(0x06, bytes(body))


def explicit(number: int, inner: bytes) -> bytes:
    """``[number] EXPLICIT``: a constructed context tag around a whole element."""
    return tlv(0xA0 | number, inner)


def implicit(number: int, body: bytes, *, constructed: bool = False) -> bytes:
    """``[number] IMPLICIT``: the context tag replaces the element's own (give its contents)."""
    return tlv((0xA0 if constructed else 0x80) | number, body)
