// Drives the Gemini mock with the official `@google/genai` npm package, as the Gemini API (an API
// key) and as Vertex AI (a service account); exits non-zero if any answer is not parsed as
// expected. Each step prints one JSON line of what the SDK parsed, so the Rust side can compare it
// with what the mock recorded and answered.
//
// Environment: TRACELESS_GEMINI_URL (origin), TRACELESS_GEMINI_KEY, TRACELESS_INPUT_PNG (a file),
// TRACELESS_SERVICE_ACCOUNT (the mocks' service-account JSON, a file), and NODE_EXTRA_CA_CERTS
// naming the mock's CA, the only way Node's fetch trusts it.

import assert from 'node:assert/strict';
import fs from 'node:fs';

import { ApiError, BlockedReason, FinishReason, GoogleGenAI } from '@google/genai';

import { GOOGLE_TOKEN_URL, pngFrom, say, vertexOptions } from './common.mjs';

const base = process.env.TRACELESS_GEMINI_URL;
const key = process.env.TRACELESS_GEMINI_KEY;
const inputPath = process.env.TRACELESS_INPUT_PNG;
assert.ok(base && key && inputPath, 'TRACELESS_GEMINI_URL, TRACELESS_GEMINI_KEY and TRACELESS_INPUT_PNG must be set');
assert.ok(process.env.NODE_EXTRA_CA_CERTS, 'NODE_EXTRA_CA_CERTS must name the mock CA');

const MODEL = 'gemini-3.1-flash-lite-image';
const inputB64 = fs.readFileSync(inputPath).toString('base64');
const config = { responseModalities: ['TEXT', 'IMAGE'] };
// One attempt: a scripted fault must surface, not be retried away.
const httpOptions = { baseUrl: base, retryOptions: { attempts: 1 }, timeout: 60_000 };

/** The contents of a request: the input image inline, then the prompt. */
function contents(prompt) {
  return [{ inlineData: { mimeType: 'image/png', data: inputB64 } }, prompt];
}

/** The inline images of a response's candidates, as the SDK decoded them (base64 strings). */
function imagesOf(response) {
  return (response.candidates ?? []).flatMap((c) =>
    (c.content?.parts ?? []).filter((p) => p.inlineData).map((p) => p.inlineData),
  );
}

/** Checks an inline image the SDK handed back is a PNG; returns its base64. */
function png(inline, what) {
  assert.equal(inline.mimeType, 'image/png', `${what}: mimeType ${inline.mimeType}`);
  pngFrom(inline.data, what);
  return inline.data;
}

/** generateContent then generateContentStream with `ai`, both answered ok; says what each parsed. */
async function generateBoth(ai, mode, prompt) {
  const resp = await ai.models.generateContent({ model: MODEL, contents: contents(prompt), config });
  const imgs = imagesOf(resp);
  assert.equal(imgs.length, 1, JSON.stringify(resp));
  assert.equal(resp.candidates[0].finishReason, FinishReason.STOP, resp.candidates[0].finishReason);
  assert.ok(resp.usageMetadata?.totalTokenCount > 0, JSON.stringify(resp.usageMetadata));
  say({
    step: `${mode}.generateContent`,
    image: png(imgs[0], `${mode} generateContent inlineData`),
    // The SDK's own accessor for the first candidate's inline data agrees with the parts.
    data: resp.data,
    model_version: resp.modelVersion,
    total_tokens: resp.usageMetadata.totalTokenCount,
  });

  const chunks = [];
  for await (const chunk of await ai.models.generateContentStream({ model: MODEL, contents: contents(prompt), config })) {
    chunks.push(chunk);
  }
  const streamed = chunks.flatMap(imagesOf);
  assert.equal(streamed.length, 1, `${chunks.length} chunks, ${streamed.length} images`);
  assert.equal(chunks.at(-1).candidates[0].finishReason, FinishReason.STOP, JSON.stringify(chunks.at(-1)));
  say({
    step: `${mode}.generateContentStream`,
    image: png(streamed[0], `${mode} stream inlineData`),
    chunks: chunks.length,
  });
}

// The Gemini API, with an API key.
const ai = new GoogleGenAI({ apiKey: key, httpOptions });

// 1, 2. generateContent and generateContentStream (behaviours: ok, ok)
await generateBoth(ai, 'gemini', 'node gemini tlp-node0000004');

// 3. a 429 (behaviour: 429:1): the SDK's ApiError with the status
try {
  await ai.models.generateContent({ model: MODEL, contents: contents('node gemini tlp-node0000004'), config });
  assert.fail('expected an ApiError, but the call succeeded');
} catch (e) {
  assert.ok(e instanceof ApiError, `expected ApiError, got ${e?.constructor?.name}: ${e}`);
  say({ step: 'rate-limited', class: e.constructor.name, name: e.name, status: e.status, message: e.message });
}

// 4. a safety block (behaviour: safety-block): a 200 whose prompt was blocked, no candidates
const blocked = await ai.models.generateContent({ model: MODEL, contents: contents('node gemini tlp-node0000004'), config });
assert.ok(!blocked.candidates?.length, JSON.stringify(blocked.candidates));
assert.equal(blocked.promptFeedback?.blockReason, BlockedReason.PROHIBITED_CONTENT, JSON.stringify(blocked.promptFeedback));
say({ step: 'safety-block', block_reason: blocked.promptFeedback.blockReason });

// Vertex AI, with the service account the mocks made for this run (their token endpoint takes no
// other key), read as a backend reads the JSON it is given.
const serviceAccount = JSON.parse(fs.readFileSync(process.env.TRACELESS_SERVICE_ACCOUNT, 'utf8'));
const { options: vertexAi, tokenUrls } = vertexOptions(serviceAccount, httpOptions);
const vertex = new GoogleGenAI(vertexAi);

// 5, 6. generateContent and generateContentStream on Vertex AI (behaviours: ok, ok)
await generateBoth(vertex, 'vertex', 'node vertex tlp-node0000005');
assert.deepEqual(tokenUrls, [GOOGLE_TOKEN_URL], 'one access token, fetched once');
say({ step: 'vertex.token', urls: tokenUrls });

const { version } = JSON.parse(fs.readFileSync(new URL('./node_modules/@google/genai/package.json', import.meta.url)));
console.log(`google-genai-node ${version} on Node ${process.versions.node}: all answers parsed`);
