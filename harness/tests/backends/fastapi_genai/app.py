"""Photo editing API: FastAPI + uvicorn on the official google-genai SDK, streaming.

POST /api/edit takes JSON {"photo": "data:image/...;base64,...", "instruction": "...", "over13": true}
and answers {"image": "<base64 PNG>"}. GET /healthz answers 200 when the app is up.

Privacy measures in the code: no age confirmation, no processing (403 before the photo is even
decoded); the photo is decoded and re-encoded as a bare PNG in memory, which drops EXIF, GPS, XMP and
text chunks before it reaches Gemini; nothing is written to disk; no access log (uvicorn's would hold
client addresses) and no proxy headers trusted; only plain https provider URLs are accepted.

Configuration (environment): GEMINI_API_KEY (or GOOGLE_API_KEY), GOOGLE_GEMINI_BASE_URL (optional,
an https origin), GEMINI_IMAGE_MODEL (default gemini-2.5-flash-image), PORT (default 8000),
HOST (default 127.0.0.1). On Vertex AI (../fastapi_vertex), the SDK reads GOOGLE_GENAI_USE_VERTEXAI,
GOOGLE_CLOUD_PROJECT, GOOGLE_CLOUD_LOCATION, GOOGLE_APPLICATION_CREDENTIALS and GOOGLE_VERTEX_BASE_URL
instead of the key and the Gemini URL.
"""

import base64
import binascii
import gc
import io
import logging
import os
import sys

import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from google import genai
from google.genai import errors, types
from PIL import Image, UnidentifiedImageError
from pydantic import BaseModel, Field

MODEL = os.environ.get("GEMINI_IMAGE_MODEL", "gemini-2.5-flash-image")
MAX_PHOTO_BYTES = 20_000_000
MAX_PIXELS = 40_000_000
ACCEPTED_FORMATS = {"PNG", "JPEG", "WEBP"}
BLOCKED_FINISH = {"SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII", "RECITATION", "IMAGE_SAFETY",
                  "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION"}

log = logging.getLogger("photo-edit")
# Refuse decompression bombs before decoding: Pillow raises past twice this many pixels.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS // 2


def provider_base_url_is_safe() -> bool:
    """An override of the Gemini or Vertex AI endpoint must still be TLS: photos never travel in
    plaintext."""
    urls = (os.environ.get(name, "") for name in ("GOOGLE_GEMINI_BASE_URL", "GOOGLE_VERTEX_BASE_URL"))
    return all(url == "" or url.startswith("https://") for url in urls)


def build_sdk_types() -> None:
    """Builds, once and before serving, the SDK types a request uses.

    google-genai declares its pydantic models with `defer_build`: each is built on its first use,
    and threads that first use one at the same moment race. Under load a burst of first requests
    then failed one valid answer ("Extra inputs are not permitted" for every field, or "...
    has no attribute '__pydantic_core_schema__'"), answered 502 here.
    """
    types.GenerateContentConfig(response_modalities=["TEXT", "IMAGE"])
    types.Part.from_bytes(data=b"", mime_type="image/png")
    part = {"text": "", "inlineData": {"mimeType": "image/png", "data": ""}}
    types.GenerateContentResponse.model_validate(
        {
            "candidates": [{"content": {"role": "model", "parts": [part]}, "finishReason": "STOP", "index": 0}],
            "promptFeedback": {"blockReason": "SAFETY"},
            "usageMetadata": {"promptTokenCount": 0},
            "modelVersion": "",
            "responseId": "",
        }
    )


def make_client() -> genai.Client:
    # The SDK reads GEMINI_API_KEY / GOOGLE_API_KEY and GOOGLE_GEMINI_BASE_URL itself.
    return genai.Client(http_options=types.HttpOptions(timeout=60_000))


class EditRequest(BaseModel):
    photo: str = Field(max_length=MAX_PHOTO_BYTES * 4 // 3 + 64)
    instruction: str = Field(min_length=1, max_length=4000)
    over13: bool = False


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def decode_data_url(photo: str) -> bytes:
    head, sep, payload = photo.partition(",")
    if not sep or not head.startswith("data:image/") or not head.endswith(";base64"):
        raise ApiError(415, "invalid_image", "photo must be a data:image/...;base64 URL")
    try:
        return base64.b64decode(payload, validate=True)
    except binascii.Error:
        raise ApiError(422, "invalid_image", "photo is not valid base64") from None


def clean_png(raw: bytes) -> bytes:
    """Decodes the photo and encodes its pixels alone as PNG: no metadata survives."""
    try:
        with Image.open(io.BytesIO(raw)) as img:
            if img.format not in ACCEPTED_FORMATS:
                raise ApiError(415, "invalid_image", "only PNG, JPEG and WebP photos are accepted")
            if img.width * img.height > MAX_PIXELS:
                raise ApiError(413, "payload_too_large", "the photo has too many pixels")
            pixels = img.convert("RGBA" if "A" in img.getbands() else "RGB")
        out = io.BytesIO()
        pixels.save(out, format="PNG")
        return out.getvalue()
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError):
        raise ApiError(422, "invalid_image", "the photo could not be decoded") from None


def first_image(chunks) -> bytes:
    """The first image part of a streamed answer; a safety block is a refusal, not an error."""
    for chunk in chunks:
        feedback = chunk.prompt_feedback
        if feedback is not None and feedback.block_reason is not None:
            raise ApiError(422, "content_refused", "the provider refused this request")
        for candidate in chunk.candidates or []:
            for part in (candidate.content.parts if candidate.content else None) or []:
                if part.inline_data is not None and (part.inline_data.mime_type or "").startswith("image/"):
                    return part.inline_data.data
            reason = candidate.finish_reason.name if candidate.finish_reason else ""
            if reason in BLOCKED_FINISH:
                raise ApiError(422, "content_refused", "the provider refused this request")
    raise ApiError(502, "provider_error", "the provider answered without an image")


def provider_failure(e: errors.APIError) -> ApiError:
    if e.code == 429:
        return ApiError(429, "rate_limited", "the provider is rate limiting; try again later")
    if e.code == 504:
        return ApiError(504, "provider_timeout", "the provider timed out")
    return ApiError(502, "provider_error", f"the provider failed ({e.code})")


def error_response(e: ApiError) -> JSONResponse:
    headers = {"Cache-Control": "no-store"}
    if e.status == 429:
        headers["Retry-After"] = "30"
    return JSONResponse({"error": {"code": e.code, "message": e.message}}, status_code=e.status, headers=headers)


app = FastAPI(title="photo-edit", docs_url=None, redoc_url=None, openapi_url=None)
client = make_client()
build_sdk_types()


@app.get("/healthz")
def healthz():
    return {"status": "ok"}


@app.post("/api/edit")
def edit(req: EditRequest):
    # A plain `def`: FastAPI runs it in its thread pool, so the blocking SDK stream is fine here.
    return answer(req)


def answer(req: EditRequest, outcome=lambda req, ok: None) -> JSONResponse:
    """The answer to an edit; `outcome(req, ok)` is told how it went (for apps built on this one)."""
    try:
        image = generate(req)
    except ApiError as e:
        response = error_response(e)
    else:
        outcome(req, True)
        return JSONResponse({"image": base64.b64encode(image).decode()}, headers={"Cache-Control": "no-store"})
    outcome(req, False)
    # A failed call leaves reference cycles behind (the SDK's retry state and the exception's
    # traceback), and they hold this request's frames, and so the photo, until the next garbage
    # collection. Collect now, with the exceptions out of scope, so the photo goes with the request.
    gc.collect()
    return response


def generate(req: EditRequest) -> bytes:
    if not req.over13:
        raise ApiError(403, "age_confirmation_required", "confirm that you are 13 or older")
    photo = clean_png(decode_data_url(req.photo))
    try:
        stream = client.models.generate_content_stream(
            model=MODEL,
            contents=[types.Part.from_bytes(data=photo, mime_type="image/png"), req.instruction],
            config=types.GenerateContentConfig(response_modalities=["TEXT", "IMAGE"]),
        )
        return first_image(stream)
    except errors.APIError as e:
        log.warning("Gemini call failed: %s %s", e.code, e.status)
        raise provider_failure(e) from None
    except ApiError:
        raise
    except Exception as e:  # noqa: BLE001
        # Transport failures of the SDK's HTTP client (httpx or httpx2, whichever is installed):
        # only the exception's class name is logged, never its text, which may quote the request.
        name = type(e).__name__
        log.warning("Gemini unreachable: %s", name)
        if "Timeout" in name:
            raise ApiError(504, "provider_timeout", "the provider timed out") from None
        raise ApiError(502, "provider_error", "the provider could not be reached") from None


def main(api: FastAPI = app) -> None:
    """Serves `api` (this app, or one built on its functions) the way this app is deployed."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if not provider_base_url_is_safe():
        sys.exit("GOOGLE_GEMINI_BASE_URL and GOOGLE_VERTEX_BASE_URL must be https:// URLs: photos are never sent in plaintext")
    uvicorn.run(
        api,
        host=os.environ.get("HOST", "127.0.0.1"),
        port=int(os.environ.get("PORT", "8000")),
        access_log=False,
        proxy_headers=False,
        server_header=False,
    )


if __name__ == "__main__":
    main()
