"""Drives the Gemini mock as Vertex AI with the official google-genai SDK (`vertexai=True`): the
mocks' own service-account JSON (its key made for this run, its token endpoint the mock's), then
generate_content plus streaming on a current image model, then the Interactions API (create, get,
delete, a 404 after); and a service account made here, whose key the mock never saw, gets no token
(google-auth's RefreshError). Exits non-zero on the first surprise."""

import base64
import json
import os
import ssl
import sys

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google import genai
from google.genai import _interactions, types
from google.auth.exceptions import RefreshError
from google.oauth2 import service_account

sys.path.insert(0, os.path.dirname(__file__))
from pngcheck import assert_png  # noqa: E402

base = os.environ["TRACELESS_GEMINI_URL"]
ca_file = os.environ["TRACELESS_CA_FILE"]
with open(os.environ["TRACELESS_INPUT_PNG"], "rb") as f:
    input_png = f.read()
# google-auth fetches the token with requests, which trusts this bundle.
os.environ["REQUESTS_CA_BUNDLE"] = ca_file

SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]
with open(os.environ["TRACELESS_SERVICE_ACCOUNT"]) as f:
    info = json.load(f)


def vertex_client(creds):
    return genai.Client(
        vertexai=True,
        project=info["project_id"],
        location="us-central1",
        credentials=creds,
        http_options=types.HttpOptions(
            base_url=base,
            client_args={"verify": ssl.create_default_context(cafile=ca_file)},
            retry_options=types.HttpRetryOptions(attempts=1),
        ),
    )


# The JSON a backend would be given, read as the SDK's users read it.
client = vertex_client(service_account.Credentials.from_service_account_info(info, scopes=SCOPES))
MODEL = "gemini-3.1-flash-lite-image"
contents = [types.Part.from_bytes(data=input_png, mime_type="image/png"), "vertex edit tlp-vertex000001"]
config = types.GenerateContentConfig(response_modalities=["TEXT", "IMAGE"])


def images_of(response):
    return [
        p.inline_data.data
        for c in response.candidates or []
        for p in (c.content.parts if c.content else None) or []
        if p.inline_data is not None
    ]


resp = client.models.generate_content(model=MODEL, contents=contents, config=config)
imgs = images_of(resp)
assert len(imgs) == 1, resp
assert_png(imgs[0], "vertex generate_content inline_data")
chunks = list(client.models.generate_content_stream(model=MODEL, contents=contents, config=config))
assert len([i for c in chunks for i in images_of(c)]) == 1, chunks

# The Interactions API on Vertex AI: create, get, delete; then get is the Interactions client's 404.
image_block = {"type": "image", "mime_type": "image/png", "data": base64.b64encode(input_png).decode()}
made = client.interactions.create(
    model=MODEL,
    input=[image_block, {"type": "text", "text": "vertex interaction tlp-vertex000002"}],
    response_modalities=["IMAGE"],
)
assert made.status == "completed" and made.output_image is not None, made
assert_png(base64.b64decode(made.output_image.data), "vertex interactions.create output_image")
assert client.interactions.get(made.id).output_image.data == made.output_image.data
assert client.interactions.delete(made.id) is None
try:
    client.interactions.get(made.id)
    raise SystemExit("expected a NotFoundError for a deleted interaction")
except _interactions.NotFoundError as e:
    assert e.status_code == 404 and e.body["error"]["code"] == "not_found", e.body

# A key made here: same account name, same token endpoint, but the mock never saw its key.
key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
pem = key.private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
).decode()
forged = vertex_client(
    service_account.Credentials.from_service_account_info({**info, "private_key": pem}, scopes=SCOPES)
)
try:
    forged.models.generate_content(model=MODEL, contents=contents, config=config)
    raise SystemExit("a service account the mock did not make got a token")
except RefreshError as e:
    assert "Invalid JWT Signature" in str(e), e
print("vertex: all answers parsed")
