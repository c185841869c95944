// Drives the Gemini mock's Interactions API with the official `@google/genai` npm package
// (`ai.interactions`): image in and image out as one Interaction and streamed, the stored
// interaction retrieved, cancelled and deleted (then a 404 for a get and a cancel), a scripted
// 429 raising the Interactions client's RateLimitError, then `background: true` interactions, one
// polled with `interactions.get` until it is no longer in_progress and one cancelled while it
// runs; exits non-zero if any answer is not parsed as expected. Each step prints
// one JSON line of what the SDK parsed, so the Rust side can compare it with what the mock recorded
// and answered.
//
// Environment: TRACELESS_GEMINI_URL (origin), TRACELESS_GEMINI_KEY, TRACELESS_INPUT_PNG (a file), and
// NODE_EXTRA_CA_CERTS naming the mock's CA, the only way Node's fetch trusts it.

import assert from 'node:assert/strict';
import fs from 'node:fs';

import { APIWebSocketError, ApiError, GoogleGenAI } from '@google/genai';

import { pngFrom, pollWhileRunning, say } from './common.mjs';

const base = process.env.TRACELESS_GEMINI_URL;
const key = process.env.TRACELESS_GEMINI_KEY;
const inputPath = process.env.TRACELESS_INPUT_PNG;
assert.ok(base && key && inputPath, 'TRACELESS_GEMINI_URL, TRACELESS_GEMINI_KEY and TRACELESS_INPUT_PNG must be set');
assert.ok(process.env.NODE_EXTRA_CA_CERTS, 'NODE_EXTRA_CA_CERTS must name the mock CA');

const MODEL = 'gemini-3.1-flash-lite-image';
const imageBlock = { type: 'image', mime_type: 'image/png', data: fs.readFileSync(inputPath).toString('base64') };
const textBlock = { type: 'text', text: 'node interactions tlp-node0000009' };
// The Interactions client retries 408, 409, 429 and 5XX four times by default; one attempt, so a
// scripted fault surfaces instead of being retried away.
const once = { maxRetries: 0 };

// @google/genai 3.6.1 raises the Interactions API's errors as its own `APIError` (node.d.ts: "General
// errors raised by the GenAI Interactions API"), by status a RateLimitError, NotFoundError, ...
// subclass; the package root exports none of them by name, only APIWebSocketError, which derives
// from APIConnectionError, which derives from APIError.
const InteractionsAPIError = Object.getPrototypeOf(Object.getPrototypeOf(APIWebSocketError));
assert.equal(InteractionsAPIError.name, 'APIError');

/** Checks an image content block the SDK handed back is a PNG; returns its base64. */
function png(block, what) {
  assert.equal(block?.type, 'image', `${what}: ${JSON.stringify(block)}`);
  assert.equal(block.mime_type, 'image/png', `${what}: mime_type ${block.mime_type}`);
  pngFrom(block.data, what);
  return block.data;
}

/** Runs `call`, which must fail with the Interactions API's `APIError` subclass `name`; says what it carried. */
async function expectError(step, name, call) {
  try {
    await call();
  } catch (e) {
    assert.ok(e instanceof InteractionsAPIError, `${step}: expected the Interactions APIError, got ${e?.constructor?.name}: ${e}`);
    assert.ok(!(e instanceof ApiError), `${step}: an Interactions error is not generateContent's ApiError`);
    assert.equal(e.constructor.name, name, `${step}: ${e}`);
    say({ step, class: e.constructor.name, status: e.status, code: e.error?.error?.code, message: e.message });
    return;
  }
  assert.fail(`${step}: expected a ${name}, but the call succeeded`);
}

const ai = new GoogleGenAI({ apiKey: key, httpOptions: { baseUrl: base, timeout: 60_000 } });

// 1. create, image in and image out, as the SDK's README documents image output (behaviour: ok)
const interaction = await ai.interactions.create(
  { model: MODEL, input: [imageBlock, textBlock], response_modalities: ['image'] },
  once,
);
assert.equal(interaction.status, 'completed', JSON.stringify(interaction));
assert.ok(interaction.output_text, JSON.stringify(interaction));
assert.ok(interaction.usage?.total_tokens > 0, JSON.stringify(interaction.usage));
say({
  step: 'interactions.create',
  id: interaction.id,
  status: interaction.status,
  image: png(interaction.output_image, 'create output_image'),
  text: interaction.output_text,
  total_tokens: interaction.usage.total_tokens,
});

// 2. create with stream: true, the image asked for through response_format (behaviour: ok)
const events = [];
for await (const event of await ai.interactions.create(
  { model: MODEL, input: [imageBlock, textBlock], response_format: { type: 'image' }, stream: true },
  once,
)) {
  events.push(event);
}
const types = events.map((e) => e.event_type);
assert.equal(types[0], 'interaction.created', JSON.stringify(types));
assert.equal(types.at(-1), 'interaction.completed', JSON.stringify(types));
const deltas = events.filter((e) => e.event_type === 'step.delta' && e.delta?.type === 'image');
assert.equal(deltas.length, 1, JSON.stringify(types));
assert.equal(events.at(-1).interaction.status, 'completed', JSON.stringify(events.at(-1)));
assert.equal(events.at(-1).interaction.id, events[0].interaction.id);
say({
  step: 'interactions.create.stream',
  id: events[0].interaction.id,
  types,
  image: png(deltas[0].delta, 'streamed image delta'),
});

// 3. get: the stored interaction as the create answered it
const got = await ai.interactions.get(interaction.id);
assert.equal(got.id, interaction.id);
say({ step: 'interactions.get', status: got.status, image: png(got.output_image, 'get output_image') });

// 4. cancel (POST .../interactions/{id}/cancel): it has finished, so it is answered as it is
const cancelled = await ai.interactions.cancel(interaction.id);
assert.equal(cancelled.id, interaction.id);
say({ step: 'interactions.cancel', status: cancelled.status, image: png(cancelled.output_image, 'cancel output_image') });

// 5. delete; a get or a cancel of it then is the Interactions client's NotFoundError
const deleted = await ai.interactions.delete(interaction.id);
say({ step: 'interactions.delete', answer: deleted ?? null });
await expectError('get-deleted', 'NotFoundError', () => ai.interactions.get(interaction.id));
await expectError('cancel-deleted', 'NotFoundError', () => ai.interactions.cancel(interaction.id, {}, once));

// 6. a 429 (behaviour: 429:1): the Interactions client's RateLimitError
await expectError('rate-limited', 'RateLimitError', () =>
  ai.interactions.create({ model: MODEL, input: [imageBlock, textBlock], response_modalities: ['image'] }, once),
);

// 7. background: true (behaviour: ok): answered at once in_progress with no output, then polled
// with interactions.get until it is no longer in_progress, as the SDK's README polls its Deep
// Research example; the mock answers one poll in_progress, the next completed with the image.
const started = await ai.interactions.create(
  { model: MODEL, input: [imageBlock, textBlock], response_modalities: ['image'], background: true },
  once,
);
assert.equal(started.status, 'in_progress', JSON.stringify(started));
assert.equal(started.output_image, undefined, JSON.stringify(started));
const { polled, statuses } = await pollWhileRunning(started, (id) => ai.interactions.get(id));
assert.equal(polled.id, started.id);
say({
  step: 'background.poll',
  id: started.id,
  statuses,
  image: polled.status === 'completed' ? png(polled.output_image, 'background output_image') : null,
});

// 8. background: true (behaviour: ok), cancelled while it runs: cancelled, and a get says so after,
// with no output.
const running = await ai.interactions.create(
  { model: MODEL, input: [imageBlock, textBlock], response_modalities: ['image'], background: true },
  once,
);
const stopped = await ai.interactions.cancel(running.id);
assert.equal(stopped.id, running.id);
const after = await ai.interactions.get(running.id);
say({
  step: 'background.cancel',
  id: running.id,
  statuses: [running.status, stopped.status, after.status],
  outputs: [running, stopped, after].map((i) => i.output_image ?? null),
  steps: [running, stopped, after].map((i) => i.steps.length),
});

const { version } = JSON.parse(fs.readFileSync(new URL('./node_modules/@google/genai/package.json', import.meta.url)));
console.log(`google-genai-node interactions ${version} on Node ${process.versions.node}: all answers parsed`);
