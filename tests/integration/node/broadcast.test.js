// broadcast: rooms and the example handler plugin driven by the Node ws client.
'use strict';

const assert = require('node:assert/strict');
const { describe, it, before, after } = require('node:test');
const { startGateway, connect, closeNormally } = require('./harness');

const MEMBERS = 60;
const SENDERS = 3;
const PER_SENDER = 40;

const plugin = process.env.WSGATE_EXAMPLE_PLUGIN;

const CONFIG = `
listeners:
  - address: 127.0.0.1:0
workers: 2
limits: { max_connections: 1000 }
log: { level: info, format: text }
routes:
  - { name: rooms, path_prefix: /rooms/, handler: broadcast, echo_to_sender: true }
${plugin ? `  - { name: upper, path: /upper, handler: plugin, plugin: ${plugin},
      options: { prefix: "#" } }` : ''}
`;

// Resolves with the first n messages ws receives, as [text, isBinary].
function collect(ws, n) {
  return new Promise((resolve, reject) => {
    const got = [];
    if (n === 0) resolve(got);
    ws.on('message', (data, isBinary) => {
      got.push([isBinary ? data : data.toString('utf8'), isBinary]);
      if (got.length === n) resolve(got);
    });
    ws.on('close', () => reject(new Error(`closed after ${got.length} of ${n}`)));
  });
}

describe('broadcast', () => {
  let gw;
  before(async () => {
    gw = await startGateway(CONFIG);
  });
  after(async () => {
    if (gw) await gw.stop();
  });

  it('delivers every message to every member once, in each sender\'s order', async () => {
    const url = `ws://127.0.0.1:${gw.port}/rooms/node`;
    const conns = await Promise.all(Array.from({ length: MEMBERS }, () => connect(url)));
    const total = SENDERS * PER_SENDER;
    const all = conns.map((ws) => collect(ws, total));
    for (let k = 0; k < PER_SENDER; k++)
      for (let s = 0; s < SENDERS; s++)
        conns[s].send(k % 2 ? `${s}:${k}` : Buffer.from(`${s}:${k}`));
    const results = await Promise.all(all);
    for (const got of results) {
      const next = new Array(SENDERS).fill(0);
      for (const [m, isBinary] of got) {
        const [s, k] = m.toString().split(':').map(Number);
        assert.equal(k, next[s], `sender ${s}: message ${k} out of order or twice`);
        assert.equal(isBinary, k % 2 === 0, 'the opcode is kept');
        next[s]++;
      }
      assert.deepEqual(next, new Array(SENDERS).fill(PER_SENDER));
    }
    // stderr arrives asynchronously: wait for every upgrade line.
    const upgrades = () => gw.lines.filter((l) => l.includes('path="/rooms/node"'));
    for (let i = 0; i < 600 && upgrades().length < MEMBERS; i++)
      await new Promise((resolve) => setTimeout(resolve, 50));
    const workers = new Set(upgrades().map((l) => /worker=(\d+)/.exec(l)[1]));
    assert.deepEqual([...workers].sort(), ['0', '1']);
    await Promise.all(conns.map((ws) => closeNormally(ws)));
  });

  it('serves the example plugin', { skip: !plugin && 'WSGATE_EXAMPLE_PLUGIN is not set' },
    async () => {
      const ws = await connect(`ws://127.0.0.1:${gw.port}/upper`);
      const reply = collect(ws, 1);
      ws.send('node ws');
      assert.deepEqual(await reply, [['#NODE WS', false]]);
      assert.equal(await closeNormally(ws), 1000);
    });
});
