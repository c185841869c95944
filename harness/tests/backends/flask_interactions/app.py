"""Photo editing API on Gemini's Interactions API: Flask, served by waitress, on the official
google-genai SDK's `client.interactions.create`.

POST /edit takes multipart fields `image`, `prompt` and `adult` ("1" once the user confirmed being 13
or older) and answers JSON {"png": "<base64>"}. GET /healthz answers 200.

Privacy measures in the code: no age confirmation, no processing (403 before the photo is read);
the photo is re-encoded as a bare PNG in memory (no metadata reaches Gemini); the result is
answered from memory, nothing is written to disk; provider failures are answered 502 (429 when
rate limited, 422 when refused), and logged by class only.

KNOWN BUG, kept on purpose (this app is an example the audit must catch): it calls
`interactions.create` without `store=False`. The Interactions API keeps every interaction, the
uploaded photo included, for later retrieval unless the call says otherwise, so each user's photo
is retained by the provider. The audit reports provider-retention. The fix is one argument.

Configuration (environment): GEMINI_API_KEY, GOOGLE_GEMINI_BASE_URL (optional, an https origin;
both read by the SDK), GEMINI_IMAGE_MODEL (default gemini-3.1-flash-lite-image), PORT (default
5000), HOST (default 127.0.0.1).
"""

import base64
import io
import logging
import os
import sys

import waitress
from flask import Flask, jsonify, request
from google import genai
from google.genai import _interactions
from PIL import Image, UnidentifiedImageError

MODEL = os.environ.get("GEMINI_IMAGE_MODEL", "gemini-3.1-flash-lite-image")
MAX_UPLOAD_BYTES = 20 * 1024 * 1024

log = logging.getLogger("edit-interactions")
Image.MAX_IMAGE_PIXELS = 20_000_000


class Refusal(Exception):
    def __init__(self, status: int, code: str):
        super().__init__(code)
        self.status, self.code = status, code


def bare_png(raw: bytes) -> bytes:
    """The photo's pixels alone, as PNG."""
    try:
        with Image.open(io.BytesIO(raw)) as img:
            pixels = img.convert("RGBA" if "A" in img.getbands() else "RGB")
        out = io.BytesIO()
        pixels.save(out, format="PNG")
        return out.getvalue()
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError):
        raise Refusal(422, "invalid_image") from None


def edit(client: genai.Client, photo: bytes, prompt: str) -> str:
    """The edited image, base64, as the Interactions API answers it."""
    blocks = [
        {"type": "image", "mime_type": "image/png", "data": base64.b64encode(photo).decode()},
        {"type": "text", "text": prompt},
    ]
    try:
        # BUG: no store=False, so the provider keeps the interaction and the photo in it.
        interaction = client.interactions.create(model=MODEL, input=blocks, response_modalities=["IMAGE"])
    except _interactions.RateLimitError:
        raise Refusal(429, "rate_limited") from None
    except _interactions.APIError as e:
        log.warning("Interactions call failed: %s", type(e).__name__)
        raise Refusal(502, "provider_error") from None
    if interaction.status != "completed" or interaction.output_image is None:
        raise Refusal(422, "content_refused")
    return interaction.output_image.data


def create_app(client: genai.Client) -> Flask:
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_UPLOAD_BYTES + 64 * 1024

    @app.errorhandler(Refusal)
    def refused(e: Refusal):
        return jsonify(error={"code": e.code}), e.status, {"Cache-Control": "no-store"}

    @app.get("/healthz")
    def healthz():
        return {"status": "ok"}

    @app.post("/edit")
    def post_edit():
        if request.form.get("adult") != "1":
            raise Refusal(403, "age_confirmation_required")
        upload = request.files.get("image")
        prompt = request.form.get("prompt", "")
        if upload is None or not 1 <= len(prompt) <= 4000:
            raise Refusal(422, "invalid_request")
        png = edit(client, bare_png(upload.read()), prompt)
        return jsonify(png=png), 200, {"Cache-Control": "no-store"}

    return app


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    url = os.environ.get("GOOGLE_GEMINI_BASE_URL", "")
    if url and not url.startswith("https://"):
        sys.exit("GOOGLE_GEMINI_BASE_URL must be an https:// URL: photos are never sent in plaintext")
    client = genai.Client(http_options=genai.types.HttpOptions(retry_options=genai.types.HttpRetryOptions(attempts=1)))
    waitress.serve(create_app(client), host=os.environ.get("HOST", "127.0.0.1"), port=int(os.environ.get("PORT", "5000")), threads=4)


if __name__ == "__main__":
    main()
