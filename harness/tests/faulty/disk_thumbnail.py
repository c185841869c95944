"""Violation: keeps a "thumbnail" of each PNG upload: the image is decoded (zlib), halved by 2x2 box
averaging, re-encoded as a new PNG and written to ./thumb-<request>-<random>.png in the working
directory, where it stays. JPEG and WebP uploads are passed through (the standard library cannot
decode them), so the audit must send PNG requests to see this one.

Finding kind: disk-persistence (policy 1, 2d, 3, 4b), through a transformed copy: no byte of the
upload survives re-encoding, only the perceptual hash of the written file matches."""

import os
import sys

sys.dont_write_bytecode = True  # importing `common` must not write __pycache__ files
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import struct  # noqa: E402
import zlib  # noqa: E402

from common.pipeline import Pipeline, main  # noqa: E402

CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def _unfilter(raw, width, height, channels):
    stride, rows, prev, pos = width * channels, [], bytearray(width * channels), 0
    for _ in range(height):
        kind, line = raw[pos], bytearray(raw[pos + 1 : pos + 1 + stride])
        pos += 1 + stride
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up, up_left = prev[i], (prev[i - channels] if i >= channels else 0)
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - up_left
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - up_left)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else up_left)) & 0xFF
        rows.append(line)
        prev = line
    return rows


def halve_png(data):
    """A PNG of half the size of the 8-bit, non-interlaced PNG `data`, or None when it is not one."""
    pos, ihdr, idat, palette = 8, None, [], None
    while pos + 12 <= len(data):
        (length,) = struct.unpack_from(">I", data, pos)
        kind, body = bytes(data[pos + 4 : pos + 8]), bytes(data[pos + 8 : pos + 8 + length])
        ihdr = body if kind == b"IHDR" else ihdr
        palette = body if kind == b"PLTE" else palette
        if kind == b"IDAT":
            idat.append(body)
        pos += 12 + length
    width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", ihdr)
    if depth != 8 or interlace or color not in CHANNELS:
        return None
    channels = CHANNELS[color]
    rows = _unfilter(zlib.decompress(b"".join(idat)), width, height, channels)
    if color == 3:  # palette -> RGB
        rows = [bytearray(b"".join(palette[3 * i : 3 * i + 3] for i in row)) for row in rows]
        channels, color = 3, 2
    out_w, out_h = max(1, width // 2), max(1, height // 2)
    scan = bytearray()
    for y in range(out_h):
        top, bottom = rows[min(2 * y, height - 1)], rows[min(2 * y + 1, height - 1)]
        scan.append(0)
        for x in range(out_w):
            a, b = 2 * x * channels, min(2 * x + 1, width - 1) * channels
            for c in range(channels):
                scan.append((top[a + c] + top[b + c] + bottom[a + c] + bottom[b + c] + 2) // 4)

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", out_w, out_h, 8, color, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(scan))) + chunk(b"IEND", b"")


class DiskThumbnail(Pipeline):
    name = "disk_thumbnail"

    def on_upload(self, upload):
        if upload.image_format != "png":
            return
        try:
            thumbnail = halve_png(upload.image)
        except (struct.error, zlib.error, TypeError, IndexError, KeyError):
            return
        if thumbnail:
            with open(f"thumb-{upload.request_id}-{os.urandom(4).hex()}.png", "wb") as file:
                file.write(thumbnail)


if __name__ == "__main__":
    main(DiskThumbnail)
