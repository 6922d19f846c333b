// harness: starts the real wsgate binary on loopback for the Node ws tests.
'use strict';

const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');

const WebSocket = require(path.join(__dirname, '..', 'node_modules', 'ws'));

const START_TIMEOUT_MS = 30000; // sanitizer builds start slowly
const STOP_GRACE_MS = 30000; // the gateway's drain timeout is 10 s
const LISTENING_RE = /listening address=127\.0\.0\.1:(\d+)/;
const SANITIZER_MARKERS = ['AddressSanitizer', 'LeakSanitizer', 'runtime error:'];

const running = new Set();
process.on('exit', () => {
  for (const gw of running) {
    try {
      process.kill(gw.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

function wsgateBin() {
  const bin = process.env.WSGATE_BIN;
  if (!bin) throw new Error('WSGATE_BIN is not set');
  fs.accessSync(bin, fs.constants.X_OK);
  return bin;
}

// Starts `$WSGATE_BIN -c <tmp>/wsgate.yaml`; resolves once the gateway logged
// its listening line, with { port, pid, lines, stop() }.
function startGateway(config, { env = {} } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wsgate-node-'));
  const file = path.join(dir, 'wsgate.yaml');
  fs.writeFileSync(file, config);
  const child = spawn(wsgateBin(), ['-c', file], {
    cwd: dir,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines = [];
  const exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal }));
  });
  const gw = {
    pid: child.pid,
    port: 0,
    lines,
    exited,
    alive: true,
    stderrText: () => lines.join('\n'),
    stop: () => stopGateway(gw, child, dir),
  };
  running.add(gw);
  exited.then(() => {
    gw.alive = false;
    running.delete(gw);
  });
  child.stdout.resume();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      fail(new Error(`wsgate did not log a listening line in time:\n${gw.stderrText()}`));
    }, START_TIMEOUT_MS);
    function fail(err) {
      clearTimeout(timer);
      if (gw.alive) process.kill(gw.pid, 'SIGKILL');
      fs.rmSync(dir, { recursive: true, force: true });
      reject(err);
    }
    readline.createInterface({ input: child.stderr }).on('line', (line) => {
      lines.push(line);
      const m = LISTENING_RE.exec(line);
      if (m && gw.port === 0) {
        gw.port = Number(m[1]);
        clearTimeout(timer);
        resolve(gw);
      }
    });
    child.on('error', fail);
    exited.then(({ code, signal }) => {
      if (gw.port === 0) fail(new Error(`wsgate exited (${code ?? signal}) before listening:\n${gw.stderrText()}`));
    });
  });
}

// SIGTERM by PID, SIGKILL after a grace period; asserts exit 0 and no
// sanitizer report on stderr.
async function stopGateway(gw, child, dir) {
  let killed = false;
  if (gw.alive) {
    process.kill(gw.pid, 'SIGTERM');
    const t = setTimeout(() => {
      killed = true;
      if (gw.alive) process.kill(gw.pid, 'SIGKILL');
    }, STOP_GRACE_MS);
    await gw.exited;
    clearTimeout(t);
  }
  const { code, signal } = await gw.exited;
  await new Promise((resolve) => (child.stderr.readableEnded ? resolve() : child.stderr.on('close', resolve)));
  fs.rmSync(dir, { recursive: true, force: true });
  const text = gw.stderrText();
  assert.equal(killed, false, `wsgate did not exit within ${STOP_GRACE_MS} ms of SIGTERM:\n${text}`);
  assert.equal(code, 0, `wsgate exited with ${code ?? signal} (want 0):\n${text}`);
  for (const m of SANITIZER_MARKERS) assert.ok(!text.includes(m), `sanitizer report:\n${text}`);
}

// Opens a client; resolves with the open socket or rejects with the error.
function connect(url, options = {}) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: 30000, ...options });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

// Resolves with { status, headers, body } when the upgrade is refused.
function expectRefused(url, options = {}) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: 30000, ...options });
    ws.once('open', () => {
      ws.terminate();
      reject(new Error(`upgrade to ${url} unexpectedly succeeded`));
    });
    ws.once('error', reject);
    ws.once('unexpected-response', (req, res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        req.destroy();
        resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString() });
      });
      res.on('error', reject);
    });
  });
}

// Sends one message and resolves with the next one received.
function roundTrip(ws, data) {
  return new Promise((resolve, reject) => {
    const onClose = (code) => reject(new Error(`closed with ${code} before the echo`));
    ws.once('message', (msg, isBinary) => {
      ws.off('close', onClose);
      resolve({ msg, isBinary });
    });
    ws.once('close', onClose);
    ws.send(data, (err) => err && reject(err));
  });
}

// Closes with 1000 and resolves with the code the server echoed.
function closeNormally(ws) {
  return new Promise((resolve) => {
    ws.once('close', (code) => resolve(code));
    ws.close(1000, 'done');
  });
}

// Stops a WebSocketServer started by a test, dropping its connections.
function stopServer(wss) {
  if (!wss) return Promise.resolve();
  for (const ws of wss.clients) ws.terminate();
  return new Promise((resolve) => wss.close(() => resolve()));
}

module.exports = {
  WebSocket,
  startGateway,
  connect,
  expectRefused,
  roundTrip,
  closeNormally,
  stopServer,
};
