// Photo editing API: Express on the official @google/genai SDK, deployed on Vertex AI.
//
// POST /api/edit takes JSON {"photo": "data:image/png|jpeg;base64,...", "instruction": "...",
// "over13": true} and answers {"image": "<base64 PNG>"}; GET /healthz answers 200.
//
// Vertex AI (edit.js): the SDK is made with `vertexai: true`, the project and region from
// GOOGLE_CLOUD_PROJECT and GOOGLE_CLOUD_LOCATION, and signs in with Application Default Credentials
// (google-auth-library reads the service-account JSON GOOGLE_APPLICATION_CREDENTIALS names).
// GEMINI_IMAGE_MODEL (default gemini-2.5-flash-image), PORT (default 3000) and HOST (default
// 127.0.0.1) are optional.
//
// Privacy measures in the code: no age confirmation, no processing (403 before the photo is even
// decoded); the photo's metadata (PNG text and EXIF chunks, JPEG APPn and comment segments: EXIF,
// GPS, XMP) is cut out before it reaches Gemini, its pixels left as they are; nothing is written to
// disk or logged. And nothing stays in memory: this thread handles the request's bytes only, in
// buffers it overwrites once used, and each request is processed in a worker thread of its own
// (edit.js), whose V8 heap, where the photo and the generated image were strings, goes with it.
// The garbage collector runs after each answer (`node --expose-gc server.js`), so that the buffers
// outside V8's heap are freed, and glibc's malloc.perturb tunable overwrites what is freed (see
// traceless.toml).

'use strict';

const path = require('node:path');
const { Worker } = require('node:worker_threads');
const express = require('express');

const MAX_BODY_BYTES = 28 * 1024 * 1024;
const EDIT = path.join(__dirname, 'edit.js');

if (typeof global.gc !== 'function') {
  console.error('run with `node --expose-gc server.js`: freed photos must not stay in memory');
  process.exit(1);
}

/** An error answer's bytes, `{"error":{"code","message"}}`. */
function failure(code, message) {
  return Buffer.from(JSON.stringify({ error: { code, message } }));
}

/**
 * The request's body, copied into an ArrayBuffer of its own (to hand to the worker) from buffers
 * overwritten once read. The listeners go once it is read: `req` outlives the request on a
 * kept-alive connection, and through them it would hold the body.
 */
function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    const finish = (error) => {
      req.removeListener('data', onData);
      req.removeListener('end', onEnd);
      req.removeListener('error', onError);
      const body = new Uint8Array(new ArrayBuffer(error ? 0 : size));
      let at = 0;
      for (const chunk of chunks) {
        if (!error) body.set(chunk, at);
        at += chunk.length;
        chunk.fill(0);
      }
      chunks.length = 0;
      if (error) reject(error);
      else resolve(body.buffer);
    };
    const onData = (chunk) => {
      size += chunk.length;
      chunks.push(chunk);
      if (size > MAX_BODY_BYTES) {
        finish({ status: 413, body: failure('payload_too_large', 'the request is too large') });
        req.destroy();
      }
    };
    const onEnd = () => finish(null);
    const onError = () => finish({ status: 400, body: failure('bad_request', 'the request could not be read') });
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  });
}

/** Runs edit.js on the request's bytes (handed over, not copied); resolves to its answer. */
function editInWorker(request) {
  return new Promise((resolve) => {
    const worker = new Worker(EDIT, { workerData: { request }, transferList: [request] });
    let answer = { status: 500, body: failure('internal', 'internal error') };
    worker.once('message', ({ status, body }) => {
      answer = { status, body: Buffer.from(body) };
    });
    worker.once('error', () => {});
    worker.once('exit', () => resolve(answer));
  });
}

/**
 * Collects the garbage twice (the second collection first finishes sweeping what the first one
 * found), which frees the buffers outside V8's heap that held the request, and glibc overwrites them.
 */
function collect() {
  global.gc();
  global.gc();
}

const app = express();
app.disable('x-powered-by');
app.set('etag', false);

app.get('/healthz', (_req, res) => res.json({ status: 'ok' }));

/** How long after an answer the buffers still referenced when it was written are collected. */
const SECOND_COLLECTION_MS = 100;

app.post('/api/edit', async (req, res) => {
  // Once the answer is out, the request's buffers are garbage: collect them now, and once more a
  // moment later for those the connection still held then (its last read).
  res.on('finish', () => {
    setImmediate(collect);
    setTimeout(collect, SECOND_COLLECTION_MS).unref();
  });
  let answer;
  try {
    answer = await editInWorker(await readBody(req));
  } catch (error) {
    answer = error;
  }
  const { status, body } = answer;
  res.on('finish', () => body.fill(0));
  res.set('Cache-Control', 'no-store');
  if (status === 429) res.set('Retry-After', '30');
  res.status(status).type('application/json').end(body);
});

const port = Number(process.env.PORT || 3000);
const server = app.listen(port, process.env.HOST || '127.0.0.1', (err) => {
  if (err) {
    console.error(`cannot listen on ${port}: ${err.code}`);
    process.exit(1);
  }
});
// Node's HTTP server otherwise reads every connection into one buffer it keeps and reuses, where
// the last bytes read (a photo) stay until a later read overwrites them. With a 'data' listener on
// the socket it hands each read to JavaScript in a buffer of its own instead, freed with the request.
server.on('connection', (socket) => socket.on('data', () => {}));
