"""Drives the Gemini mock's Interactions API with the official google-genai SDK (image in, image out,
as one Interaction and streamed; the stored interaction retrieved, cancelled, continued through
previous_interaction_id and deleted, after which it is the Interactions client's NotFoundError, as a
store=False one is for a get and a cancel; then a scripted 429; then background=True: one polled
with get until it is no longer in_progress, one cancelled while it runs); exits non-zero if any
answer is not parsed as expected."""

import base64
import os
import sys

from google import genai
from google.genai import _interactions

sys.path.insert(0, os.path.dirname(__file__))
from genai_client import client_and_input  # noqa: E402
from pngcheck import assert_png  # noqa: E402

client, input_png = client_and_input()
MODEL = "gemini-3.1-flash-lite-image"
image_block = {"type": "image", "mime_type": "image/png", "data": base64.b64encode(input_png).decode()}
text_block = {"type": "text", "text": "sdk interactions tlp-sdk00000005"}

# 1. create, as the SDK's README documents image output (behaviour: ok)
interaction = client.interactions.create(
    model=MODEL, input=[image_block, text_block], response_modalities=["IMAGE"]
)
assert interaction.status == "completed", interaction.status
assert interaction.output_image is not None, interaction
assert interaction.output_image.mime_type == "image/png", interaction.output_image.mime_type
assert_png(base64.b64decode(interaction.output_image.data), "interactions.create output_image")
assert interaction.output_text, interaction
assert interaction.usage.total_tokens > 0, interaction.usage

# 2. create(stream=True), the image asked for through response_format (behaviour: ok)
events = list(
    client.interactions.create(
        model=MODEL, input=[image_block, text_block], stream=True, response_format={"type": "image"}
    )
)
kinds = [e.event_type for e in events]
assert kinds[0] == "interaction.created" and kinds[-1] == "interaction.completed", kinds
images = [e.delta.data for e in events if e.event_type == "step.delta" and e.delta.type == "image"]
assert len(images) == 1, kinds
assert_png(base64.b64decode(images[0]), "streamed image delta")
assert events[-1].interaction.status == "completed", events[-1]
assert events[-1].interaction.id == events[0].interaction.id

# 3. get: the stored interaction as create answered it, whole or as events
got = client.interactions.get(interaction.id)
assert got.id == interaction.id and got.status == "completed", got
assert got.output_image is not None and got.output_image.data == interaction.output_image.data, got
replay = list(client.interactions.get(interaction.id, stream=True))
assert [e.event_type for e in replay][-1] == "interaction.completed", replay

# 3b. cancel (POST .../interactions/{id}/cancel): it has finished, so it is answered as it is
cancelled = client.interactions.cancel(interaction.id)
assert cancelled.id == interaction.id and cancelled.status == "completed", cancelled
assert cancelled.output_image is not None and cancelled.output_image.data == interaction.output_image.data, cancelled

# 4. create continuing it (behaviour: ok)
follow = client.interactions.create(
    model=MODEL,
    input=[image_block, text_block],
    response_modalities=["IMAGE"],
    previous_interaction_id=interaction.id,
)
assert follow.status == "completed" and follow.previous_interaction_id == interaction.id, follow


def not_found(call, what):
    try:
        call()
    except _interactions.NotFoundError as e:
        assert e.status_code == 404, e.status_code
        assert e.body["error"]["code"] == "not_found", e.body
        return
    raise SystemExit(f"expected a NotFoundError: {what}")


# 5. delete; then get, and a create continuing it (behaviour: ok), are 404
assert client.interactions.delete(interaction.id) is None
not_found(lambda: client.interactions.get(interaction.id), "get of a deleted interaction")
not_found(
    lambda: client.interactions.create(
        model=MODEL, input=[image_block, text_block], previous_interaction_id=interaction.id
    ),
    "previous_interaction_id of a deleted interaction",
)

# 6. store=False (behaviour: ok): answered, but not kept
unstored = client.interactions.create(
    model=MODEL, input=[image_block, text_block], response_modalities=["IMAGE"], store=False
)
assert unstored.status == "completed", unstored
not_found(lambda: client.interactions.get(unstored.id), "get of a store=False interaction")
not_found(lambda: client.interactions.cancel(unstored.id), "cancel of a store=False interaction")

# 7. a 429 (behaviour: 429:1) raises the Interactions client's RateLimitError
try:
    client.interactions.create(model=MODEL, input=[image_block, text_block], response_modalities=["IMAGE"])
    raise SystemExit("expected a RateLimitError")
except _interactions.RateLimitError as e:
    assert e.status_code == 429, e.status_code
    assert e.body["error"]["code"] == "rate_limit_exceeded", e.body

# 8. background=True (behaviour: ok): answered at once in_progress with no output, then polled with
# get until it is no longer in_progress, as the SDK's README polls its Deep Research example; the
# mock answers one poll in_progress, the next completed with the image
started = client.interactions.create(
    model=MODEL, input=[image_block, text_block], response_modalities=["IMAGE"], background=True
)
assert started.status == "in_progress", started.status
assert started.output_image is None and not started.steps, started
statuses = [started.status]
polled = started
for _ in range(10):  # bounded: the mock needs two gets
    polled = client.interactions.get(started.id)
    statuses.append(polled.status)
    if polled.status != "in_progress":
        break
assert statuses == ["in_progress", "in_progress", "completed"], statuses
assert polled.id == started.id, polled
assert polled.output_image is not None and polled.output_image.mime_type == "image/png", polled
assert_png(base64.b64decode(polled.output_image.data), "background interaction output_image")
assert polled.usage.total_tokens > 0, polled.usage

# 9. background=True (behaviour: ok), cancelled while it runs: cancelled, and a get says so after,
# with no output
running = client.interactions.create(
    model=MODEL, input=[image_block, text_block], response_modalities=["IMAGE"], background=True
)
assert running.status == "in_progress", running.status
stopped = client.interactions.cancel(running.id)
assert stopped.id == running.id and stopped.status == "cancelled", stopped
assert stopped.output_image is None and not stopped.steps, stopped
after = client.interactions.get(running.id)
assert after.status == "cancelled" and after.output_image is None, after

print(f"google-genai {genai.__version__}: all interactions answers parsed")
