"""Recognising an image format from its magic bytes and reading its declared size.

No Pillow here: this is what lets us refuse bombs before decoding.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

#: Content type and file extension of each format we parse headers for.
CONTENT_TYPES: Final = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "WEBP": "image/webp",
    "BMP": "image/bmp",
    "GIF": "image/gif",
}
EXTENSIONS: Final = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp", "BMP": ".bmp", "GIF": ".gif"}
#: Formats we parse headers for and will let Pillow open.
OPENABLE: Final = frozenset(CONTENT_TYPES)


@dataclass(frozen=True, slots=True)
class Header:
    format: str
    width: int
    height: int


#: Formats we recognise only to name them in the refusal.
_OTHER_MAGIC: Final = (
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"%PDF", "PDF document"),
    (b"\x00\x00\x01\x00", "ICO icon"),
)
_HEIF_BRANDS: Final = {
    b"heic": "HEIC",
    b"heix": "HEIC",
    b"hevc": "HEIC",
    b"heim": "HEIC",
    b"heis": "HEIC",
    b"mif1": "HEIF",
    b"msf1": "HEIF",
    b"avif": "AVIF",
    b"avis": "AVIF",
}


def sniff_format(data: bytes) -> tuple[str | None, Header | None]:
    """(format name, parsed header). Format without header = recognised but unreadable."""
    try:
        if data.startswith(b"\x89PNG\r\n\x1a\n"):
            return "PNG", _png_header(data)
        if data.startswith(b"\xff\xd8\xff"):
            return "JPEG", _jpeg_header(data)
        if data[:6] in (b"GIF87a", b"GIF89a"):
            if len(data) < 10:
                return "GIF", None
            w, h = struct.unpack_from("<HH", data, 6)
            return "GIF", Header("GIF", w, h)
        if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
            return "WEBP", _webp_header(data)
        if data.startswith(b"BM"):
            header = _bmp_header(data)
            if header is not None:
                return "BMP", header
        for magic, label in _OTHER_MAGIC:
            if data.startswith(magic):
                return label, None
        if data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS:
            return _HEIF_BRANDS[data[8:12]], None
    except struct.error:
        pass
    return None, None


def _png_header(data: bytes) -> Header | None:
    if len(data) < 24 or data[12:16] != b"IHDR":
        return None
    w, h = struct.unpack_from(">II", data, 16)
    return Header("PNG", w, h)


def _jpeg_header(data: bytes) -> Header | None:
    """Walk the marker segments to the first SOFn frame header."""
    i = 2
    n = len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # standalone markers carry no length
            i += 2
            continue
        (length,) = struct.unpack_from(">H", data, i + 2)
        if length < 2:
            return None
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            h, w = struct.unpack_from(">HH", data, i + 5)
            return Header("JPEG", w, h) if w and h else None
        if marker in (0xD9, 0xDA):  # end of image / start of scan before any frame header
            return None
        i += 2 + length
    return None


def _webp_header(data: bytes) -> Header | None:
    chunk = data[12:16]
    if chunk == b"VP8X":
        if len(data) < 30:
            return None
        w = 1 + int.from_bytes(data[24:27], "little")
        h = 1 + int.from_bytes(data[27:30], "little")
        return Header("WEBP", w, h)
    if chunk == b"VP8 ":
        if data[23:26] != b"\x9d\x01\x2a":
            return None
        w, h = struct.unpack_from("<HH", data, 26)
        return Header("WEBP", w & 0x3FFF, h & 0x3FFF)
    if chunk == b"VP8L":
        if len(data) < 25 or data[20] != 0x2F:
            return None
        bits = int.from_bytes(data[21:25], "little")
        return Header("WEBP", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
    return None


def _bmp_header(data: bytes) -> Header | None:
    (dib,) = struct.unpack_from("<I", data, 14)
    if dib == 12:
        w, h = struct.unpack_from("<HH", data, 18)
    elif dib in (16, 40, 52, 56, 64, 108, 124):
        w, h = struct.unpack_from("<ii", data, 18)
    else:
        return None
    return Header("BMP", abs(w), abs(h))
