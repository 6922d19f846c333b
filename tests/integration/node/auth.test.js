// auth: static tokens from a header, a query parameter or a cookie; 401 and 404.
'use strict';

const assert = require('node:assert/strict');
const { describe, it, before, after } = require('node:test');
const { startGateway, connect, expectRefused, roundTrip, closeNormally } = require('./harness');

const TOKEN = 'node-it-token-7Qm2';

const CONFIG = `
listeners:
  - address: 127.0.0.1:0
workers: 2
log: { level: info, format: text }
auth:
  token_from: [header, query=access_token, cookie=session]
  providers:
    edge: { type: static, tokens: ["\${WSGATE_TEST_TOKEN}"] }
routes:
  - { name: echo, path: /echo, handler: echo }
  - { name: private, path: /private/echo, handler: echo, auth: edge }
`;

describe('auth', () => {
  let gw;
  let base;
  before(async () => {
    gw = await startGateway(CONFIG, { env: { WSGATE_TEST_TOKEN: TOKEN } });
    base = `ws://127.0.0.1:${gw.port}`;
  });
  after(async () => {
    if (gw) await gw.stop();
  });

  async function echoOnce(url, options) {
    const ws = await connect(url, options);
    const { msg } = await roundTrip(ws, 'hello with token');
    assert.equal(msg.toString(), 'hello with token');
    assert.equal(await closeNormally(ws), 1000);
  }

  it('accepts the token in Authorization: Bearer', async () => {
    await echoOnce(`${base}/private/echo`, { headers: { Authorization: `Bearer ${TOKEN}` } });
  });

  it('accepts the token in the access_token query parameter', async () => {
    await echoOnce(`${base}/private/echo?access_token=${TOKEN}`);
  });

  it('accepts the token in the session cookie', async () => {
    await echoOnce(`${base}/private/echo`, { headers: { Cookie: `lang=en; session=${TOKEN}` } });
  });

  it('refuses a missing token with 401 and a Bearer challenge', async () => {
    const r = await expectRefused(`${base}/private/echo`);
    assert.equal(r.status, 401);
    assert.equal(r.headers['www-authenticate'], 'Bearer realm="wsgate"');
  });

  it('refuses a wrong token with 401 invalid_token', async () => {
    const r = await expectRefused(`${base}/private/echo`, { headers: { Authorization: 'Bearer nope' } });
    assert.equal(r.status, 401);
    assert.match(r.headers['www-authenticate'], /error="invalid_token"/);
  });

  it('answers 404 for an unknown path', async () => {
    const r = await expectRefused(`${base}/nowhere`);
    assert.equal(r.status, 404);
    assert.equal(r.headers.connection, 'close');
    assert.ok(r.body.length > 0);
  });

  it('serves the unprotected route without a token', async () => {
    await echoOnce(`${base}/echo`);
  });
});
