// Photo editing API: Express + multer, calling Gemini with Node's built-in fetch.
//
// POST /v1/images (multipart: `image`, `prompt`, `ageConfirmed` = "true") answers
// {"url": "/results/<id>.png"}; GET that URL once to get the generated PNG (kept in memory for
// at most a minute, dropped after the first download). GET /healthz answers 200.
//
// Gemini is called on its real, hard-coded endpoint with the key from GEMINI_API_KEY; the TLS roots
// are Node's own plus NODE_EXTRA_CA_CERTS. PORT (default 3000) and HOST (default 127.0.0.1) set
// where it listens.
//
// KNOWN BUG, kept on purpose (this app is an example the audit must catch): every upload is saved to
// ./uploads/<id>.<ext> "for support", and the working directory is served as static files
// (`express.static(process.cwd())`), so anyone can download every user's photo at /uploads/<id>.<ext>.
// The audit reports disk-persistence (photos stored) and public-exposure (served without credentials).

'use strict';

const crypto = require('node:crypto');
const fs = require('node:fs/promises');
const path = require('node:path');
const express = require('express');
const multer = require('multer');

const GEMINI_URL =
  'https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash-image:generateContent';
const MAX_UPLOAD_BYTES = 20 * 1024 * 1024;
const RESULT_TTL_MS = 60_000;
const PROVIDER_TIMEOUT_MS = 60_000;
const EXTENSIONS = { 'image/png': 'png', 'image/jpeg': 'jpg', 'image/webp': 'webp' };

const upload = multer({ storage: multer.memoryStorage(), limits: { fileSize: MAX_UPLOAD_BYTES, files: 1 } });
const results = new Map();

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function callGemini(photo, mimeType, prompt) {
  let response;
  try {
    response = await fetch(GEMINI_URL, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-goog-api-key': process.env.GEMINI_API_KEY ?? '' },
      body: JSON.stringify({
        contents: [{ role: 'user', parts: [{ text: prompt }, { inline_data: { mime_type: mimeType, data: photo.toString('base64') } }] }],
        generationConfig: { responseModalities: ['TEXT', 'IMAGE'] },
      }),
      signal: AbortSignal.timeout(PROVIDER_TIMEOUT_MS),
    });
  } catch (err) {
    console.warn(`gemini unreachable: ${err.name}`);
    if (err.name === 'TimeoutError') throw new ApiError(504, 'provider_timeout', 'the provider timed out');
    throw new ApiError(502, 'provider_error', 'the provider could not be reached');
  }
  if (response.status === 429) throw new ApiError(429, 'rate_limited', 'the provider is rate limiting; try again later');
  if (!response.ok) {
    console.warn(`gemini answered ${response.status}`);
    throw new ApiError(502, 'provider_error', `the provider failed (${response.status})`);
  }
  let body;
  try {
    body = await response.json();
  } catch {
    throw new ApiError(502, 'provider_error', 'the provider answered something unreadable');
  }
  if (body.promptFeedback?.blockReason) throw new ApiError(422, 'content_refused', 'the provider refused this request');
  const candidate = body.candidates?.[0];
  const part = candidate?.content?.parts?.find((p) => p.inlineData?.mimeType?.startsWith('image/'));
  if (part) return Buffer.from(part.inlineData.data, 'base64');
  if (/SAFETY|PROHIBITED|BLOCKLIST|RECITATION/.test(candidate?.finishReason ?? '')) {
    throw new ApiError(422, 'content_refused', 'the provider refused this request');
  }
  throw new ApiError(502, 'provider_error', 'the provider answered without an image');
}

const app = express();
app.disable('x-powered-by');
// BUG: the whole working directory (uploads included) is a public web root.
app.use(express.static(process.cwd()));

app.get('/healthz', (_req, res) => res.json({ status: 'ok' }));

app.post('/v1/images', upload.single('image'), async (req, res, next) => {
  try {
    if (req.body?.ageConfirmed !== 'true') {
      throw new ApiError(403, 'age_confirmation_required', 'confirm that you are 13 or older');
    }
    const prompt = req.body.prompt ?? '';
    if (!req.file) throw new ApiError(422, 'invalid_image', 'send a photo in the `image` field');
    if (prompt.length === 0 || prompt.length > 4000) throw new ApiError(422, 'invalid_prompt', 'the prompt must be 1 to 4000 characters');
    const ext = EXTENSIONS[req.file.mimetype];
    if (!ext) throw new ApiError(415, 'invalid_image', 'only PNG, JPEG and WebP photos are accepted');

    const id = crypto.randomUUID();
    // BUG: the upload is kept on disk, inside the directory served above.
    await fs.mkdir('uploads', { recursive: true });
    await fs.writeFile(path.join('uploads', `${id}.${ext}`), req.file.buffer);

    const image = await callGemini(req.file.buffer, req.file.mimetype, prompt);
    results.set(id, image);
    setTimeout(() => results.delete(id), RESULT_TTL_MS).unref();
    res.set('Cache-Control', 'no-store').json({ url: `/results/${id}.png` });
  } catch (err) {
    next(err);
  }
});

app.get('/results/:name', (req, res) => {
  const id = req.params.name.replace(/\.png$/, '');
  const image = results.get(id);
  if (!image) return res.status(404).json({ error: { code: 'not_found', message: 'no such result (or already fetched)' } });
  results.delete(id);
  res.set('Cache-Control', 'no-store').type('png').send(image);
});

app.use((err, _req, res, _next) => {
  if (err instanceof multer.MulterError) {
    const status = err.code === 'LIMIT_FILE_SIZE' ? 413 : 422;
    return res.status(status).json({ error: { code: status === 413 ? 'payload_too_large' : 'invalid_request', message: err.message } });
  }
  if (err instanceof ApiError) {
    if (err.status === 429) res.set('Retry-After', '30');
    return res.status(err.status).json({ error: { code: err.code, message: err.message } });
  }
  console.error(`unexpected error: ${err.name}`);
  return res.status(500).json({ error: { code: 'internal', message: 'internal error' } });
});

const port = Number(process.env.PORT ?? 3000);
const host = process.env.HOST ?? '127.0.0.1';
const server = app.listen(port, host, () => console.log(`listening on http://${host}:${port}`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
