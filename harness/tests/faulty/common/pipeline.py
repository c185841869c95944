"""A clean image-generation backend on the Python standard library: the base of every faulty pipeline.

It implements the reference pipeline's HTTP API (`POST /v1/generations`, `GET /healthz`) and keeps the
privacy policy: metadata is stripped before upload, providers are reached over TLS only, nothing is
written to disk or logged beyond method, path, status and duration, and every buffer this module
controls that held the photo is zeroed when the request ends, on every path.

`Pipeline` exposes small hooks (`on_request_start`, `age_gate`, `on_upload`, `strip_metadata`,
`route`, `openai_form_fields`, `call_openai`, `call_gemini`, `on_provider_failure`, `on_output`,
`answer`, `after_response`, `handle_get`, `check_provider_urls`). The clean control overrides none of them;
each faulty variant overrides one to commit one violation the audit must catch.

Memory discipline, so the clean control passes the audit's memory scan: the request body is read
straight from the socket into one bytearray (the request reader is unbuffered); the photo is copied
once into its own bytearray; the stripped copy and the provider request body are preallocated at
their exact size (growing a bytearray would leave freed copies behind); base64 is produced in
45-byte steps so no transient Python object ever holds 64 consecutive bytes of the photo; provider
answers are read into bytearrays and their large base64 strings decoded without going through
`json`. Every one of those bytearrays is overwritten with zeros in a `finally` block.
"""

import signal
import sys

# A SIGTERM while the modules below load (a quarter of a second) is a clean stop too.
signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))

import binascii  # noqa: E402
import ctypes  # noqa: E402
import email.message  # noqa: E402
import email.parser  # noqa: E402
import email.utils  # noqa: E402
import http.client  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import socket  # noqa: E402
import socketserver  # noqa: E402
import ssl  # noqa: E402
import struct  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import urllib.parse  # noqa: E402
import zlib  # noqa: E402
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer  # noqa: E402

MAX_IMAGE_BYTES = 20_000_000
# The image part plus the other fields (a 4000-character prompt is at most 16 KB of UTF-8) and framing.
MAX_BODY_BYTES = MAX_IMAGE_BYTES + 64 * 1024
# A body larger than this is not even drained: the answer is sent and the connection closed.
MAX_DRAIN_BYTES = 64 * 1024 * 1024
MAX_PIXELS = 40_000_000
MAX_PROMPT_CHARS = 4000
MAX_PROVIDER_ANSWER_BYTES = 64 * 1024 * 1024
PROVIDER_TIMEOUT_S = 30.0
CONCURRENCY = 8
# 45 input bytes make 60 base64 characters: no transient object holds 64 bytes of the photo in any form.
B64_STEP = 45

DEFAULT_OPENAI_BASE_URL = "https://api.openai.com/v1"
DEFAULT_GEMINI_BASE_URL = "https://generativelanguage.googleapis.com/v1beta"
PROVIDERS = ("openai", "gemini")
IMAGE_MIME = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_KEPT_CHUNKS = (b"IHDR", b"PLTE", b"tRNS", b"IDAT", b"IEND")
GEMINI_BLOCK_FINISH = {"SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII", "RECITATION"}
OPENAI_REFUSAL_CODES = {"moderation_blocked", "content_policy_violation"}


# ---------------------------------------------------------------------------------------------
# Errors


class ApiError(Exception):
    """An error answered to the client as `{"error":{"code","message"}}`."""

    def __init__(self, status, code, message, headers=()):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = list(headers)


class ProviderFailure(ApiError):
    """The provider refused, failed, or did not answer in time."""


class ClientGone(Exception):
    """The client closed the connection before the request was read."""


class ConfigError(Exception):
    """A start-up setting is unusable; the message names the variable."""


# ---------------------------------------------------------------------------------------------
# Buffers that can be wiped


def wipe(buf):
    """Overwrite a bytearray with zeros in place (no reallocation, so no copy is left behind).

    Anything else (None, immutable bytes a variant returned) is left alone.
    """
    if not isinstance(buf, bytearray):
        return
    size = len(buf)
    if size:
        ctypes.memset((ctypes.c_char * size).from_buffer(buf), 0, size)


def copy_into(out, pos, source):
    """Copy `source` (any bytes-like object) into the bytearray `out` at `pos`; returns the end.

    Through a memoryview the copy is one memmove. `out[a:b] = source` would not do: for a source
    that is not a bytearray, CPython first copies it into a temporary bytearray and frees that
    copy unwiped.
    """
    end = pos + len(source)
    with memoryview(out) as view:
        view[pos:end] = source
    return end


def b64_len(size):
    return 4 * ((size + 2) // 3)


def b64_into(out, pos, source):
    """Write the standard base64 of `source` into `out` at `pos`; returns the end position."""
    view = memoryview(source)
    try:
        for start in range(0, len(view), B64_STEP):
            pos = copy_into(out, pos, binascii.b2a_base64(view[start : start + B64_STEP], newline=False))
    finally:
        view.release()
    return pos


def assemble(*parts):
    """One bytearray of exactly the parts' total size, filled in place."""
    out = bytearray(sum(len(p) for p in parts))
    pos = 0
    for part in parts:
        pos = copy_into(out, pos, part)
    return out


def json_with_base64(prefix, image, suffix):
    """`prefix + base64(image) + suffix` in one exactly sized bytearray (for JSON request bodies)."""
    out = bytearray(len(prefix) + b64_len(len(image)) + len(suffix))
    pos = b64_into(out, copy_into(out, 0, prefix), image)
    copy_into(out, pos, suffix)
    return out


_B64_TEXT = re.compile(rb"[A-Za-z0-9+/]*={0,2}")
_BLOB_MIN_CHARS = 256
_BLOB_TAG = "\u0000blob:"


def _string_end(buf, start):
    """Index of the quote closing the JSON string whose opening quote is at `start - 1`."""
    pos = start
    while True:
        end = buf.find(b'"', pos)
        if end < 0:
            raise ValueError("unterminated string")
        slashes = 0
        while end - 1 - slashes >= start and buf[end - 1 - slashes] == 0x5C:
            slashes += 1
        if slashes % 2 == 0:
            return end
        pos = end + 1


def _is_base64_text(buf, start, end):
    """Whether `buf[start:end]` is only base64 characters (a regex match in place, no copy)."""
    return _B64_TEXT.fullmatch(buf, start, end) is not None


def _decode_blob(buf, start, end):
    """Decode the base64 text `buf[start:end]` into an exactly sized bytearray, 60 characters at a time."""
    length = end - start
    if length % 4:
        raise ValueError("base64 length is not a multiple of 4")
    padding = (buf[end - 1] == 0x3D) + (length > 1 and buf[end - 2] == 0x3D)
    out = bytearray(length // 4 * 3 - padding)
    view = memoryview(buf)
    pos = 0
    try:
        for step in range(start, end, 60):
            pos = copy_into(out, pos, binascii.a2b_base64(view[step : min(step + 60, end)]))
    except binascii.Error:
        wipe(out)
        raise ValueError("invalid base64") from None
    finally:
        view.release()
    return out


def parse_json_with_blobs(buf):
    """Parse a JSON document whose long base64 strings stay out of Python strings.

    Each string of at least 256 base64 characters is decoded into a bytearray (appended to the
    returned list) and replaced in the parsed value by `"\\u0000blob:N"`; `take_blob` gets it back.
    """
    blobs = []
    skeleton = bytearray()
    pos = 0
    try:
        while True:
            quote = buf.find(b'"', pos)
            if quote < 0:
                skeleton += buf[pos:]
                break
            end = _string_end(buf, quote + 1)
            is_blob = end - quote - 1 >= _BLOB_MIN_CHARS and _is_base64_text(buf, quote + 1, end)
            if is_blob:
                skeleton += buf[pos:quote]
                skeleton += json.dumps(_BLOB_TAG + str(len(blobs))).encode()
                blobs.append(_decode_blob(buf, quote + 1, end))
            else:
                skeleton += buf[pos : end + 1]
            pos = end + 1
        return json.loads(skeleton), blobs
    except (ValueError, UnicodeDecodeError):
        for blob in blobs:
            wipe(blob)
        raise ValueError("malformed JSON") from None


def take_blob(value, blobs):
    """The bytes behind a base64 string value of `parse_json_with_blobs` (a short one is decoded here)."""
    if not isinstance(value, str):
        return None
    if value.startswith(_BLOB_TAG):
        return blobs[int(value[len(_BLOB_TAG) :])]
    try:
        return bytearray(binascii.a2b_base64(value.encode("ascii")))
    except (binascii.Error, UnicodeEncodeError):
        return None


# ---------------------------------------------------------------------------------------------
# Images: sniffing, dimensions, metadata stripping


def sniff_format(image):
    if image[:8] == PNG_SIGNATURE:
        return "png"
    if image[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if len(image) >= 12 and image[:4] == b"RIFF" and image[8:12] == b"WEBP":
        return "webp"
    return None


def _invalid(message):
    return ApiError(422, "invalid_image", message)


def _check_pixels(width, height):
    if width <= 0 or height <= 0:
        raise _invalid("the image has no pixels")
    if width * height > MAX_PIXELS:
        raise _invalid(f"the image has more than {MAX_PIXELS} pixels")


def _png_ranges(image):
    """Byte ranges of the chunks to keep (signature included), after checking the structure."""
    ranges = [(0, 8)]
    pos, size, seen_end, first = 8, len(image), False, True
    while pos < size:
        if pos + 12 > size:
            raise _invalid("truncated PNG chunk")
        (length,) = struct.unpack_from(">I", image, pos)
        kind = bytes(image[pos + 4 : pos + 8])
        end = pos + 12 + length
        if length > 0x7FFFFFFF or end > size:
            raise _invalid("truncated PNG chunk")
        with memoryview(image) as view:
            crc = zlib.crc32(view[pos + 4 : end - 4])
        if crc != struct.unpack_from(">I", image, end - 4)[0]:
            raise _invalid("corrupt PNG chunk")
        if first:
            if kind != b"IHDR" or length != 13:
                raise _invalid("PNG does not start with IHDR")
            _check_pixels(*struct.unpack_from(">II", image, pos + 8))
            first = False
        if kind in PNG_KEPT_CHUNKS:
            ranges.append((pos, end))
        pos = end
        if kind == b"IEND":
            seen_end = True
            break
    if first or not seen_end:
        raise _invalid("truncated PNG")
    return ranges


def _jpeg_ranges(image):
    """Byte ranges without APP1..APP15 and COM segments, after checking the structure."""
    ranges = [(0, 2)]
    pos, size, seen_frame, seen_scan = 2, len(image), False, False
    while True:
        if pos >= size or image[pos] != 0xFF:
            raise _invalid("truncated or corrupt JPEG")
        start = pos
        while pos < size and image[pos] == 0xFF:
            pos += 1
        if pos >= size:
            raise _invalid("truncated JPEG")
        marker = image[pos]
        pos += 1
        if marker == 0xD9:
            ranges.append((start, pos))
            break
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:
            ranges.append((start, pos))
            continue
        if pos + 2 > size:
            raise _invalid("truncated JPEG segment")
        (length,) = struct.unpack_from(">H", image, pos)
        end = pos + length
        if length < 2 or end > size:
            raise _invalid("truncated JPEG segment")
        if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
            if length < 8:
                raise _invalid("corrupt JPEG frame header")
            height, width = struct.unpack_from(">HH", image, pos + 3)
            _check_pixels(width, height)
            seen_frame = True
        if marker == 0xDA:
            # The scan header, then entropy-coded data up to the next marker that is not a restart.
            seen_scan = True
            scan = end
            while True:
                scan = image.find(b"\xff", scan)
                if scan < 0 or scan + 1 >= size:
                    raise _invalid("truncated JPEG scan")
                following = image[scan + 1]
                if following == 0x00 or following == 0xFF or 0xD0 <= following <= 0xD7:
                    scan += 1 if following == 0xFF else 2
                    continue
                break
            ranges.append((start, scan))
            pos = scan
            continue
        if not (0xE1 <= marker <= 0xEF or marker == 0xFE):
            ranges.append((start, end))
        pos = end
    if not (seen_frame and seen_scan):
        raise _invalid("JPEG without a frame or a scan")
    return ranges


def _webp_ranges(image):
    """Chunk ranges without EXIF and XMP, the VP8X offset (to clear its flags), after checking."""
    size = len(image)
    (riff_size,) = struct.unpack_from("<I", image, 4)
    if riff_size + 8 > size or riff_size < 4:
        raise _invalid("truncated WebP")
    ranges, pos, end_all, vp8x, seen_image = [], 12, riff_size + 8, None, False
    while pos < end_all:
        if pos + 8 > end_all:
            raise _invalid("truncated WebP chunk")
        kind = bytes(image[pos : pos + 4])
        (length,) = struct.unpack_from("<I", image, pos + 4)
        end = pos + 8 + length + (length & 1)
        if pos + 8 + length > end_all:
            raise _invalid("truncated WebP chunk")
        end = min(end, end_all)
        data = pos + 8
        if kind == b"VP8X" and length >= 10:
            width = 1 + int.from_bytes(image[data + 4 : data + 7], "little")
            height = 1 + int.from_bytes(image[data + 7 : data + 10], "little")
            _check_pixels(width, height)
            vp8x = pos
        elif kind == b"VP8 " and length >= 10:
            width, height = struct.unpack_from("<HH", image, data + 6)
            _check_pixels(width & 0x3FFF, height & 0x3FFF)
            seen_image = True
        elif kind == b"VP8L" and length >= 5:
            (bits,) = struct.unpack_from("<I", image, data + 1)
            _check_pixels((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
            seen_image = True
        elif kind == b"ANIM":
            seen_image = True
        if kind not in (b"EXIF", b"XMP "):
            ranges.append((pos, end))
        pos = end
    if not seen_image:
        raise _invalid("WebP without image data")
    return ranges, vp8x


def strip_image_metadata(image, image_format):
    """A new, exactly sized bytearray holding the image without its metadata.

    PNG keeps IHDR/PLTE/tRNS/IDAT/IEND; JPEG drops APP1..APP15 and COM; WebP drops EXIF and XMP,
    clears their VP8X flags and rewrites the RIFF size. Raises `ApiError` (422) on a broken image.
    """
    if image_format == "png":
        ranges, header, vp8x = _png_ranges(image), b"", None
    elif image_format == "jpeg":
        ranges, header, vp8x = _jpeg_ranges(image), b"", None
    else:
        ranges, vp8x = _webp_ranges(image)
        header = b"RIFF" + struct.pack("<I", 4 + sum(e - s for s, e in ranges)) + b"WEBP"
    out = bytearray(len(header) + sum(end - start for start, end in ranges))
    pos = copy_into(out, 0, header)
    with memoryview(image) as view:
        for start, end in ranges:
            if start == vp8x:
                vp8x_out = pos
            pos = copy_into(out, pos, view[start:end])
    if vp8x is not None:
        out[vp8x_out + 8] &= ~(0x08 | 0x04) & 0xFF  # EXIF and XMP flags
    return out


# ---------------------------------------------------------------------------------------------
# Requests


class Form:
    """The parsed multipart body: field name -> (start, end, filename) into the body bytearray."""

    def __init__(self, body, fields):
        self.body = body
        self.fields = fields

    def has(self, name):
        return name in self.fields

    def raw_text(self, name):
        start, end, _ = self.fields[name]
        return bytes(self.body[start:end])

    def text(self, name, default=None):
        if name not in self.fields:
            return default
        try:
            return self.raw_text(name).decode("utf-8")
        except UnicodeDecodeError:
            return None

    def size(self, name):
        start, end, _ = self.fields[name]
        return end - start

    def copy(self, name):
        """The field's bytes in a bytearray of their own."""
        start, end, _ = self.fields[name]
        out = bytearray(end - start)
        with memoryview(self.body) as view:
            copy_into(out, 0, view[start:end])
        return out


def parse_multipart(body, boundary):
    """Split a multipart/form-data body without copying its parts."""
    delimiter = b"--" + boundary.encode("latin-1")
    pos = body.find(delimiter)
    if pos < 0:
        raise ApiError(400, "invalid_request", "the multipart body has no boundary")
    fields = {}
    while True:
        pos += len(delimiter)
        if body[pos : pos + 2] == b"--":
            return Form(body, fields)
        header_end = body.find(b"\r\n\r\n", pos)
        if header_end < 0 or header_end - pos > 8192:
            raise ApiError(400, "invalid_request", "malformed multipart part headers")
        headers = email.parser.BytesHeaderParser().parsebytes(bytes(body[pos:header_end]).lstrip(b"\r\n"))
        data_start = header_end + 4
        data_end = body.find(b"\r\n" + delimiter, data_start)
        if data_end < 0:
            raise ApiError(400, "invalid_request", "truncated multipart body")
        name = headers.get_param("name", header="content-disposition")
        if name and name not in fields:
            filename = headers.get_param("filename", header="content-disposition")
            fields[name] = (data_start, data_end, filename)
        pos = data_end + 2


class Upload:
    """One generation request as the hooks see it."""

    def __init__(self, request_id, headers, image, image_format, prompt, provider):
        self.request_id = request_id
        self.headers = headers  # the request's HTTP headers (an email.message.Message)
        self.image = image  # the photo exactly as uploaded (bytearray, zeroed after the request)
        self.image_format = image_format  # "png" | "jpeg" | "webp"
        self.prompt = prompt
        self.provider = provider  # what the client chose
        self.state = {}  # per-request scratch space for hooks


class ProviderAnswer:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body  # bytearray, zeroed by the caller


class _UnbufferedResponse(http.client.HTTPResponse):
    """Reads the provider's answer straight into the caller's buffers (no hidden read buffer)."""

    def __init__(self, sock, *args, **kwargs):
        super().__init__(sock, *args, **kwargs)
        self.fp = sock.makefile("rb", buffering=0)


# ---------------------------------------------------------------------------------------------
# The pipeline


class Settings:
    def __init__(self, env):
        listen = env.get("TRACELESS_LISTEN", "127.0.0.1:8080")
        host, sep, port = listen.rpartition(":")
        if not sep or not port.isdigit():
            raise ConfigError(f"TRACELESS_LISTEN must be host:port, got {listen!r}")
        self.listen = (host.strip("[]") or "127.0.0.1", int(port))
        self.openai_base = env.get("OPENAI_BASE_URL", DEFAULT_OPENAI_BASE_URL).rstrip("/")
        self.gemini_base = env.get("GEMINI_BASE_URL", DEFAULT_GEMINI_BASE_URL).rstrip("/")
        self.openai_key = env.get("OPENAI_API_KEY", "")
        self.gemini_key = env.get("GEMINI_API_KEY", "")
        self.extra_ca = env.get("TRACELESS_EXTRA_CA") or None
        self.allow_plaintext = env.get("TRACELESS_ALLOW_PLAINTEXT_PROVIDERS") == "1"
        timeout_ms = env.get("TRACELESS_PROVIDER_TIMEOUT_MS")
        if timeout_ms is not None and not timeout_ms.isdigit():
            raise ConfigError(f"TRACELESS_PROVIDER_TIMEOUT_MS must be a number of milliseconds, got {timeout_ms!r}")
        self.provider_timeout = int(timeout_ms) / 1000 if timeout_ms else PROVIDER_TIMEOUT_S
        for variable, url in (("OPENAI_BASE_URL", self.openai_base), ("GEMINI_BASE_URL", self.gemini_base)):
            parts = urllib.parse.urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ConfigError(f"{variable} must be an http(s) URL, got {url!r}")


class Pipeline:
    """The clean backend. Subclasses override one hook each."""

    name = "clean"
    openai_model = "gpt-image-2.5-sunburst"
    gemini_model = "gemini-2.5-flash-image"

    def __init__(self, settings):
        self.settings = settings
        self.tls = ssl.create_default_context()
        if settings.extra_ca:
            try:
                self.tls.load_verify_locations(cafile=settings.extra_ca)
            except (OSError, ssl.SSLError) as err:
                raise ConfigError(f"TRACELESS_EXTRA_CA: cannot load {settings.extra_ca!r}: {err}") from None
        # OpenSSL wipes its plaintext record buffers when it frees them.
        self.tls.options |= getattr(ssl, "OP_CLEANSE_PLAINTEXT", 0x2)
        self.slots = threading.BoundedSemaphore(CONCURRENCY)
        self._ids = itertools.count(1)
        self._ids_lock = threading.Lock()

    # -- hooks ------------------------------------------------------------------------------

    def check_provider_urls(self):
        """Refuse plaintext provider URLs unless explicitly allowed (policy clause 6)."""
        if self.settings.allow_plaintext:
            return
        for variable, url in (("OPENAI_BASE_URL", self.settings.openai_base), ("GEMINI_BASE_URL", self.settings.gemini_base)):
            if urllib.parse.urlsplit(url).scheme != "https":
                raise ConfigError(
                    f"{variable} is a plaintext URL ({url}); providers must be reached over https "
                    "(set TRACELESS_ALLOW_PLAINTEXT_PROVIDERS=1 to allow it for testing)"
                )

    def on_request_start(self, headers):
        """Called before a generation request's body is read."""

    def age_gate(self, form):
        """True when the user confirmed being 13 or older."""
        return form.text("age_confirmed") == "true"

    def on_upload(self, upload):
        """Called once the request is validated, before anything is sent."""

    def strip_metadata(self, upload):
        """The photo to send, as a new bytearray (zeroed by the caller)."""
        return strip_image_metadata(upload.image, upload.image_format)

    def route(self, upload):
        """The provider to call."""
        return upload.provider

    def openai_form_fields(self, upload):
        """Text fields of the OpenAI images/edits multipart request."""
        return [("model", self.openai_model), ("prompt", upload.prompt)]

    def on_provider_failure(self, upload, failure):
        """Called when the provider failed; returns an image to answer with, or raises."""
        raise failure

    def on_output(self, upload, output):
        """The image to answer with, given the provider's output (a bytearray)."""
        return output

    def answer(self, upload, output):
        """The success answer's content type and body, given the image to answer with."""
        return "image/png", output

    def after_response(self, upload):
        """Called once the answer has been sent (or the request failed)."""

    def handle_get(self, handler, path):
        """Answer a GET other than /healthz; return False for 404."""
        return False

    # -- the request ------------------------------------------------------------------------

    def next_request_id(self):
        with self._ids_lock:
            return next(self._ids)

    def generate(self, handler, body):
        """Validate the form in `body`, call the provider, and return the image to answer with."""
        content_type = handler.headers.get_content_type()
        boundary = handler.headers.get_param("boundary")
        if content_type != "multipart/form-data" or not boundary:
            raise ApiError(415, "invalid_request", "the body must be multipart/form-data")
        form = parse_multipart(body, boundary)
        if not self.age_gate(form):
            raise ApiError(403, "age_confirmation_required", "the user must confirm being 13 or older")

        provider = form.text("provider")
        if provider not in PROVIDERS:
            raise ApiError(422, "unknown_provider", "provider must be 'openai' or 'gemini'")
        if not form.has("prompt") or form.size("prompt") > MAX_PROMPT_CHARS * 4:
            raise ApiError(422, "invalid_prompt", f"prompt must be 1 to {MAX_PROMPT_CHARS} characters")
        prompt = form.text("prompt")
        if prompt is None or not 1 <= len(prompt) <= MAX_PROMPT_CHARS or not prompt.strip():
            raise ApiError(422, "invalid_prompt", f"prompt must be 1 to {MAX_PROMPT_CHARS} characters of UTF-8")
        if not form.has("image"):
            raise ApiError(422, "invalid_image", "the image part is missing")
        if form.size("image") > MAX_IMAGE_BYTES:
            raise ApiError(413, "payload_too_large", f"the image is larger than {MAX_IMAGE_BYTES} bytes")
        if form.size("image") == 0:
            raise ApiError(422, "invalid_image", "the image is empty")

        image = form.copy("image")
        wipe(body)  # the photo now lives in `image` only
        stripped = output = None
        upload = None
        try:
            image_format = sniff_format(image)
            if image_format is None:
                raise ApiError(415, "invalid_image", "the image must be PNG, JPEG or WebP")
            upload = Upload(self.next_request_id(), handler.headers, image, image_format, prompt, provider)
            handler.upload = upload
            self.on_upload(upload)
            stripped = self.strip_metadata(upload)
            target = self.route(upload)
            with self.slots:
                try:
                    if target == "openai":
                        output = self.call_openai(upload, stripped)
                    else:
                        output = self.call_gemini(upload, stripped)
                except ProviderFailure as failure:
                    output = self.on_provider_failure(upload, failure)
            return self.on_output(upload, output)
        finally:
            wipe(stripped)
            wipe(image)

    # -- providers --------------------------------------------------------------------------

    def https_connection(self, parts, timeout):
        """The connection to a provider over TLS, trusting the configured CA."""
        return http.client.HTTPSConnection(parts.hostname, parts.port, timeout=timeout, context=self.tls)

    def provider_request(self, url, headers, body):
        """POST `body` (a bytes-like object) to `url`; the answer's body is a bytearray."""
        parts = urllib.parse.urlsplit(url)
        timeout = self.settings.provider_timeout
        if parts.scheme == "https":
            conn = self.https_connection(parts, timeout)
        else:
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
        conn.response_class = _UnbufferedResponse
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        answer = None
        try:
            conn.request("POST", target, body=body, headers=headers)
            response = conn.getresponse()
            answer = ProviderAnswer(response.status, response.headers, self._read_answer(response))
            return answer
        except (TimeoutError, socket.timeout):
            raise ProviderFailure(504, "provider_timeout", "the provider did not answer in time") from None
        except (OSError, http.client.HTTPException, ValueError):
            raise ProviderFailure(502, "provider_error", "the provider could not be reached") from None
        finally:
            conn.close()

    @staticmethod
    def _read_answer(response):
        length = response.length
        if length is not None:
            if length > MAX_PROVIDER_ANSWER_BYTES:
                raise ValueError("provider answer too large")
            out = bytearray(length)
            with memoryview(out) as view:
                pos = 0
                while pos < length:
                    got = response.readinto(view[pos:])
                    if not got:
                        wipe(out)
                        raise ValueError("provider answer truncated")
                    pos += got
            return out
        pieces, total = [], 0
        try:
            while True:
                piece = bytearray(64 * 1024)
                got = response.readinto(piece)
                if not got:
                    wipe(piece)
                    break
                pieces.append((piece, got))
                total += got
                if total > MAX_PROVIDER_ANSWER_BYTES:
                    raise ValueError("provider answer too large")
            out = bytearray(total)
            pos = 0
            for piece, got in pieces:
                with memoryview(piece) as view:
                    pos = copy_into(out, pos, view[:got])
            return out
        finally:
            for piece, _ in pieces:
                wipe(piece)

    @staticmethod
    def _retry_after(headers, payload):
        value = headers.get("retry-after-ms")
        if value and value.strip().isdigit():
            return str(max(1, -(-int(value) // 1000)))
        value = (headers.get("retry-after") or "").strip()
        if value.isdigit():
            return value
        if value:
            try:
                when = email.utils.parsedate_to_datetime(value).timestamp()
                return str(max(1, int(when - time.time())))
            except (TypeError, ValueError):
                pass
        error = payload.get("error") if isinstance(payload, dict) else None
        details = error.get("details") if isinstance(error, dict) else None
        for detail in details if isinstance(details, list) else []:
            delay = isinstance(detail, dict) and detail.get("retryDelay")
            if isinstance(delay, str) and delay.endswith("s"):
                try:
                    return str(max(1, int(float(delay[:-1]) + 0.999)))
                except ValueError:
                    pass
        return "1"

    def _failure_from_status(self, answer, payload, refused):
        if refused:
            return ProviderFailure(422, "content_refused", "the provider refused the content")
        if answer.status == 429:
            retry = self._retry_after(answer.headers, payload)
            return ProviderFailure(429, "rate_limited", "the provider is rate limiting", [("Retry-After", retry)])
        if answer.status in (408, 504):
            return ProviderFailure(504, "provider_timeout", "the provider timed out")
        return ProviderFailure(502, "provider_error", f"the provider answered {answer.status}")

    def _parse_answer(self, answer):
        try:
            return parse_json_with_blobs(answer.body)
        except ValueError:
            if answer.status == 200:
                raise ProviderFailure(502, "provider_error", "the provider's answer is not JSON") from None
            return None, []

    @staticmethod
    def _checked_image(image):
        if image is None or sniff_format(image) is None:
            wipe(image)
            raise ProviderFailure(502, "provider_error", "the provider's answer carries no image")
        return image

    def openai_multipart(self, upload, image):
        """The images/edits body and its content type."""
        boundary = "tl" + os.urandom(12).hex()
        head = bytearray()
        for name, value in self.openai_form_fields(upload):
            head += (
                f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
                + value.encode("utf-8")
                + b"\r\n"
            )
        extension = "jpg" if upload.image_format == "jpeg" else upload.image_format
        head += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="image.{extension}"\r\n'
            f"Content-Type: {IMAGE_MIME[upload.image_format]}\r\n\r\n"
        ).encode()
        tail = f"\r\n--{boundary}--\r\n".encode()
        return assemble(head, image, tail), f"multipart/form-data; boundary={boundary}"

    def call_openai(self, upload, image):
        """`POST {OPENAI_BASE_URL}/images/edits`, multipart; returns the image in `data[0].b64_json`."""
        body, content_type = self.openai_multipart(upload, image)
        headers = {"Authorization": f"Bearer {self.settings.openai_key}", "Content-Type": content_type}
        answer = None
        blobs = []
        try:
            answer = self.provider_request(f"{self.settings.openai_base}/images/edits", headers, body)
            wipe(body)
            payload, blobs = self._parse_answer(answer)
            if answer.status != 200:
                error = payload.get("error") if isinstance(payload, dict) else None
                code = error.get("code") if isinstance(error, dict) else None
                refused = answer.status == 400 and code in OPENAI_REFUSAL_CODES
                raise self._failure_from_status(answer, payload, refused)
            try:
                encoded = payload["data"][0]["b64_json"]
            except (KeyError, IndexError, TypeError):
                encoded = None
            output = take_blob(encoded, blobs)
            return self._checked_image(bytearray(output) if output is not None else None)
        finally:
            wipe(body)
            for blob in blobs:
                wipe(blob)
            if answer is not None:
                wipe(answer.body)

    def gemini_request_body(self, upload, image):
        prefix = (
            '{"contents":[{"role":"user","parts":[{"text":'
            + json.dumps(upload.prompt)
            + '},{"inline_data":{"mime_type":"'
            + IMAGE_MIME[upload.image_format]
            + '","data":"'
        ).encode()
        suffix = b'"}}]}],"generationConfig":{"responseModalities":["TEXT","IMAGE"]}}'
        return json_with_base64(prefix, image, suffix)

    def gemini_generate(self, upload, body):
        """`POST {GEMINI_BASE_URL}/models/{model}:generateContent`; the first inline image of the answer."""
        url = f"{self.settings.gemini_base}/models/{self.gemini_model}:generateContent"
        headers = {"x-goog-api-key": self.settings.gemini_key, "Content-Type": "application/json"}
        answer = None
        blobs = []
        try:
            answer = self.provider_request(url, headers, body)
            wipe(body)
            payload, blobs = self._parse_answer(answer)
            if answer.status != 200:
                raise self._failure_from_status(answer, payload, refused=False)
            return self._checked_image(self._gemini_image(payload, blobs))
        finally:
            wipe(body)
            for blob in blobs:
                wipe(blob)
            if answer is not None:
                wipe(answer.body)

    def call_gemini(self, upload, image):
        return self.gemini_generate(upload, self.gemini_request_body(upload, image))

    @staticmethod
    def _gemini_image(payload, blobs):
        if not isinstance(payload, dict):
            raise ProviderFailure(502, "provider_error", "the provider's answer is not an object")
        feedback = payload.get("promptFeedback") or {}
        if isinstance(feedback, dict) and feedback.get("blockReason"):
            raise ProviderFailure(422, "content_refused", "the provider refused the content")
        candidates = payload.get("candidates") or []
        finish = None
        for candidate in candidates if isinstance(candidates, list) else []:
            if not isinstance(candidate, dict):
                continue
            finish = finish or candidate.get("finishReason")
            parts = (candidate.get("content") or {}).get("parts") or []
            for part in parts if isinstance(parts, list) else []:
                inline = isinstance(part, dict) and (part.get("inlineData") or part.get("inline_data"))
                if isinstance(inline, dict) and inline.get("data"):
                    image = take_blob(inline["data"], blobs)
                    if image is not None:
                        return bytearray(image)
        if isinstance(finish, str) and (finish.startswith("IMAGE_") or finish in GEMINI_BLOCK_FINISH):
            raise ProviderFailure(422, "content_refused", "the provider refused the content")
        raise ProviderFailure(502, "provider_error", "the provider's answer carries no image")


# ---------------------------------------------------------------------------------------------
# HTTP


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Unbuffered: the body goes from the socket straight into our bytearray, with no hidden copy.
    rbufsize = 0
    server_version = "traceless-test-pipeline"
    sys_version = ""

    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        """Silenced: the base class would log client addresses."""

    def log_request(self, code="-", size="-"):
        """Silenced: one line per request is written by `_log` instead."""

    def _log(self, started):
        elapsed = (time.monotonic() - started) * 1000
        path = urllib.parse.urlsplit(self.path).path
        sys.stderr.write(f"{self.command} {path} {self.status} {elapsed:.0f}ms\n")
        sys.stderr.flush()

    def _send(self, status, content_type, body, headers=()):
        self.status = status
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in headers:
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_error(self, error):
        body = json.dumps({"error": {"code": error.code, "message": error.message}}).encode()
        self._send(error.status, "application/json", body, error.headers)

    def do_GET(self):
        started, self.status = time.monotonic(), 0
        pipeline = self.server.pipeline
        try:
            path = urllib.parse.urlsplit(self.path).path
            if path == "/healthz":
                self._send(200, "application/json", b'{"status":"ok"}')
            elif not pipeline.handle_get(self, path):
                self._send_error(ApiError(404, "not_found", "no such resource"))
        finally:
            self._log(started)

    def do_POST(self):
        started, self.status = time.monotonic(), 0
        pipeline = self.server.pipeline
        self.upload = None
        body = output = None
        try:
            if urllib.parse.urlsplit(self.path).path != "/v1/generations":
                self.close_connection = True
                self._send_error(ApiError(404, "not_found", "no such resource"))
                return
            pipeline.on_request_start(self.headers)
            body = self._read_body()
            output = pipeline.generate(self, body)
            self._send(200, *pipeline.answer(self.upload, output))
        except ApiError as error:
            self._send_error(error)
        except ClientGone:
            self.status, self.close_connection = 499, True
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as error:  # an unexpected fault: answer 500, never echo data
            self.close_connection = True
            sys.stderr.write(f"internal error: {type(error).__name__}\n")
            try:
                self._send_error(ApiError(500, "internal_error", "internal error"))
            except OSError:
                pass
        finally:
            wipe(output)
            wipe(body)
            if self.upload is not None:
                pipeline.after_response(self.upload)
            self.upload = None
            self._log(started)

    def _read_exact(self, out, start, end):
        with memoryview(out) as view:
            pos = start
            while pos < end:
                got = self.rfile.readinto(view[pos:end])
                if not got:
                    raise ClientGone()
                pos += got

    def _drain(self, length):
        scratch = bytearray(64 * 1024)
        try:
            while length > 0:
                step = min(length, len(scratch))
                self._read_exact(scratch, 0, step)
                length -= step
        finally:
            wipe(scratch)

    def _read_body(self):
        """The whole request body in one bytearray (Content-Length or chunked)."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked()
        length = self.headers.get("Content-Length")
        if length is None or not length.strip().isdigit():
            self.close_connection = True
            raise ApiError(411, "invalid_request", "Content-Length is required")
        length = int(length)
        if length > MAX_BODY_BYTES:
            if length <= MAX_DRAIN_BYTES:
                self._drain(length)
            self.close_connection = True
            raise ApiError(413, "payload_too_large", f"the upload is larger than {MAX_IMAGE_BYTES} bytes")
        body = bytearray(length)
        try:
            self._read_exact(body, 0, length)
        except BaseException:
            wipe(body)
            self.close_connection = True
            raise
        return body

    def _read_chunked(self):
        pieces, total = [], 0
        try:
            while True:
                line = self.rfile.readline(1024)
                if not line:
                    raise ClientGone()
                try:
                    size = int(line.split(b";")[0].strip(), 16)
                except ValueError:
                    self.close_connection = True
                    raise ApiError(400, "invalid_request", "malformed chunked body") from None
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                total += size
                if total > MAX_BODY_BYTES:
                    self.close_connection = True
                    raise ApiError(413, "payload_too_large", f"the upload is larger than {MAX_IMAGE_BYTES} bytes")
                piece = bytearray(size)
                pieces.append(piece)
                self._read_exact(piece, 0, size)
                self.rfile.readline(8)
            return assemble(*pieces)
        except BaseException:
            self.close_connection = True
            raise
        finally:
            for piece in pieces:
                wipe(piece)


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def server_bind(self):
        # HTTPServer.server_bind would call socket.getfqdn: a reverse DNS lookup at start-up.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def handle_error(self, request, client_address):
        # The default prints the client address and a traceback; a type name is enough.
        sys.stderr.write(f"connection error: {sys.exc_info()[0].__name__}\n")


class _Stop(BaseException):
    pass


def _stop(signum, frame):
    raise _Stop()


def main(pipeline_class=Pipeline):
    """Run `pipeline_class` until SIGTERM (exit 0); a start-up error exits 2 with a message."""
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        _serve(pipeline_class)
    except _Stop:
        pass
    sys.exit(0)


def _serve(pipeline_class):
    try:
        pipeline = pipeline_class(Settings(os.environ))
        pipeline.check_provider_urls()
        host, port = pipeline.settings.listen
        Server.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        server = Server((host, port), Handler)
    except ConfigError as error:
        sys.stderr.write(f"{pipeline_class.name}: error: {error}\n")
        sys.exit(2)
    except OSError as error:
        sys.stderr.write(f"{pipeline_class.name}: error: cannot listen on TRACELESS_LISTEN: {error.strerror}\n")
        sys.exit(2)
    server.pipeline = pipeline
    sys.stderr.write(f"{pipeline_class.name}: listening on {host}:{server.server_address[1]}\n")
    sys.stderr.flush()
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
