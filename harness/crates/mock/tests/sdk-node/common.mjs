// What every SDK conformance script here shares: printing a fact for the Rust side, checking that
// an image the SDK handed back is a PNG, and the @google/genai options for Vertex AI with the
// mocks' service account.

import assert from 'node:assert/strict';

const PNG_MAGIC = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** Prints one fact, a JSON line the Rust test reads. */
export function say(fact) {
  console.log(JSON.stringify(fact));
}

/** Decodes a base64 image the SDK handed back and checks it is a PNG; returns its bytes. */
export function pngFrom(b64, what) {
  assert.equal(typeof b64, 'string', `${what}: no base64 string`);
  const bytes = Buffer.from(b64, 'base64');
  assert.ok(bytes.length > PNG_MAGIC.length, `${what}: ${bytes.length} bytes`);
  assert.ok(bytes.subarray(0, 8).equals(PNG_MAGIC), `${what}: not a PNG (starts ${bytes.subarray(0, 8).toString('hex')})`);
  return bytes;
}

/** Where google-auth-library (Node) posts a service account's signed assertion, whatever token_uri says. */
export const GOOGLE_TOKEN_URL = 'https://oauth2.googleapis.com/token';

/**
 * `GoogleGenAI` options for Vertex AI (project and location us-central1) with `serviceAccount`, the
 * mocks' service-account JSON, read back as the SDK's users read it; and the token URLs
 * google-auth-library asked for. google-auth-library (Node) ignores token_uri and always posts the
 * signed assertion to Google's token endpoint; its transporter's fetch is the documented hook to
 * send that one URL to the mock. Any other URL it is asked for is refused, so nothing leaves for
 * the network.
 */
export function vertexOptions(serviceAccount, httpOptions) {
  const tokenUrls = [];
  async function tokenFetch(url, init) {
    const wanted = String(url);
    tokenUrls.push(wanted);
    assert.equal(wanted, GOOGLE_TOKEN_URL, `google-auth-library asked for ${wanted}`);
    return fetch(serviceAccount.token_uri, init);
  }
  const options = {
    vertexai: true,
    project: serviceAccount.project_id,
    location: 'us-central1',
    googleAuthOptions: {
      credentials: serviceAccount,
      clientOptions: { transporterOptions: { fetchImplementation: tokenFetch } },
    },
    httpOptions,
  };
  return { options, tokenUrls };
}

// Polls a background interaction with `get` until it is no longer in_progress (at most ten gets:
// the mock needs two); returns the last answer and every status seen, the first one included.
export async function pollWhileRunning(started, get) {
  const statuses = [started.status];
  let polled = started;
  for (let i = 0; i < 10 && polled.status === 'in_progress'; i++) {
    polled = await get(started.id);
    statuses.push(polled.status);
  }
  return { polled, statuses };
}
