// deflate: the Node ws client against the echo handler, permessage-deflate on and off.
'use strict';

const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { describe, it, before, after } = require('node:test');
const { startGateway, connect, roundTrip, closeNormally } = require('./harness');

const SIZES = [0, 1, 125, 126, 1023, 1024, 65535, 65536, 300 * 1024, 1024 * 1024];

const CONFIG = `
listeners:
  - address: 127.0.0.1:0
workers: 2
limits: { max_message_size: 2MiB }
log: { level: info, format: text }
routes:
  - { name: plain, path: /echo, handler: echo }
  - { name: zipped, path: /z, handler: echo, deflate: on }
  - { name: zipped-all, path: /z0, handler: echo, deflate: on, deflate_threshold: 0 }
`;

// Text that compresses, with multi-byte characters, of exactly n bytes.
function text(n) {
  let s = 'permessage-deflate ünïcödé '.repeat(Math.ceil(n / 20) + 1);
  s = Buffer.from(s).subarray(0, n).toString('utf8').replace(/\uFFFD/g, '');
  while (Buffer.byteLength(s) < n) s += 'z';
  return s;
}

// The client's options: compression on (with each kind of context), or off.
const CLIENTS = {
  'deflate with context takeover': { perMessageDeflate: { threshold: 0 } },
  'deflate without context takeover': {
    perMessageDeflate: { threshold: 0, serverNoContextTakeover: true, clientNoContextTakeover: true },
  },
  'deflate with small windows': {
    perMessageDeflate: { threshold: 0, serverMaxWindowBits: 9, clientMaxWindowBits: 9 },
  },
  'no deflate': { perMessageDeflate: false },
};

describe('permessage-deflate with the ws client', () => {
  let gw;
  let base;
  before(async () => {
    gw = await startGateway(CONFIG);
    base = `ws://127.0.0.1:${gw.port}`;
  });
  after(async () => {
    if (gw) await gw.stop();
  });

  for (const [name, options] of Object.entries(CLIENTS)) {
    for (const path of ['/z', '/z0', '/echo']) {
      it(`${name} on ${path}: text and binary of every size`, async () => {
        const ws = await connect(`${base}${path}`, options);
        const offered = options.perMessageDeflate !== false;
        const negotiated = ws.extensions;
        if (offered && path !== '/echo') assert.match(negotiated, /^permessage-deflate/);
        else assert.equal(negotiated, '');
        for (const n of SIZES) {
          const t = text(n);
          let r = await roundTrip(ws, t);
          assert.equal(r.isBinary, false);
          assert.equal(r.msg.toString(), t, `text of ${n} B`);
          const b = n > 70000 ? Buffer.concat([crypto.randomBytes(n >> 1), Buffer.alloc(n - (n >> 1), 7)]) : crypto.randomBytes(n);
          r = await roundTrip(ws, b);
          assert.equal(r.isBinary, true);
          assert.ok(r.msg.equals(b), `binary of ${n} B`);
        }
        assert.equal(await closeNormally(ws), 1000);
      });
    }
  }

  it('a fragmented compressed message', async () => {
    const ws = await connect(`${base}/z`, CLIENTS['deflate with context takeover']);
    const parts = [text(1000), text(70000), text(3)];
    const got = new Promise((resolve) => ws.once('message', (m) => resolve(m.toString())));
    ws.send(parts[0], { fin: false });
    ws.send(parts[1], { fin: false });
    ws.send(parts[2], { fin: true });
    assert.equal(await got, parts.join(''));
    assert.equal(await closeNormally(ws), 1000);
  });

  it('a message that inflates past max_message_size is closed with 1009', async () => {
    const ws = await connect(`${base}/z`, CLIENTS['deflate with context takeover']);
    const closed = new Promise((resolve) => ws.once('close', (code) => resolve(code)));
    ws.send(Buffer.alloc(3 * 1024 * 1024));
    assert.equal(await closed, 1009);
  });
});
