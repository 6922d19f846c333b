// echo: the in-process echo handler driven by the Node ws client.
'use strict';

const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { describe, it, before, after } = require('node:test');
const { startGateway, connect, roundTrip, closeNormally } = require('./harness');

const SIZES = [0, 125, 126, 64 * 1024, 1024 * 1024];
const MAX_MESSAGE = 2 * 1024 * 1024;

const CONFIG = `
listeners:
  - address: 127.0.0.1:0
workers: 2
limits: { max_connections: 1000, max_message_size: 2MiB }
log: { level: info, format: text }
routes:
  - { name: echo, path: /echo, handler: echo }
`;

// Exactly n bytes of UTF-8 text with multi-byte characters when n allows.
function utf8Text(n) {
  const out = Buffer.from('ws-é-'.repeat(Math.ceil(n / 5) + 1)).subarray(0, Math.max(n - 2, 0));
  let s = out.toString('utf8').replace(/\uFFFD/g, '');
  while (Buffer.byteLength(s) < n) s += 'z';
  return s;
}

describe('echo', () => {
  let gw;
  let url;
  before(async () => {
    gw = await startGateway(CONFIG);
    url = `ws://127.0.0.1:${gw.port}/echo`;
  });
  after(async () => {
    if (gw) await gw.stop();
  });

  it('echoes text messages of every size', async () => {
    const ws = await connect(url);
    for (const n of SIZES) {
      const text = utf8Text(n);
      assert.equal(Buffer.byteLength(text), n);
      const { msg, isBinary } = await roundTrip(ws, text);
      assert.equal(isBinary, false, `text of ${n} B came back binary`);
      assert.equal(msg.toString('utf8'), text, `text of ${n} B`);
    }
    assert.equal(await closeNormally(ws), 1000);
  });

  it('echoes binary messages of every size', async () => {
    const ws = await connect(url);
    for (const n of SIZES) {
      const data = crypto.randomBytes(n);
      const { msg, isBinary } = await roundTrip(ws, data);
      assert.equal(isBinary, true, `binary of ${n} B came back as text`);
      assert.ok(Buffer.compare(msg, data) === 0, `binary of ${n} B`);
    }
    assert.equal(await closeNormally(ws), 1000);
  });

  it('answers a ping with a pong carrying its payload', async () => {
    const ws = await connect(url);
    const pong = new Promise((resolve) => ws.once('pong', resolve));
    ws.ping(Buffer.from('node-ping'));
    assert.equal((await pong).toString(), 'node-ping');
    assert.equal(await closeNormally(ws), 1000);
  });

  it('completes the close handshake with 1000', async () => {
    const ws = await connect(url);
    await roundTrip(ws, 'bye');
    assert.equal(await closeNormally(ws), 1000);
  });

  it('closes with 1009 on a message over max_message_size', async () => {
    const ws = await connect(url);
    const closed = new Promise((resolve) => ws.once('close', (code) => resolve(code)));
    ws.on('error', () => {});
    ws.send(crypto.randomBytes(MAX_MESSAGE + 1));
    assert.equal(await closed, 1009);
  });

  it('echoes when the client offers permessage-deflate', async () => {
    const ws = await connect(url, { perMessageDeflate: true });
    const { msg } = await roundTrip(ws, 'offered deflate');
    assert.equal(msg.toString(), 'offered deflate');
    assert.equal(await closeNormally(ws), 1000);
  });
});
