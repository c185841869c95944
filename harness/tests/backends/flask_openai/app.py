"""Photo restyling API: Flask, served by waitress, on the official openai SDK.

POST /generate takes multipart fields `file` (the photo), `prompt` and `age_ok` ("yes" once the user
confirmed being 13 or older) and answers the generated PNG. GET /healthz answers 200.

At start-up it checks the OpenAI key and endpoint with `client.models.list()` and exits if that fails.

KNOWN BUG, kept on purpose (this app is an example the audit must catch): every result is written to
one fixed file, ./output.png, and the answer is read back from that file. When the OpenAI call fails
the handler still answers 200 with whatever output.png holds, which is the previous user's picture;
two requests at once also race on the file. The audit reports cross-request-leak (one user's image
reaches another) and disk-persistence (results derived from users' photos are stored on disk).

Configuration (environment): OPENAI_API_KEY, OPENAI_BASE_URL (read by the SDK), PORT (default 5000),
HOST (default 127.0.0.1).
"""

import base64
import logging
import os
import sys

import openai
import waitress
from flask import Flask, jsonify, request, send_file

OUTPUT_FILE = "output.png"
MAX_UPLOAD_BYTES = 20 * 1024 * 1024

log = logging.getLogger("restyle")


def make_client() -> openai.OpenAI:
    client = openai.OpenAI()
    try:
        client.models.list()
    except openai.OpenAIError as e:
        sys.exit(f"cannot use the OpenAI API ({type(e).__name__}): check OPENAI_API_KEY and OPENAI_BASE_URL")
    return client


def create_app(client: openai.OpenAI) -> Flask:
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_UPLOAD_BYTES + 64 * 1024

    @app.get("/healthz")
    def healthz():
        return {"status": "ok"}

    @app.post("/generate")
    def generate():
        if request.form.get("age_ok") != "yes":
            return jsonify(error={"code": "age_confirmation_required", "message": "confirm you are 13 or older"}), 403
        upload = request.files.get("file")
        prompt = request.form.get("prompt", "")
        if upload is None or not prompt:
            return jsonify(error={"code": "invalid_request", "message": "send a file and a prompt"}), 422
        photo = upload.read()
        try:
            result = client.images.edit(
                model="gpt-image-2.5-sunburst",
                image=(upload.filename or "photo.png", photo, upload.mimetype or "image/png"),
                prompt=prompt,
            )
            with open(OUTPUT_FILE, "wb") as out:
                out.write(base64.b64decode(result.data[0].b64_json))
        except openai.OpenAIError as e:
            # BUG: the failure is only logged; the answer below still sends output.png.
            log.warning("OpenAI edit failed: %s", type(e).__name__)
        response = send_file(os.path.abspath(OUTPUT_FILE), mimetype="image/png", max_age=0)
        response.headers["Cache-Control"] = "no-store"
        return response

    return app


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    app = create_app(make_client())
    waitress.serve(app, host=os.environ.get("HOST", "127.0.0.1"), port=int(os.environ.get("PORT", "5000")), threads=4)


if __name__ == "__main__":
    main()
