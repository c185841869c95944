// A photo editing job API on Fastify and the official openai SDK, the shape of many real ones:
// POST /v1/jobs takes the photo and answers 202 with the job's id and URL at once; the client
// polls GET /v1/jobs/:id (or listens to GET /v1/jobs/:id/events, server-sent events) until the
// job has succeeded or failed, then fetches GET /v1/jobs/:id/result once, after which the job is
// gone. There is no route a GET may ask for before a job exists (no health route).
//
// Planted bug: when a job ends, the app logs a "job summary" with the user's prompt in it.
'use strict';

const crypto = require('node:crypto');
const Fastify = require('fastify');
const OpenAI = require('openai');
const { toFile } = require('openai');

const port = Number(process.env.PORT || 8080);
const baseURL = process.env.OPENAI_BASE_URL;
if (!baseURL || !baseURL.startsWith('https://')) {
  // Never send a photo in the clear: refuse to start on a plaintext provider URL.
  console.error(`refusing to start: OPENAI_BASE_URL must be an https:// URL, got ${JSON.stringify(baseURL)}`);
  process.exit(2);
}
const openai = new OpenAI({ baseURL, apiKey: process.env.OPENAI_API_KEY, maxRetries: 1, timeout: 20_000 });

const jobs = new Map(); // id -> { status, result, listeners }
const app = Fastify({ logger: false });
app.register(require('@fastify/multipart'), { limits: { fileSize: 20 * 1024 * 1024, files: 1 } });

function setStatus(job, status) {
  job.status = status;
  for (const send of job.listeners) send(status);
}

async function run(id, job, photo, prompt) {
  try {
    const edit = await openai.images.edit({
      model: 'gpt-image-2.5-sunburst',
      image: await toFile(photo, 'photo.png', { type: 'image/png' }),
      prompt,
    });
    job.result = Buffer.from(edit.data[0].b64_json, 'base64');
    setStatus(job, 'succeeded');
  } catch (err) {
    console.error(`job ${id} failed: ${err.status || ''} ${err.name}`);
    setStatus(job, 'failed');
  } finally {
    photo.fill(0);
    // BUG (planted): the job summary carries the user's prompt into the log.
    console.log(JSON.stringify({ event: 'job-finished', job: id, status: job.status, prompt }));
  }
}

app.post('/v1/jobs', async (request, reply) => {
  let photo = null;
  const fields = {};
  for await (const part of request.parts()) {
    if (part.type === 'file') {
      photo = await part.toBuffer();
    } else {
      fields[part.fieldname] = part.value;
    }
  }
  if (fields.ageConfirmed !== 'true') {
    if (photo) photo.fill(0);
    return reply.code(403).send({ error: 'age confirmation required' });
  }
  if (!photo || !fields.prompt) {
    return reply.code(400).send({ error: 'a photo and a prompt are required' });
  }
  const id = crypto.randomUUID();
  const job = { status: 'running', result: null, listeners: new Set() };
  jobs.set(id, job);
  run(id, job, photo, fields.prompt);
  return reply.code(202).header('location', `/v1/jobs/${id}`).send({ jobId: id, status: job.status });
});

app.get('/v1/jobs/:id', async (request, reply) => {
  const job = jobs.get(request.params.id);
  if (!job) return reply.code(404).send({ error: 'no such job' });
  return { status: job.status };
});

app.get('/v1/jobs/:id/events', (request, reply) => {
  const job = jobs.get(request.params.id);
  if (!job) return reply.code(404).send({ error: 'no such job' });
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' });
  const send = (status) => {
    res.write(`event: status\ndata: ${JSON.stringify({ status })}\n\n`);
    if (status !== 'running') {
      job.listeners.delete(send);
      res.end();
    }
  };
  job.listeners.add(send);
  request.raw.on('close', () => job.listeners.delete(send));
  send(job.status);
});

app.get('/v1/jobs/:id/result', async (request, reply) => {
  const job = jobs.get(request.params.id);
  if (!job || job.status !== 'succeeded') return reply.code(404).send({ error: 'no result' });
  // One fetch, then the job and its image are gone.
  jobs.delete(request.params.id);
  const image = job.result;
  job.result = null;
  reply.code(200).header('content-type', 'image/png').header('cache-control', 'no-store');
  return image;
});

app.listen({ host: '127.0.0.1', port }).catch((err) => {
  console.error(err);
  process.exit(1);
});
