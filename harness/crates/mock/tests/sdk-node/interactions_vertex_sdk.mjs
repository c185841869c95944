// Drives the Gemini mock's Interactions API on Vertex AI with the official `@google/genai` npm
// package (`vertexai: true`, a project and a location, the mocks' service account): image in and
// image out, the stored interaction retrieved, `background: true` interactions polled with
// `interactions.get` until they are no longer in_progress or cancelled while they run, and a delete
// (then a 404); exits non-zero if any answer is not parsed as expected. Each step prints one JSON
// line of what the SDK parsed, so the Rust side can compare it with what the mock recorded.
//
// @google/genai 3.6.1 sends `ai.interactions` on Vertex AI: dist/node/index.mjs
// `getGoogleGenAIAPIVersion` puts `projects/{project}/locations/{location}` after the API version
// when the client `isVertexAI()`, and `buildGoogleGenAIClient` authenticates each call through the
// client's `getAuthHeaders` (the service account's access token).
//
// Environment: TRACELESS_GEMINI_URL (origin), TRACELESS_INPUT_PNG (a file), TRACELESS_SERVICE_ACCOUNT
// (the mocks' service-account JSON, a file), and NODE_EXTRA_CA_CERTS naming the mock's CA.

import assert from 'node:assert/strict';
import fs from 'node:fs';

import { GoogleGenAI } from '@google/genai';

import { GOOGLE_TOKEN_URL, pngFrom, pollWhileRunning, say, vertexOptions } from './common.mjs';

const base = process.env.TRACELESS_GEMINI_URL;
const inputPath = process.env.TRACELESS_INPUT_PNG;
const accountPath = process.env.TRACELESS_SERVICE_ACCOUNT;
assert.ok(base && inputPath && accountPath, 'TRACELESS_GEMINI_URL, TRACELESS_INPUT_PNG and TRACELESS_SERVICE_ACCOUNT must be set');
assert.ok(process.env.NODE_EXTRA_CA_CERTS, 'NODE_EXTRA_CA_CERTS must name the mock CA');

const MODEL = 'gemini-3.1-flash-lite-image';
const imageBlock = { type: 'image', mime_type: 'image/png', data: fs.readFileSync(inputPath).toString('base64') };
const textBlock = { type: 'text', text: 'node vertex interactions tlp-node0000010' };
const request = { model: MODEL, input: [imageBlock, textBlock], response_modalities: ['image'] };
// One attempt: nothing here is scripted to fail, and nothing must be retried.
const once = { maxRetries: 0 };

const serviceAccount = JSON.parse(fs.readFileSync(accountPath, 'utf8'));
const { options, tokenUrls } = vertexOptions(serviceAccount, { baseUrl: base, timeout: 60_000 });
const ai = new GoogleGenAI(options);

/** Checks an image content block the SDK handed back is a PNG; returns its base64. */
function png(block, what) {
  assert.equal(block?.type, 'image', `${what}: ${JSON.stringify(block)}`);
  assert.equal(block.mime_type, 'image/png', `${what}: mime_type ${block.mime_type}`);
  pngFrom(block.data, what);
  return block.data;
}

// 1. create: image in, image out, finished when answered
const made = await ai.interactions.create(request, once);
assert.equal(made.status, 'completed', JSON.stringify(made));
say({ step: 'vertex.interactions.create', id: made.id, status: made.status, image: png(made.output_image, 'create output_image') });

// 2. get: the stored interaction as the create answered it
const got = await ai.interactions.get(made.id, {}, once);
assert.equal(got.id, made.id);
say({ step: 'vertex.interactions.get', status: got.status, image: png(got.output_image, 'get output_image') });

// 3. background: true: in_progress at once, then polled until it is no longer in_progress
const started = await ai.interactions.create({ ...request, background: true }, once);
const { polled, statuses } = await pollWhileRunning(started, (id) => ai.interactions.get(id, {}, once));
assert.equal(polled.id, started.id);
say({
  step: 'vertex.background.poll',
  id: started.id,
  statuses,
  image: polled.status === 'completed' ? png(polled.output_image, 'background output_image') : null,
});

// 4. background: true, cancelled while it runs; a get after says how it ended
const running = await ai.interactions.create({ ...request, background: true }, once);
const stopped = await ai.interactions.cancel(running.id, {}, once);
assert.equal(stopped.id, running.id);
const after = await ai.interactions.get(running.id, {}, once);
say({
  step: 'vertex.background.cancel',
  id: running.id,
  statuses: [running.status, stopped.status, after.status],
  outputs: [running, stopped, after].map((i) => i.output_image ?? null),
});

// 5. delete the first; a get of it then is the Interactions client's NotFoundError
await ai.interactions.delete(made.id, {}, once);
try {
  await ai.interactions.get(made.id, {}, once);
  assert.fail('expected a NotFoundError for a deleted interaction');
} catch (e) {
  assert.equal(e.constructor.name, 'NotFoundError', String(e));
  say({ step: 'vertex.get-deleted', class: e.constructor.name, status: e.status, code: e.error?.error?.code });
}

assert.deepEqual(tokenUrls, [GOOGLE_TOKEN_URL], 'one access token, fetched once');
say({ step: 'vertex.token', urls: tokenUrls });

const { version } = JSON.parse(fs.readFileSync(new URL('./node_modules/@google/genai/package.json', import.meta.url)));
console.log(`google-genai-node interactions-vertex ${version} on Node ${process.versions.node}: all answers parsed`);
