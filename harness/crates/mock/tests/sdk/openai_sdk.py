"""Drives the OpenAI mock with the official openai SDK; exits non-zero if any answer is not parsed as expected."""

import base64
import os
import ssl
import sys

import openai
from openai import OpenAI

sys.path.insert(0, os.path.dirname(__file__))
from pngcheck import assert_png  # noqa: E402

base = os.environ["TRACELESS_OPENAI_URL"]
key = os.environ["TRACELESS_OPENAI_KEY"]
ca_file = os.environ["TRACELESS_CA_FILE"]
with open(os.environ["TRACELESS_INPUT_PNG"], "rb") as f:
    input_png = f.read()

# Trust exactly the mock's CA, through the SDK's own httpx client class.
ctx = ssl.create_default_context(cafile=ca_file)
client = OpenAI(
    api_key=key,
    base_url=f"{base}/v1",
    http_client=openai.DefaultHttpxClient(verify=ctx),
    max_retries=0,
)

models = [m.id for m in client.models.list()]
assert "gpt-image-2.5-sunburst" in models, models

# 1. images.edit (behaviour: ok)
edit = client.images.edit(
    model="gpt-image-2.5-sunburst",
    image=("face.png", input_png, "image/png"),
    prompt="sdk edit tlp-sdk00000001",
    size="1024x1024",
    quality="low",
)
assert_png(base64.b64decode(edit.data[0].b64_json), "images.edit b64_json")
assert edit.usage is not None and edit.usage.output_tokens > 0, edit.usage

# 2. responses.create with the image_generation tool and an input_image (behaviour: ok)
data_url = "data:image/png;base64," + base64.b64encode(input_png).decode()
resp = client.responses.create(
    model="gpt-5",
    store=False,
    input=[{"role": "user", "content": [
        {"type": "input_text", "text": "sdk responses tlp-sdk00000002"},
        {"type": "input_image", "image_url": data_url},
    ]}],
    tools=[{"type": "image_generation", "quality": "low"}],
    tool_choice={"type": "image_generation"},
)
calls = [item for item in resp.output if item.type == "image_generation_call"]
assert len(calls) == 1, resp.output
assert calls[0].status == "completed", calls[0]
assert_png(base64.b64decode(calls[0].result), "image_generation_call.result")
assert resp.store is False, resp.store
assert resp.output_text, "the message item was not parsed"

# 3. a 429 (behaviour: 429:1)
try:
    client.images.edit(model="gpt-image-2.5-sunburst", image=("face.png", input_png, "image/png"), prompt="x")
    raise SystemExit("expected RateLimitError")
except openai.RateLimitError as e:
    assert e.status_code == 429, e.status_code
    assert e.code == "rate_limit_exceeded", e.code
    assert e.response.headers.get("retry-after") == "1", dict(e.response.headers)

# 4. a safety block (behaviour: safety-block)
try:
    client.images.edit(model="gpt-image-2.5-sunburst", image=("face.png", input_png, "image/png"), prompt="x")
    raise SystemExit("expected BadRequestError")
except openai.BadRequestError as e:
    assert e.status_code == 400, e.status_code
    assert e.code == "moderation_blocked", e.code
    assert e.type == "image_generation_user_error", e.type

# 5. Azure OpenAI: a deployment path with api-version and the api-key header (behaviour: ok)
azure = openai.AzureOpenAI(
    api_key=key,
    api_version="2025-04-01-preview",
    azure_endpoint=base,
    http_client=openai.DefaultHttpxClient(verify=ctx),
    max_retries=0,
)
edited = azure.images.edit(model="team-images", image=("face.png", input_png, "image/png"), prompt="azure edit")
assert_png(base64.b64decode(edited.data[0].b64_json), "azure images.edit b64_json")

# 6. image generation streaming with partial images (behaviour: ok)
events = list(
    client.images.generate(
        model="gpt-image-2.5-flare", prompt="streamed", stream=True, partial_images=2, size="1024x1024"
    )
)
assert [e.type for e in events] == [
    "image_generation.partial_image",
    "image_generation.partial_image",
    "image_generation.completed",
], [e.type for e in events]
assert_png(base64.b64decode(events[-1].b64_json), "image_generation.completed b64_json")

print(f"openai {openai.__version__}: all answers parsed")
