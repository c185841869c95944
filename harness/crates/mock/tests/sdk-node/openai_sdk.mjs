// Drives the OpenAI mock with the official `openai` npm package; exits non-zero if any answer is
// not parsed as expected. Each step prints one JSON line of what the SDK parsed, so the Rust side
// can compare it with what the mock recorded and answered.
//
// Environment: TRACELESS_OPENAI_URL (origin), TRACELESS_OPENAI_KEY, TRACELESS_INPUT_PNG (a file),
// and NODE_EXTRA_CA_CERTS naming the mock's CA, the only way Node's fetch trusts it.

import assert from 'node:assert/strict';
import fs from 'node:fs';

import OpenAI, { AzureOpenAI, toFile } from 'openai';
import { VERSION } from 'openai/version';

import { pngFrom, say } from './common.mjs';

const base = process.env.TRACELESS_OPENAI_URL;
const key = process.env.TRACELESS_OPENAI_KEY;
const inputPath = process.env.TRACELESS_INPUT_PNG;
assert.ok(base && key && inputPath, 'TRACELESS_OPENAI_URL, TRACELESS_OPENAI_KEY and TRACELESS_INPUT_PNG must be set');
assert.ok(process.env.NODE_EXTRA_CA_CERTS, 'NODE_EXTRA_CA_CERTS must name the mock CA');

/** Runs `call`, which must fail with an instance of `errorClass`; returns the error. */
async function expectError(call, errorClass) {
  try {
    await call();
  } catch (e) {
    assert.ok(e instanceof errorClass, `expected ${errorClass.name}, got ${e?.constructor?.name}: ${e}`);
    return e;
  }
  assert.fail(`expected ${errorClass.name}, but the call succeeded`);
}

const client = new OpenAI({ apiKey: key, baseURL: `${base}/v1`, maxRetries: 0, timeout: 60_000 });

// 0. models.list (not a generation: no behaviour is consumed)
const ids = [];
for await (const model of client.models.list()) {
  assert.equal(model.object, 'model');
  ids.push(model.id);
}
assert.ok(ids.includes('gpt-image-2.5-sunburst'), `gpt-image-1 not listed: ${ids}`);
say({ step: 'models.list', ids });

// 1. images.edit with an image file (behaviour: ok)
const edit = await client.images
  .edit({
    model: 'gpt-image-2.5-sunburst',
    image: await toFile(fs.createReadStream(inputPath), 'face.png', { type: 'image/png' }),
    prompt: 'node edit tlp-node0000001',
    size: '1024x1024',
    quality: 'low',
  })
  .withResponse();
assert.equal(edit.data.data.length, 1);
assert.equal(edit.data.data[0].url, undefined, 'GPT image models never answer a url');
say({
  step: 'images.edit',
  image: pngFrom(edit.data.data[0].b64_json, 'images.edit b64_json').toString('base64'),
  request_id: edit.request_id,
  size: edit.data.size,
  quality: edit.data.quality,
  output_tokens: edit.data.usage?.output_tokens,
});

// 2. images.generate (behaviour: ok)
const gen = await client.images
  .generate({ model: 'gpt-image-2.5-sunburst', prompt: 'node generate tlp-node0000002', size: '1536x1024', quality: 'medium' })
  .withResponse();
assert.equal(gen.data.data.length, 1);
say({
  step: 'images.generate',
  image: pngFrom(gen.data.data[0].b64_json, 'images.generate b64_json').toString('base64'),
  request_id: gen.request_id,
  size: gen.data.size,
  quality: gen.data.quality,
  output_tokens: gen.data.usage?.output_tokens,
});

// 3. responses.create with the image_generation tool and an input image (behaviour: ok)
const dataUrl = `data:image/png;base64,${fs.readFileSync(inputPath).toString('base64')}`;
/** A Responses input: one user message of `text` and the input image. */
function withInputImage(text) {
  return [
    {
      role: 'user',
      content: [
        { type: 'input_text', text },
        { type: 'input_image', image_url: dataUrl, detail: 'auto' },
      ],
    },
  ];
}
const resp = await client.responses.create({
  model: 'gpt-5',
  store: false,
  input: withInputImage('node responses tlp-node0000003'),
  tools: [{ type: 'image_generation', quality: 'low' }],
  tool_choice: { type: 'image_generation' },
});
const calls = resp.output.filter((item) => item.type === 'image_generation_call');
assert.equal(calls.length, 1, JSON.stringify(resp.output.map((i) => i.type)));
assert.equal(calls[0].status, 'completed');
assert.equal(resp.store, false);
assert.ok(resp.output_text, 'the message item was not parsed into output_text');
say({
  step: 'responses.create',
  image: pngFrom(calls[0].result, 'image_generation_call.result').toString('base64'),
  id: resp.id,
  status: resp.status,
  store: resp.store,
  output_text: resp.output_text,
});

// 4. a 429 (behaviour: 429:1): RateLimitError with the status, code and retry-after
const limited = await expectError(
  async () =>
    client.images.edit({
      model: 'gpt-image-2.5-sunburst',
      image: await toFile(fs.readFileSync(inputPath), 'face.png', { type: 'image/png' }),
      prompt: 'node limited',
    }),
  OpenAI.RateLimitError,
);
say({
  step: 'rate-limited',
  class: limited.constructor.name,
  status: limited.status,
  code: limited.code,
  type: limited.type,
  retry_after: limited.headers?.get('retry-after'),
  request_id: limited.requestID,
});

// 5. a safety block (behaviour: safety-block): 400 moderation_blocked
const blocked = await expectError(
  () => client.images.generate({ model: 'gpt-image-2.5-sunburst', prompt: 'node blocked' }),
  OpenAI.BadRequestError,
);
say({
  step: 'safety-block',
  class: blocked.constructor.name,
  status: blocked.status,
  code: blocked.code,
  type: blocked.type,
  message: blocked.error?.message,
  request_id: blocked.requestID,
});

// 6. a bare read stream goes out as application/octet-stream, which the real API refuses
// (openai/openai-node#1468); the mock must refuse it the same way (behaviour: ok).
const untyped = await expectError(
  () =>
    client.images.edit({ model: 'gpt-image-2.5-sunburst', image: fs.createReadStream(inputPath), prompt: 'node untyped' }),
  OpenAI.BadRequestError,
);
say({
  step: 'untyped-file',
  class: untyped.constructor.name,
  status: untyped.status,
  code: untyped.code,
  param: untyped.param,
  message: untyped.error?.message,
});

// 7. Azure OpenAI: the deployment in the path, api-version in the query, the api-key header
// (behaviour: ok)
const azure = new AzureOpenAI({
  apiKey: key,
  apiVersion: '2025-04-01-preview',
  endpoint: base,
  maxRetries: 0,
  timeout: 60_000,
});
const azureEdit = await azure.images.edit({
  model: 'team-images',
  image: await toFile(fs.readFileSync(inputPath), 'face.png', { type: 'image/png' }),
  prompt: 'node azure tlp-node0000006',
});
assert.equal(azureEdit.data.length, 1);
say({ step: 'azure.images.edit', image: pngFrom(azureEdit.data[0].b64_json, 'azure images.edit b64_json').toString('base64') });

// 8. images.generate streamed with two partial images, then the final one (behaviour: ok)
const events = [];
const stream = await client.images.generate({
  model: 'gpt-image-2.5-flare',
  prompt: 'node streamed tlp-node0000007',
  stream: true,
  partial_images: 2,
  size: '1024x1024',
});
for await (const event of stream) {
  events.push(event);
}
assert.deepEqual(
  events.map((e) => e.type),
  ['image_generation.partial_image', 'image_generation.partial_image', 'image_generation.completed'],
);
const partials = events.slice(0, 2);
assert.deepEqual(
  partials.map((e) => e.partial_image_index),
  [0, 1],
);
partials.forEach((e, i) => pngFrom(e.b64_json, `partial image ${i}`));
const completed = events[2];
say({
  step: 'images.generate.stream',
  types: events.map((e) => e.type),
  image: pngFrom(completed.b64_json, 'image_generation.completed b64_json').toString('base64'),
  size: completed.size,
  output_tokens: completed.usage?.output_tokens,
});

// 9. responses.create streamed, the image_generation tool sending two partial images (behaviour: ok)
const respEvents = [];
const respStream = await client.responses.create({
  model: 'gpt-5',
  store: false,
  stream: true,
  input: withInputImage('node responses stream tlp-node0000008'),
  tools: [{ type: 'image_generation', partial_images: 2 }],
});
for await (const event of respStream) {
  respEvents.push(event);
}
const seqs = respEvents.map((e) => e.sequence_number);
assert.deepEqual(seqs, seqs.map((_, i) => seqs[0] + i), 'sequence numbers run on by one');
const respPartials = respEvents.filter((e) => e.type === 'response.image_generation_call.partial_image');
assert.equal(respPartials.length, 2, JSON.stringify(respEvents.map((e) => e.type)));
const done = respEvents.at(-1);
assert.equal(done.type, 'response.completed');
const doneCalls = done.response.output.filter((item) => item.type === 'image_generation_call');
assert.equal(doneCalls.length, 1, JSON.stringify(done.response.output.map((i) => i.type)));
say({
  step: 'responses.stream',
  partials: respPartials.map((e) => pngFrom(e.partial_image_b64, 'partial_image_b64').toString('base64')),
  image: pngFrom(doneCalls[0].result, 'response.completed image_generation_call.result').toString('base64'),
  status: done.response.status,
});

console.log(`openai-node ${VERSION}: all answers parsed`);
