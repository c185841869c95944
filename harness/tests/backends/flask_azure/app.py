"""Photo restyling API on Azure OpenAI: Flask, served by waitress, on the official openai SDK's
AzureOpenAI client, the way a company with an Azure subscription deploys it.

POST /restyle takes multipart fields `photo`, `prompt` and `over13` ("true" once the user confirmed
being 13 or older) and answers the generated PNG. GET /healthz answers 200.

Privacy measures in the code: no age confirmation, no processing (403 before the photo is read);
the photo is decoded and re-encoded as a bare PNG in memory (no EXIF, GPS or text chunks reach
Azure); the result is answered from memory and nothing is written to disk; a provider failure is
answered 502 (429 when rate limited), never with another picture; log lines name failures by class,
never by their text, which may quote the request.

Configuration (environment), the variables AzureOpenAI reads itself: AZURE_OPENAI_ENDPOINT (the
resource, https://{resource}.openai.azure.com), AZURE_OPENAI_API_KEY, OPENAI_API_VERSION; and
AZURE_IMAGE_DEPLOYMENT (the deployment of an image model, default `photo-restyle`), PORT (default
5000), HOST (default 127.0.0.1).
"""

import base64
import io
import logging
import os
import sys

import openai
import waitress
from flask import Flask, Response, jsonify, request
from PIL import Image, UnidentifiedImageError

MAX_UPLOAD_BYTES = 20 * 1024 * 1024
MAX_PIXELS = 40_000_000
DEPLOYMENT = os.environ.get("AZURE_IMAGE_DEPLOYMENT", "photo-restyle")

log = logging.getLogger("restyle-azure")
Image.MAX_IMAGE_PIXELS = MAX_PIXELS // 2


class Refusal(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def bare_png(raw: bytes) -> bytes:
    """The photo's pixels alone, as PNG: no metadata survives."""
    try:
        with Image.open(io.BytesIO(raw)) as img:
            if img.format not in {"PNG", "JPEG", "WEBP"}:
                raise Refusal(415, "invalid_image", "only PNG, JPEG and WebP photos are accepted")
            pixels = img.convert("RGBA" if "A" in img.getbands() else "RGB")
        out = io.BytesIO()
        pixels.save(out, format="PNG")
        return out.getvalue()
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError):
        raise Refusal(422, "invalid_image", "the photo could not be decoded") from None


def restyle(client: openai.AzureOpenAI, photo: bytes, prompt: str) -> bytes:
    try:
        result = client.images.edit(model=DEPLOYMENT, image=("photo.png", photo, "image/png"), prompt=prompt)
    except openai.RateLimitError:
        raise Refusal(429, "rate_limited", "the provider is rate limiting; try again later") from None
    except openai.BadRequestError:
        raise Refusal(422, "content_refused", "the provider refused this request") from None
    except openai.OpenAIError as e:
        log.warning("Azure OpenAI edit failed: %s", type(e).__name__)
        raise Refusal(502, "provider_error", "the provider failed") from None
    if not result.data or not result.data[0].b64_json:
        raise Refusal(502, "provider_error", "the provider answered without an image")
    return base64.b64decode(result.data[0].b64_json)


def create_app(client: openai.AzureOpenAI) -> Flask:
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_UPLOAD_BYTES + 64 * 1024

    @app.errorhandler(Refusal)
    def refused(e: Refusal):
        return jsonify(error={"code": e.code, "message": e.message}), e.status, {"Cache-Control": "no-store"}

    @app.get("/healthz")
    def healthz():
        return {"status": "ok"}

    @app.post("/restyle")
    def post_restyle():
        if request.form.get("over13") != "true":
            raise Refusal(403, "age_confirmation_required", "confirm that you are 13 or older")
        upload = request.files.get("photo")
        prompt = request.form.get("prompt", "")
        if upload is None or not 1 <= len(prompt) <= 4000:
            raise Refusal(422, "invalid_request", "send a photo and a prompt of 1 to 4000 characters")
        image = restyle(client, bare_png(upload.read()), prompt)
        return Response(image, mimetype="image/png", headers={"Cache-Control": "no-store"})

    return app


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if not os.environ.get("AZURE_OPENAI_ENDPOINT", "").startswith("https://"):
        sys.exit("AZURE_OPENAI_ENDPOINT must be an https:// URL: photos are never sent in plaintext")
    # AzureOpenAI reads AZURE_OPENAI_ENDPOINT, AZURE_OPENAI_API_KEY and OPENAI_API_VERSION.
    client = openai.AzureOpenAI(max_retries=0, timeout=60)
    app = create_app(client)
    waitress.serve(app, host=os.environ.get("HOST", "127.0.0.1"), port=int(os.environ.get("PORT", "5000")), threads=4)


if __name__ == "__main__":
    main()
