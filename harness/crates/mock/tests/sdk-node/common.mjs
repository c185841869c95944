// What every SDK conformance script here shares: printing a fact for the Rust side, and checking
// that an image the SDK handed back is a PNG.

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
