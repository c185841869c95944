"""Checks that bytes are a well-formed PNG: signature, every chunk's CRC, IHDR first, IEND last."""

import struct
import zlib


def assert_png(data: bytes, what: str) -> None:
    assert isinstance(data, (bytes, bytearray)), f"{what}: expected bytes, got {type(data)!r}"
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{what}: not a PNG signature: {data[:8]!r}"
    pos, names = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        name = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert zlib.crc32(name + body) & 0xFFFFFFFF == crc, f"{what}: bad CRC in chunk {name!r}"
        names.append(name)
        pos += 12 + length
    assert names and names[0] == b"IHDR" and names[-1] == b"IEND", f"{what}: chunk order {names!r}"
