// The worker thread that handles one request of server.js: it parses the request's bytes, cuts the
// photo's metadata out, calls Vertex AI through @google/genai and hands back the answer's bytes, then
// ends. Everything that held the photo or the generated image as a string lived in this thread's V8
// heap, which goes with the thread; buffers are overwritten once used, and so is this thread's stack
// (where Node decrypts TLS) before it ends.

'use strict';

const https = require('node:https');
const { parentPort, workerData } = require('node:worker_threads');
const { ApiError: GenAiError, GoogleGenAI } = require('@google/genai');

const MODEL = process.env.GEMINI_IMAGE_MODEL || 'gemini-2.5-flash-image';
const PROVIDER_TIMEOUT_MS = 60_000;
const REFUSED = /SAFETY|PROHIBITED|BLOCKLIST|RECITATION|SPII/;

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/**
 * The SDK's fetch (`httpOptions.fetch`), over node:https on a connection of its own per call.
 * Node's built-in fetch parses answers in a WebAssembly memory it keeps and reuses, where the last
 * answer (a generated image) stays until another overwrites it; here the answer is read into
 * buffers this app overwrites once the SDK has its own copy, and the connection, with OpenSSL's
 * buffers, is closed after each call.
 */
function httpsFetch(url, init = {}) {
  const options = {
    method: init.method ?? 'GET',
    headers: Object.fromEntries(new Headers(init.headers)),
    agent: false,
    signal: init.signal ?? undefined,
  };
  return send(String(url), options, init.body ?? undefined);
}

/** Sends `body` (the request, with the photo) and resolves to the answer as a fetch Response. */
function send(url, options, body) {
  return new Promise((resolve, reject) => {
    const req = https.request(url, options, (res) => readAnswer(res, resolve, reject));
    req.on('error', reject);
    req.end(body);
    // The callbacks above outlive the call (the SDK's timeout signal holds them): they must not
    // hold the photo too.
    body = undefined;
  });
}

/** Reads an answer into buffers overwritten once copied; its listeners go once it is read. */
function readAnswer(res, resolve, reject) {
  const chunks = [];
  const onData = (chunk) => chunks.push(chunk);
  const onError = (error) => {
    res.removeListener('data', onData);
    res.removeListener('end', onEnd);
    chunks.forEach((c) => c.fill(0));
    reject(error);
  };
  const onEnd = () => {
    res.removeListener('data', onData);
    res.removeListener('error', onError);
    const body = Buffer.concat(chunks);
    chunks.forEach((c) => c.fill(0));
    chunks.length = 0;
    const headers = new Headers();
    for (const [name, value] of Object.entries(res.headers)) {
      headers.set(name, Array.isArray(value) ? value.join(', ') : value);
    }
    // Response copies the body.
    resolve(new Response(body, { status: res.statusCode, statusText: res.statusMessage, headers }));
    body.fill(0);
  };
  res.on('data', onData);
  res.once('error', onError);
  res.once('end', onEnd);
}

const ai = new GoogleGenAI({
  vertexai: true,
  project: process.env.GOOGLE_CLOUD_PROJECT,
  location: process.env.GOOGLE_CLOUD_LOCATION,
  httpOptions: { timeout: PROVIDER_TIMEOUT_MS, fetch: httpsFetch },
});

/**
 * The photo of a `data:image/...;base64,` URL, decoded. (No regular expression runs on it: V8
 * keeps the last string a regular expression matched, for `RegExp.input`, until the next match.)
 */
function decodePhoto(photo) {
  const comma = typeof photo === 'string' ? photo.indexOf(',') : -1;
  const head = comma > 0 ? photo.slice(0, Math.min(comma, 64)) : '';
  if (!head.startsWith('data:image/') || !head.endsWith(';base64')) {
    throw new ApiError(415, 'invalid_image', 'photo must be a data:image/...;base64 URL');
  }
  return Buffer.from(photo.slice(comma + 1), 'base64');
}

/** PNG chunks kept: the image itself and how to show it; text, EXIF and time chunks are not. */
const PNG_KEPT = new Set(['IHDR', 'PLTE', 'IDAT', 'IEND', 'tRNS', 'gAMA', 'cHRM', 'sRGB', 'iCCP', 'sBIT', 'pHYs', 'bKGD']);
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** The byte ranges of `raw` that make the photo without its metadata, and its media type. */
function pixelsOnly(raw) {
  const invalid = () => new ApiError(422, 'invalid_image', 'the photo could not be read');
  if (raw.length >= 8 && raw.subarray(0, 8).equals(PNG_SIGNATURE)) {
    const keep = [[0, 8]];
    let at = 8;
    let ended = false;
    while (!ended) {
      if (at + 12 > raw.length) throw invalid();
      const length = raw.readUInt32BE(at);
      const type = raw.toString('latin1', at + 4, at + 8);
      const end = at + 12 + length;
      if (end > raw.length) throw invalid();
      if (PNG_KEPT.has(type)) keep.push([at, end]);
      ended = type === 'IEND';
      at = end;
    }
    return { mimeType: 'image/png', keep };
  }
  if (raw.length > 4 && raw[0] === 0xff && raw[1] === 0xd8) {
    const keep = [[0, 2]];
    let at = 2;
    for (;;) {
      if (at + 4 > raw.length || raw[at] !== 0xff) throw invalid();
      const marker = raw[at + 1];
      const end = at + 2 + raw.readUInt16BE(at + 2);
      if (end > raw.length) throw invalid();
      // APP1..APP15 (EXIF, XMP, ...) and COM carry metadata; APP0 (JFIF) and the coding segments do not.
      const metadata = (marker >= 0xe1 && marker <= 0xef) || marker === 0xfe;
      if (marker === 0xda) {
        // Start of scan: the entropy-coded pixels follow, to the end of the image.
        keep.push([at, raw.length]);
        return { mimeType: 'image/jpeg', keep };
      }
      if (!metadata) keep.push([at, end]);
      at = end;
    }
  }
  throw new ApiError(415, 'invalid_image', 'only PNG and JPEG photos are accepted');
}

/** The photo's base64, without its metadata; every buffer on the way is overwritten. */
function cleanPhoto(photo) {
  const raw = decodePhoto(photo);
  try {
    const { mimeType, keep } = pixelsOnly(raw);
    const clean = Buffer.alloc(keep.reduce((n, [from, to]) => n + to - from, 0));
    let at = 0;
    for (const [from, to] of keep) at += raw.copy(clean, at, from, to);
    const data = clean.toString('base64');
    clean.fill(0);
    return { mimeType, data };
  } finally {
    raw.fill(0);
  }
}

async function edit(body) {
  if (body?.over13 !== true) throw new ApiError(403, 'age_confirmation_required', 'confirm that you are 13 or older');
  const instruction = body.instruction;
  if (typeof instruction !== 'string' || instruction.length < 1 || instruction.length > 4000) {
    throw new ApiError(422, 'invalid_instruction', 'instruction must be 1 to 4000 characters');
  }
  const inlineData = cleanPhoto(body.photo);
  let response;
  try {
    response = await ai.models.generateContent({
      model: MODEL,
      contents: [{ role: 'user', parts: [{ inlineData }, { text: instruction }] }],
      config: { responseModalities: ['TEXT', 'IMAGE'] },
    });
  } catch (err) {
    // Only the status or the error's class is logged, never its message, which may quote the request.
    if (err instanceof GenAiError) {
      console.warn(`vertex ai answered ${err.status}`);
      if (err.status === 429) throw new ApiError(429, 'rate_limited', 'the provider is rate limiting; try again later');
      throw new ApiError(502, 'provider_error', `the provider failed (${err.status})`);
    }
    console.warn(`vertex ai unreachable: ${err?.name}`);
    if (/Timeout|Abort/.test(err?.name ?? '')) throw new ApiError(504, 'provider_timeout', 'the provider timed out');
    throw new ApiError(502, 'provider_error', 'the provider could not be reached');
  }
  if (response.promptFeedback?.blockReason) throw new ApiError(422, 'content_refused', 'the provider refused this request');
  const candidate = response.candidates?.[0];
  const image = candidate?.content?.parts?.find((p) => p.inlineData?.mimeType?.startsWith('image/'));
  if (image?.inlineData?.data) return image.inlineData.data;
  if (REFUSED.test(candidate?.finishReason ?? '')) throw new ApiError(422, 'content_refused', 'the provider refused this request');
  throw new ApiError(502, 'provider_error', 'the provider answered without an image');
}

/** `value` as JSON bytes in an ArrayBuffer of their own, to be handed to the main thread. */
function encode(value) {
  const text = Buffer.from(JSON.stringify(value));
  const bytes = new Uint8Array(new ArrayBuffer(text.length));
  bytes.set(text);
  text.fill(0);
  return bytes.buffer;
}

const STACK_FRAMES = 4000;

/** Recurses `n` deep, each frame writing its slots (about 100 KiB of stack in all). */
function overwriteStack(n) {
  const a = n * 3;
  const b = a + 1;
  const c = b + 2;
  const d = c + 3;
  return n > 0 ? overwriteStack(n - 1) + a + b + c + d : 0;
}

/** The answer to the request in `workerData.request` (its body's bytes, overwritten once read). */
async function answer() {
  const raw = new Uint8Array(workerData.request);
  let body;
  try {
    body = JSON.parse(Buffer.from(raw.buffer).toString('utf8'));
  } catch {
    return { status: 400, value: { error: { code: 'bad_request', message: 'the body must be JSON' } } };
  } finally {
    raw.fill(0);
  }
  try {
    return { status: 200, value: { image: await edit(body) } };
  } catch (err) {
    const e = err instanceof ApiError ? err : new ApiError(500, 'internal', 'internal error');
    return { status: e.status, value: { error: { code: e.code, message: e.message } } };
  }
}

answer().then(({ status, value }) => {
  const body = encode(value);
  parentPort.postMessage({ status, body }, [body]);
  overwriteStack(STACK_FRAMES);
  process.exit(0);
});
