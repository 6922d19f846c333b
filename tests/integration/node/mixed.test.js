// mixed: one gateway port in front of a Node ws upstream (/ws) and a python
// websockets upstream (/py), each reached by a Node ws client and by a python
// websockets client; permessage-deflate is negotiated end to end in all four
// pairings, and compressible messages cross the gateway compressed.
'use strict';

const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const crypto = require('node:crypto');
const readline = require('node:readline');
const { describe, it, before, after } = require('node:test');
const { WebSocket, startGateway, roundTrip, closeNormally, stopServer } = require('./harness');

// Debian's python3-websockets (10.4); never the python3 first on PATH. -I
// keeps PYTHONPATH and the user site out, so that is the module it imports.
const PYTHON = '/usr/bin/python3';
const PY_START_TIMEOUT_MS = 30000;
const PY_CLIENT_TIMEOUT_MS = 120000;
const PY_STOP_GRACE_MS = 30000;

const TEXT_LEN = 200 * 1024;
const BINARY_LEN = 64 * 1024;
// A compressed 200 KB text takes a few KiB; uncompressed it would take more.
const WIRE_LIMIT = 64 * 1024;

const CONFIG = (nodePort, pyPort) => `
listeners:
  - address: 127.0.0.1:0
workers: 2
limits: { max_connections: 1000, max_message_size: 2MiB, proxy_buffer: 64KiB }
log: { level: info, format: text }
routes:
  - { name: node, path: /ws, upstream: "ws://127.0.0.1:${nodePort}" }
  - { name: py, path: /py, upstream: "ws://127.0.0.1:${pyPort}" }
`;

function compressibleText() {
  return 'mixed wsgate permessage-deflate payload '.repeat(TEXT_LEN / 16).slice(0, TEXT_LEN);
}

function extNames(header) {
  if (!header) return [];
  return header.split(',').map((e) => e.split(';')[0].trim());
}

// ---- the upstreams --------------------------------------------------------------

// A ws server that echoes; "@@ext" answers what it negotiated, "@@bytes" how
// many bytes it has read from the gateway on this connection.
function startNodeUpstream() {
  return new Promise((resolve, reject) => {
    const wss = new WebSocket.Server({ host: '127.0.0.1', port: 0, perMessageDeflate: true });
    wss.on('connection', (ws, req) => {
      const tcp = req.socket;
      ws.on('message', (data, isBinary) => {
        const cmd = !isBinary && data.length < 16 ? data.toString() : '';
        if (cmd === '@@ext') {
          ws.send(
            JSON.stringify({
              kind: 'node',
              path: req.url,
              extensions: Object.keys(ws._extensions),
              accepted: ws.extensions,
              offered: req.headers['sec-websocket-extensions'] ?? null,
            }),
          );
        } else if (cmd === '@@bytes') {
          ws.send(JSON.stringify({ kind: 'node', bytesRead: tcp.bytesRead }));
        } else {
          ws.send(data, { binary: isBinary });
        }
      });
      ws.on('error', () => {});
    });
    wss.once('listening', () => resolve(wss));
    wss.once('error', reject);
  });
}

const PY_UPSTREAM = String.raw`
import asyncio, json, signal, sys
import websockets
from websockets.legacy.server import WebSocketServerProtocol

class Counting(WebSocketServerProtocol):
    rx = 0
    def data_received(self, data):
        self.rx += len(data)
        super().data_received(data)

async def handler(ws):
    async for msg in ws:
        if msg == "@@ext":
            await ws.send(json.dumps({
                "kind": "python",
                "version": websockets.__version__,
                "path": ws.path,
                "extensions": [e.name for e in ws.extensions],
                "accepted": ws.response_headers.get("Sec-WebSocket-Extensions"),
                "offered": ws.request_headers.get("Sec-WebSocket-Extensions"),
            }))
        elif msg == "@@bytes":
            await ws.send(json.dumps({"kind": "python", "bytesRead": ws.rx}))
        else:
            await ws.send(msg)

async def main():
    stop = asyncio.get_running_loop().create_future()
    for s in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(s, lambda: stop.done() or stop.set_result(None))
    async with websockets.serve(handler, "127.0.0.1", 0, compression="deflate",
                                create_protocol=Counting, max_size=None,
                                ping_interval=None, close_timeout=10) as server:
        print(server.sockets[0].getsockname()[1], flush=True)
        await stop

asyncio.run(main())
`;

// Spawns the python upstream; resolves once it printed its port.
function startPyUpstream() {
  const child = spawn(PYTHON, ['-I', '-c', PY_UPSTREAM], {
    env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const up = { child, pid: child.pid, port: 0, stderr: '', alive: true };
  up.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  up.exited.then(() => {
    up.alive = false;
  });
  child.stderr.on('data', (c) => {
    up.stderr += c;
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`python upstream printed no port:\n${up.stderr}`)), PY_START_TIMEOUT_MS);
    function fail(err) {
      clearTimeout(timer);
      if (up.alive) process.kill(up.pid, 'SIGKILL');
      reject(err);
    }
    readline.createInterface({ input: child.stdout }).once('line', (line) => {
      up.port = Number(line.trim());
      clearTimeout(timer);
      if (up.port > 0) resolve(up);
      else fail(new Error(`python upstream printed ${JSON.stringify(line)}:\n${up.stderr}`));
    });
    child.on('error', fail);
    up.exited.then(({ code, signal }) => {
      if (up.port === 0) fail(new Error(`python upstream exited (${code ?? signal}):\n${up.stderr}`));
    });
  });
}

// SIGTERM by PID (SIGKILL after a grace period); asserts a clean exit.
async function stopPyUpstream(up) {
  if (!up) return;
  let killed = false;
  if (up.alive) {
    process.kill(up.pid, 'SIGTERM');
    const t = setTimeout(() => {
      killed = true;
      if (up.alive) process.kill(up.pid, 'SIGKILL');
    }, PY_STOP_GRACE_MS);
    await up.exited;
    clearTimeout(t);
  }
  const { code, signal } = await up.exited;
  assert.equal(killed, false, `python upstream ignored SIGTERM:\n${up.stderr}`);
  assert.equal(code, 0, `python upstream exited with ${code ?? signal}:\n${up.stderr}`);
}

// ---- the clients ----------------------------------------------------------------

// The Node client's pairing: resolves with what it saw, asserted by the caller.
async function nodeClient(url) {
  const { ws, tcp, upgradeHeaders } = await new Promise((resolve, reject) => {
    const sock = new WebSocket(url, { perMessageDeflate: true, handshakeTimeout: 30000 });
    let res101 = null;
    sock.once('upgrade', (res) => {
      res101 = res;
    });
    sock.once('open', () => resolve({ ws: sock, tcp: res101.socket, upgradeHeaders: res101.headers }));
    sock.once('error', reject);
    sock.once('unexpected-response', (req, res) => {
      req.destroy();
      reject(new Error(`upgrade to ${url} refused with ${res.statusCode}`));
    });
  });
  const out = { responseExtensions: upgradeHeaders['sec-websocket-extensions'] ?? null };
  out.clientExtensions = Object.keys(ws._extensions);
  const ext = await roundTrip(ws, '@@ext');
  assert.equal(ext.isBinary, false);
  out.upstream = JSON.parse(ext.msg.toString());

  const text = compressibleText();
  const beforeRead = tcp.bytesRead;
  const t = await roundTrip(ws, text);
  out.textEchoWire = tcp.bytesRead - beforeRead;
  out.textOk = t.isBinary === false && t.msg.toString() === text;
  const b = await roundTrip(ws, '@@bytes');
  out.upstreamBytesRead = JSON.parse(b.msg.toString()).bytesRead;

  const data = crypto.randomBytes(BINARY_LEN);
  const bin = await roundTrip(ws, data);
  out.binaryOk = bin.isBinary === true && Buffer.compare(bin.msg, data) === 0;
  out.closeCode = await closeNormally(ws);
  return out;
}

const PY_CLIENT = String.raw`
import asyncio, json, os, sys
import websockets
from websockets.legacy.client import WebSocketClientProtocol

TEXT_LEN, BINARY_LEN = int(sys.argv[2]), int(sys.argv[3])

class Counting(WebSocketClientProtocol):
    rx = 0
    def data_received(self, data):
        self.rx += len(data)
        super().data_received(data)

async def main(url):
    out = {"version": websockets.__version__}
    async with websockets.connect(url, compression="deflate", create_protocol=Counting,
                                  max_size=None, ping_interval=None, open_timeout=30,
                                  close_timeout=10) as ws:
        out["responseExtensions"] = ws.response_headers.get("Sec-WebSocket-Extensions")
        out["clientExtensions"] = [e.name for e in ws.extensions]
        await ws.send("@@ext")
        out["upstream"] = json.loads(await ws.recv())

        text = ("mixed wsgate permessage-deflate payload " * (TEXT_LEN // 16))[:TEXT_LEN]
        before = ws.rx
        await ws.send(text)
        echo = await ws.recv()
        out["textEchoWire"] = ws.rx - before
        out["textOk"] = isinstance(echo, str) and echo == text
        await ws.send("@@bytes")
        out["upstreamBytesRead"] = json.loads(await ws.recv())["bytesRead"]

        data = os.urandom(BINARY_LEN)
        await ws.send(data)
        echo = await ws.recv()
        out["binaryOk"] = isinstance(echo, bytes) and echo == data
    out["closeCode"] = ws.close_code
    return out

try:
    result = asyncio.run(asyncio.wait_for(main(sys.argv[1]), 100))
except Exception as e:
    print(json.dumps({"error": repr(e)}), flush=True)
    sys.exit(1)
print(json.dumps(result), flush=True)
`;

// Runs the python client against url; resolves with its JSON result.
function pyClient(url) {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, ['-I', '-c', PY_CLIENT, url, String(TEXT_LEN), String(BINARY_LEN)], {
      env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => {
      stdout += c;
    });
    child.stderr.on('data', (c) => {
      stderr += c;
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      process.kill(child.pid, 'SIGKILL');
    }, PY_CLIENT_TIMEOUT_MS);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const last = stdout.trim().split('\n').pop();
      let result;
      try {
        result = JSON.parse(last);
      } catch {
        reject(new Error(`python client (${timedOut ? 'timed out' : code ?? signal}) printed no JSON:\n${stdout}\n${stderr}`));
        return;
      }
      if (code !== 0 || result.error) {
        reject(new Error(`python client failed (${code ?? signal}): ${result.error ?? ''}\n${stderr}`));
        return;
      }
      resolve(result);
    });
  });
}

// ---- the assertions -------------------------------------------------------------

// What every pairing must show, whichever client and upstream it joins.
function assertPairing(r, { client, kind, path }) {
  const who = `${client} client -> ${kind} upstream`;
  assert.deepEqual(extNames(r.responseExtensions), ['permessage-deflate'], `${who}: the 101's Sec-WebSocket-Extensions`);
  assert.deepEqual(r.clientExtensions, ['permessage-deflate'], `${who}: the client's negotiated extensions`);
  assert.equal(r.upstream.kind, kind, `${who}: reached the wrong upstream`);
  assert.equal(r.upstream.path, path, `${who}: the upstream saw another request`);
  assert.deepEqual(r.upstream.extensions, ['permessage-deflate'], `${who}: the upstream's negotiated extensions`);
  assert.deepEqual(extNames(r.upstream.accepted), ['permessage-deflate'], `${who}: what the upstream accepted`);
  assert.equal(r.responseExtensions, r.upstream.accepted, `${who}: the 101 does not carry the upstream's answer`);
  assert.ok(extNames(r.upstream.offered).includes('permessage-deflate'), `${who}: the offer did not reach the upstream`);
  assert.equal(r.textOk, true, `${who}: echo of the ${TEXT_LEN} B text`);
  assert.equal(r.binaryOk, true, `${who}: echo of the ${BINARY_LEN} B binary`);
  // Compressed both ways: the upstream read the text compressed from the
  // gateway, and the client read its echo compressed.
  assert.ok(r.upstreamBytesRead < WIRE_LIMIT, `${who}: the upstream read ${r.upstreamBytesRead} B for a ${TEXT_LEN} B text`);
  assert.ok(r.textEchoWire < WIRE_LIMIT, `${who}: the text's echo took ${r.textEchoWire} B on the wire`);
  assert.equal(r.closeCode, 1000, `${who}: close code`);
}

describe('mixed clients and upstreams', () => {
  let gw;
  let nodeUp;
  let pyUp;
  let base;
  before(async () => {
    nodeUp = await startNodeUpstream();
    pyUp = await startPyUpstream();
    gw = await startGateway(CONFIG(nodeUp.address().port, pyUp.port));
    base = `ws://127.0.0.1:${gw.port}`;
  });
  after(async () => {
    try {
      if (gw) await gw.stop();
    } finally {
      try {
        await stopPyUpstream(pyUp);
      } finally {
        await stopServer(nodeUp);
      }
    }
  });

  it('the python websockets used is Debian 10.4', async () => {
    const r = await pyClient(`${base}/py?client=version`);
    assert.equal(r.version, '10.4');
    assert.equal(r.upstream.version, '10.4');
  });

  const PAIRINGS = [
    { client: 'node', kind: 'node', route: '/ws' },
    { client: 'node', kind: 'python', route: '/py' },
    { client: 'python', kind: 'node', route: '/ws' },
    { client: 'python', kind: 'python', route: '/py' },
  ];

  for (const p of PAIRINGS) {
    it(`${p.client} client <-> ${p.kind} upstream on ${p.route}: permessage-deflate end to end`, async () => {
      const path = `${p.route}?client=${p.client}`;
      const r = p.client === 'node' ? await nodeClient(base + path) : await pyClient(base + path);
      assertPairing(r, { client: p.client, kind: p.kind, path });
    });
  }

  it('all four pairings at once through the one port', async () => {
    const results = await Promise.all(
      PAIRINGS.map((p) => {
        const path = `${p.route}?client=${p.client}&at=once`;
        return (p.client === 'node' ? nodeClient(base + path) : pyClient(base + path)).then((r) => ({ p, path, r }));
      }),
    );
    for (const { p, path, r } of results) assertPairing(r, { client: p.client, kind: p.kind, path });
  });
});
