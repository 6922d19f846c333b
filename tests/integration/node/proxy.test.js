// proxy: two ws WebSocketServers as upstreams behind /foo and /bar of one
// gateway port, driven by the ws client; permessage-deflate and subprotocols
// are negotiated end to end between client and upstream.
'use strict';

const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { describe, it, before, after } = require('node:test');
const { WebSocket, startGateway, roundTrip, closeNormally, stopServer } = require('./harness');

const CONFIG = (portA, portB) => `
listeners:
  - address: 127.0.0.1:0
workers: 2
limits: { max_connections: 1000, max_message_size: 2MiB, proxy_buffer: 64KiB }
log: { level: info, format: text }
routes:
  - { name: foo, path: /foo, upstream: "ws://127.0.0.1:${portA}" }
  - name: bar
    path_prefix: /bar/
    strip_prefix: true
    upstream: "ws://127.0.0.1:${portB}/base"
`;

// A ws server that echoes and answers "@@whoami" with what it saw of the
// upgrade; it selects chat.v1 when offered and accepts permessage-deflate.
function startUpstream(name) {
  return new Promise((resolve, reject) => {
    const wss = new WebSocket.Server({
      host: '127.0.0.1',
      port: 0,
      perMessageDeflate: true,
      handleProtocols: (protocols) => (protocols.has('chat.v1') ? 'chat.v1' : false),
    });
    wss.seen = [];
    wss.on('connection', (ws, req) => {
      const rec = {
        name,
        path: req.url,
        headers: req.headers,
        protocol: ws.protocol,
        extensions: ws.extensions,
      };
      wss.seen.push(rec);
      ws.on('message', (data, isBinary) => {
        if (!isBinary && data.length < 64 && data.toString() === '@@whoami') {
          ws.send(JSON.stringify(rec));
          return;
        }
        ws.send(data, { binary: isBinary });
      });
      ws.on('error', () => {});
    });
    wss.once('listening', () => resolve(wss));
    wss.once('error', reject);
  });
}

// Opens a client with optional subprotocols; resolves with the open socket
// and the TCP socket under it (to count the bytes that crossed the wire).
function open(url, protocols = [], options = {}) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols, {
      perMessageDeflate: false,
      handshakeTimeout: 30000,
      ...options,
    });
    let tcp = null;
    ws.once('upgrade', (res) => {
      tcp = res.socket;
    });
    ws.once('open', () => resolve({ ws, tcp }));
    ws.once('error', reject);
    ws.once('unexpected-response', (req, res) => {
      req.destroy();
      reject(new Error(`upgrade to ${url} refused with ${res.statusCode}`));
    });
  });
}

async function whoami(ws) {
  const { msg, isBinary } = await roundTrip(ws, '@@whoami');
  assert.equal(isBinary, false);
  return JSON.parse(msg.toString());
}

describe('proxy', () => {
  let gw;
  let upA;
  let upB;
  let base;
  before(async () => {
    upA = await startUpstream('A');
    upB = await startUpstream('B');
    gw = await startGateway(CONFIG(upA.address().port, upB.address().port));
    base = `ws://127.0.0.1:${gw.port}`;
  });
  after(async () => {
    try {
      if (gw) await gw.stop();
    } finally {
      await stopServer(upA);
      await stopServer(upB);
    }
  });

  it('routes /foo and /bar of one port to their own upstreams', async () => {
    const { ws: foo } = await open(`${base}/foo?x=1`);
    const { ws: bar } = await open(`${base}/bar/room/7?y=2`);
    const a = await whoami(foo);
    const b = await whoami(bar);
    assert.equal(a.name, 'A');
    assert.equal(a.path, '/foo?x=1');
    assert.equal(b.name, 'B');
    assert.equal(b.path, '/base/room/7?y=2');
    for (const ws of [foo, bar]) {
      const text = await roundTrip(ws, 'through the gateway');
      assert.equal(text.isBinary, false);
      assert.equal(text.msg.toString(), 'through the gateway');
      const data = crypto.randomBytes(70000);
      const bin = await roundTrip(ws, data);
      assert.equal(bin.isBinary, true);
      assert.ok(Buffer.compare(bin.msg, data) === 0);
      assert.equal(await closeNormally(ws), 1000);
    }
  });

  it('negotiates nothing when the client offers nothing', async () => {
    const { ws } = await open(`${base}/foo?plain=1`);
    assert.equal(ws.extensions, '');
    assert.equal(ws.protocol, '');
    const seen = await whoami(ws);
    assert.equal(seen.extensions, '');
    assert.equal(seen.protocol, '');
    assert.equal(seen.headers['sec-websocket-extensions'], undefined);
    assert.equal(await closeNormally(ws), 1000);
  });

  for (const route of ['/foo', '/bar/deflate']) {
    it(`negotiates permessage-deflate end to end on ${route}`, async () => {
      const { ws, tcp } = await open(`${base}${route}`, [], { perMessageDeflate: true });
      assert.match(ws.extensions, /permessage-deflate/);
      const seen = await whoami(ws);
      assert.match(seen.extensions, /permessage-deflate/, 'the upstream did not negotiate it');
      assert.match(seen.headers['sec-websocket-extensions'], /permessage-deflate/);

      for (const data of ['short', 'x'.repeat(5000), crypto.randomBytes(64 * 1024)]) {
        const { msg } = await roundTrip(ws, data);
        assert.ok(Buffer.compare(msg, Buffer.from(data)) === 0);
      }
      // 1 MiB that compresses well: it must cross the gateway compressed.
      const big = 'compressible wsgate payload '.repeat(40000).slice(0, 1024 * 1024);
      const before = tcp.bytesRead;
      const { msg, isBinary } = await roundTrip(ws, big);
      assert.equal(isBinary, false);
      assert.equal(msg.length, 1024 * 1024);
      assert.equal(msg.toString(), big);
      const onWire = tcp.bytesRead - before;
      assert.ok(onWire < 256 * 1024, `the 1 MiB echo took ${onWire} bytes on the wire`);
      assert.equal(await closeNormally(ws), 1000);
    });
  }

  it('negotiates a subprotocol end to end', async () => {
    const { ws } = await open(`${base}/foo`, ['chat.v1']);
    assert.equal(ws.protocol, 'chat.v1');
    const seen = await whoami(ws);
    assert.equal(seen.protocol, 'chat.v1');
    assert.equal(seen.headers['sec-websocket-protocol'], 'chat.v1');
    assert.equal(await closeNormally(ws), 1000);
  });

  it('lets the upstream pick among several offered subprotocols', async () => {
    const { ws } = await open(`${base}/bar/p`, ['chat.v2', 'chat.v1']);
    assert.equal(ws.protocol, 'chat.v1');
    const seen = await whoami(ws);
    assert.equal(seen.name, 'B');
    assert.equal(seen.protocol, 'chat.v1');
    assert.equal(await closeNormally(ws), 1000);
  });

  it('negotiates deflate and a subprotocol together', async () => {
    const { ws } = await open(`${base}/bar/both`, ['chat.v1'], { perMessageDeflate: true });
    assert.equal(ws.protocol, 'chat.v1');
    assert.match(ws.extensions, /permessage-deflate/);
    const data = Buffer.alloc(1024 * 1024, 0x61);
    const { msg, isBinary } = await roundTrip(ws, data);
    assert.equal(isBinary, true);
    assert.ok(Buffer.compare(msg, data) === 0);
    assert.equal(await closeNormally(ws), 1000);
  });
});
