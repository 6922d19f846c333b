// jwt: a browser-style client (the ws library) sending its JWT as a
// "bearer.<token>" subprotocol beside a real one; the gateway never selects
// the token, the upstream never sees it, and an expiring token closes 1008.
'use strict';

const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { describe, it, before, after } = require('node:test');
const { WebSocket, startGateway, expectRefused, roundTrip } = require('./harness');

const SECRET = 'node-jwt-secret-0123456789abcdef-0123456789';

const CONFIG = (port) => `
listeners:
  - address: 127.0.0.1:0
workers: 2
log: { level: info, format: text }
auth:
  token_from: [header, subprotocol]
  providers:
    users: { type: jwt, algorithms: [HS256], secret: "\${JWT_SECRET}", leeway: 0s,
             audience: chat, claims_to_headers: { roles: X-Auth-Roles } }
routes:
  - { name: echo, path: /echo, handler: echo, auth: users }
  - { name: chat, path: /chat, upstream: "ws://127.0.0.1:${port}", auth: users }
`;

const b64u = (buf) => Buffer.from(buf).toString('base64url');

function token(claims, secret = SECRET) {
  const input = `${b64u(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))}.${b64u(JSON.stringify(claims))}`;
  const sig = crypto.createHmac('sha256', secret).update(input).digest();
  return `${input}.${b64u(sig)}`;
}

function claims(extra = {}) {
  const now = Math.floor(Date.now() / 1000);
  return { sub: 'ada', aud: 'chat', exp: now + 600, roles: ['dev', 'ops'], ...extra };
}

function startUpstream() {
  return new Promise((resolve, reject) => {
    const wss = new WebSocket.Server({
      host: '127.0.0.1',
      port: 0,
      handleProtocols: (protocols) => (protocols.has('chat.v1') ? 'chat.v1' : false),
    });
    wss.seen = [];
    wss.on('connection', (ws, req) => {
      const rec = { headers: req.headers, protocol: ws.protocol, closed: null };
      wss.seen.push(rec);
      ws.on('message', (data, isBinary) => {
        if (!isBinary && data.toString() === '@@whoami') ws.send(JSON.stringify(rec));
        else ws.send(data, { binary: isBinary });
      });
      ws.on('close', (code, reason) => {
        rec.closed = { code, reason: reason.toString() };
        wss.emit('recorded-close', rec);
      });
      ws.on('error', () => {});
    });
    wss.once('listening', () => resolve(wss));
    wss.once('error', reject);
  });
}

function open(url, protocols) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols, { perMessageDeflate: false, handshakeTimeout: 30000 });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

describe('jwt', () => {
  let gw;
  let up;
  let base;
  before(async () => {
    up = await startUpstream();
    gw = await startGateway(CONFIG(up.address().port), { env: { JWT_SECRET: SECRET } });
    base = `ws://127.0.0.1:${gw.port}`;
  });
  after(async () => {
    if (gw) await gw.stop();
    if (up) {
      for (const ws of up.clients) ws.terminate();
      await new Promise((resolve) => up.close(() => resolve()));
    }
  });

  it('takes the token from the subprotocol and never forwards it', async () => {
    const tok = token(claims());
    const ws = await open(`${base}/chat`, [`bearer.${tok}`, 'chat.v1']);
    assert.equal(ws.protocol, 'chat.v1');
    const { msg } = await roundTrip(ws, '@@whoami');
    const seen = JSON.parse(msg.toString());
    assert.equal(seen.protocol, 'chat.v1');
    assert.equal(seen.headers['sec-websocket-protocol'], 'chat.v1');
    assert.equal(seen.headers['x-auth-subject'], 'ada');
    assert.equal(seen.headers['x-auth-roles'], 'dev,ops');
    for (const v of Object.values(seen.headers)) assert.ok(!String(v).includes(tok.split('.')[2]));
    ws.close(1000);
  });

  it('never selects the bearer entry itself (a client that offered protocols fails)', async () => {
    const tok = token(claims());
    await assert.rejects(open(`${base}/echo`, [`bearer.${tok}`, 'chat.v1']), /no subprotocol/);
  });

  it('refuses a forged or expired token with 401 invalid_token', async () => {
    const now = Math.floor(Date.now() / 1000);
    for (const tok of [token(claims(), 'another-secret-0123456789abcdef-0123'),
      token(claims({ exp: now - 5 }))]) {
      const r = await expectRefused(`${base}/chat`, { headers: { Authorization: `Bearer ${tok}` } });
      assert.equal(r.status, 401);
      assert.match(r.headers['www-authenticate'], /error="invalid_token"/);
    }
  });

  it('closes a proxied connection with 1008 on both sides when the token expires', async () => {
    const tok = token(claims({ exp: Math.floor(Date.now() / 1000) + 2 }));
    const upstreamClosed = new Promise((resolve) => {
      const onClose = (rec) => {
        if (rec.closed.code !== 1008) return; // an earlier test's connection
        up.off('recorded-close', onClose);
        resolve(rec);
      };
      up.on('recorded-close', onClose);
    });
    const ws = await open(`${base}/chat`, [`bearer.${tok}`, 'chat.v1']);
    const { msg } = await roundTrip(ws, 'before expiry');
    assert.equal(msg.toString(), 'before expiry');
    const [code, reason] = await new Promise((resolve) => {
      ws.once('close', (c, r) => resolve([c, r.toString()]));
    });
    assert.equal(code, 1008);
    assert.equal(reason, 'token expired');
    const rec = await upstreamClosed;
    assert.deepEqual(rec.closed, { code: 1008, reason: 'token expired' });
  });
});
