"""Photo stylising API: Flask, served by waitress, on the official google-genai SDK, with Pillow.

POST /stylise takes multipart fields `photo` (the image), `style` (the prompt) and `adult` ("1" once
the user confirmed being 13 or older) and answers {"result": "/generated/<id>.png"}. The result is
downloaded from GET /generated/<id>.png. GET /healthz answers 200.

The upload is opened with Pillow and the PIL image itself is handed to the SDK, which re-encodes it as
PNG before the call: no byte of the upload reaches Gemini, only its pixels (and no metadata).

KNOWN BUG, kept on purpose (this app is an example the audit must catch): every generated picture is
kept in ./generated/ "for the gallery" and never deleted, and /generated/<id>.png serves it to anyone,
forever. The audit reports disk-persistence (a result derived from a user's photo stays on disk) and
public-exposure (it is downloadable over the app's port without credentials).

Configuration (environment): GEMINI_API_KEY, GOOGLE_GEMINI_BASE_URL (read by the SDK), HOST (default
127.0.0.1). The port is fixed: 8080.
"""

import gc
import io
import logging
import os
import uuid

import waitress
from flask import Flask, jsonify, request, send_from_directory
from google import genai
from google.genai import errors, types
from PIL import Image, UnidentifiedImageError

MODEL = "gemini-2.5-flash-image"
GENERATED = "generated"
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
PORT = 8080

log = logging.getLogger("stylise")


def create_app(client: genai.Client) -> Flask:
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_UPLOAD_BYTES + 64 * 1024
    os.makedirs(GENERATED, exist_ok=True)

    @app.get("/healthz")
    def healthz():
        return {"status": "ok"}

    @app.post("/stylise")
    def stylise():
        if request.form.get("adult") != "1":
            return jsonify(error="confirm that you are 13 or older"), 403
        upload = request.files.get("photo")
        style = request.form.get("style", "")
        if upload is None or not style:
            return jsonify(error="send a photo and a style"), 422
        try:
            photo = Image.open(io.BytesIO(upload.read()))
            photo.load()
        except (UnidentifiedImageError, OSError, SyntaxError):
            return jsonify(error="the photo could not be decoded"), 422
        answer = None
        try:
            answer = client.models.generate_content(
                model=MODEL,
                # The SDK turns the PIL image into a PNG blob itself.
                contents=[photo, style],
                config=types.GenerateContentConfig(response_modalities=["TEXT", "IMAGE"]),
            )
        except Exception as e:  # noqa: BLE001
            code = e.code if isinstance(e, errors.APIError) else type(e).__name__
            log.warning("Gemini call failed: %s", code)
        if answer is None:
            # The SDK's retry state and the exception's traceback form reference cycles that hold
            # the photo until the next garbage collection: collect now, with the exception out of
            # scope, so the photo goes with the request.
            del photo
            gc.collect()
            return jsonify(error="the provider failed"), 502
        image = None
        for candidate in answer.candidates or []:
            for part in (candidate.content.parts if candidate.content else None) or []:
                if part.inline_data is not None and (part.inline_data.mime_type or "").startswith("image/"):
                    image = part.inline_data.data
                    break
        if image is None:
            return jsonify(error="the provider answered without an image"), 502
        # BUG: kept for the gallery, never deleted, served to anyone below.
        name = f"{uuid.uuid4().hex}.png"
        with open(os.path.join(GENERATED, name), "wb") as out:
            out.write(image)
        return jsonify(result=f"/generated/{name}")

    @app.get("/generated/<name>")
    def generated(name: str):
        return send_from_directory(os.path.abspath(GENERATED), name, mimetype="image/png", max_age=0)

    return app


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    app = create_app(genai.Client())
    # google-genai builds its pydantic models on first use, and waitress's threads using one
    # first at once race (see fastapi_genai's build_sdk_types): build them before serving.
    types.GenerateContentConfig(response_modalities=["TEXT", "IMAGE"])
    types.GenerateContentResponse.model_validate({"candidates": [{"content": {"parts": [{"inlineData": {"data": ""}}]}}]})
    waitress.serve(app, host=os.environ.get("HOST", "127.0.0.1"), port=PORT, threads=4)


if __name__ == "__main__":
    main()
