"""wsgate_harness: starts the real wsgate binary on loopback for integration tests.

A Gateway writes a YAML configuration into a temporary directory, starts
`$WSGATE_BIN -c FILE`, reads the kernel-chosen port from the gateway's
`listening address=127.0.0.1:PORT` log line, keeps draining its stderr into a
list, and stops it by PID (SIGTERM, then SIGKILL after a grace period). A
RawClient speaks bytes over a plain socket: HTTP responses, masked client
frames and server frames. Run with Debian's /usr/bin/python3 (websockets 10.4).
"""

import asyncio
import atexit
import base64
import hashlib
import os
import re
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
import unittest

START_TIMEOUT = 30.0  # seconds until the listening line (sanitizer builds start slowly)
STOP_GRACE = 30.0  # seconds between SIGTERM and SIGKILL (the drain timeout is 10 s)
IO_TIMEOUT = 15.0  # seconds any single socket read may block


def small_quarantine_env():
    """ASAN_OPTIONS for memory-bound tests: AddressSanitizer keeps freed
    chunks in a quarantine (256 MiB by default) that would count relayed
    data as growth. Harmless without ASan."""
    opts = (os.environ.get("ASAN_OPTIONS", ""), "quarantine_size_mb=8",
            "thread_local_quarantine_size_kb=64")
    return {"ASAN_OPTIONS": ":".join(o for o in opts if o)}

LISTENING_RE = re.compile(r"listening address=127\.0\.0\.1:(\d+)")
SANITIZER_MARKERS = ("AddressSanitizer", "LeakSanitizer", "runtime error:")

REASONS = {
    101: "Switching Protocols",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    426: "Upgrade Required",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA

# A valid Sec-WebSocket-Key (base64 of 16 bytes) and its RFC 6455 accept value.
SAMPLE_KEY = "dGhlIHNhbXBsZSBub25jZQ=="
SAMPLE_ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def accept_for(key):
    """The Sec-WebSocket-Accept value RFC 6455 derives from `key`."""
    digest = hashlib.sha1((key + WS_GUID).encode("ascii")).digest()
    return base64.b64encode(digest).decode("ascii")


def wsgate_bin():
    path = os.environ.get("WSGATE_BIN")
    if not path:
        raise unittest.SkipTest("WSGATE_BIN is not set")
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"WSGATE_BIN={path} is not an executable file")
    return path


_running = set()


@atexit.register
def _kill_leftovers():
    for gw in list(_running):
        gw.kill()


class Gateway:
    """One wsgate process with its own configuration file and temp directory."""

    def __init__(self, config, env=None, listeners=1):
        self.config = config
        self.env = dict(os.environ)
        self.env.update(env or {})
        self.nlisteners = listeners
        self.proc = None
        self.ports = []
        self.returncode = None
        self._lines = []
        self._cond = threading.Condition()
        self._tmp = None
        self._threads = []

    @property
    def port(self):
        return self.ports[0]

    @property
    def stderr_lines(self):
        with self._cond:
            return list(self._lines)

    @property
    def stderr_text(self):
        return "\n".join(self.stderr_lines)

    def start(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="wsgate-it-")
        path = os.path.join(self._tmp.name, "wsgate.yaml")
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.config)
        self.proc = subprocess.Popen(
            [wsgate_bin(), "-c", path],
            cwd=self._tmp.name,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        _running.add(self)
        for stream in (self.proc.stderr, self.proc.stdout):
            t = threading.Thread(target=self._drain, args=(stream,), daemon=True)
            t.start()
            self._threads.append(t)
        try:
            self._wait_listening()
        except BaseException:
            self.kill()
            raise
        return self

    def _drain(self, stream):
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._cond:
                self._lines.append(line)
                self._cond.notify_all()
        stream.close()
        with self._cond:
            self._cond.notify_all()

    def _wait_listening(self):
        deadline = time.monotonic() + START_TIMEOUT
        with self._cond:
            while True:
                ports = []
                for line in self._lines:
                    m = LISTENING_RE.search(line)
                    if m and int(m.group(1)) not in ports:
                        ports.append(int(m.group(1)))
                if len(ports) >= self.nlisteners:
                    self.ports = ports
                    return
                if self.proc.poll() is not None:
                    raise RuntimeError(
                        f"wsgate exited with {self.proc.returncode} before listening:\n"
                        + "\n".join(self._lines))
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError("wsgate did not log a listening line in time:\n"
                                       + "\n".join(self._lines))
                self._cond.wait(min(left, 0.2))

    def wait_for_log(self, pattern, timeout=IO_TIMEOUT):
        """Returns the first stderr line matching `pattern`, waiting up to `timeout`."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self._lines:
                    if rx.search(line):
                        return line
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no log line matches {pattern!r}:\n"
                                         + "\n".join(self._lines))
                self._cond.wait(min(left, 0.2))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        if self.alive():
            os.kill(self.proc.pid, sig)

    def wait(self, timeout):
        """Waits for exit; returns the exit status, or None if still running."""
        try:
            self.returncode = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        for t in self._threads:
            t.join(timeout=5)
        _running.discard(self)
        return self.returncode

    def stop(self):
        """SIGTERM, then SIGKILL after STOP_GRACE; returns (status, killed)."""
        if self.proc is None:
            return None, False
        killed = False
        if self.alive():
            self.signal(signal.SIGTERM)
            if self.wait(STOP_GRACE) is None:
                self.signal(signal.SIGKILL)
                killed = True
        self.wait(STOP_GRACE)
        self._cleanup_tmp()
        return self.returncode, killed

    def kill(self):
        """Ends the process at once (for cleanup paths); never raises."""
        try:
            if self.alive():
                self.signal(signal.SIGKILL)
                self.wait(10)
        except Exception:  # noqa: BLE001 - cleanup must not mask the real error
            pass
        _running.discard(self)
        self._cleanup_tmp()

    def _cleanup_tmp(self):
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def sanitizer_reports(self):
        return [l for l in self.stderr_lines if any(m in l for m in SANITIZER_MARKERS)]

    def check_exit(self, testcase=None):
        """Stops the gateway (if still running) and asserts a clean exit 0."""
        status, killed = self.stop()
        problems = []
        if killed:
            problems.append(f"wsgate did not exit within {STOP_GRACE}s of SIGTERM")
        elif status != 0:
            problems.append(f"wsgate exited with status {status} (want 0)")
        if self.sanitizer_reports():
            problems.append("sanitizer report in stderr")
        if problems:
            raise AssertionError("; ".join(problems) + "\n--- wsgate stderr ---\n"
                                 + self.stderr_text)


class GatewayTestCase(unittest.TestCase):
    """Starts one gateway per test class from CONFIG (and ENV); checks its exit."""

    CONFIG = None
    ENV = {}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.gw = Gateway(cls.CONFIG, env=cls.ENV)
        cls.addClassCleanup(cls.gw.kill)
        cls.gw.start()
        cls.port = cls.gw.port

    @classmethod
    def tearDownClass(cls):
        cls.gw.check_exit()
        super().tearDownClass()

    def setUp(self):
        super().setUp()
        if not self.gw.alive():
            self.fail(f"wsgate is not running (status {self.gw.proc.returncode}):\n"
                      + self.gw.stderr_text)

    def url(self, path):
        return f"ws://127.0.0.1:{self.port}{path}"

    def raw(self):
        return RawClient(self.port)


def run_async(coro, timeout=120):
    """Runs a coroutine to completion with an overall (generous) timeout."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


def ws_connect(url, **kw):
    """websockets 10.4 asyncio client with the options these tests rely on."""
    import websockets  # Debian's python3-websockets

    opts = dict(max_size=None, compression=None, ping_interval=None,
                open_timeout=60, close_timeout=IO_TIMEOUT)
    opts.update(kw)
    return websockets.connect(url, **opts)


# ---- raw HTTP and frames -------------------------------------------------------------


def upgrade_request(path="/echo", host="127.0.0.1", method="GET", key=SAMPLE_KEY,
                    version="13", connection="Upgrade", upgrade="websocket",
                    extra=(), omit=()):
    """Builds an opening-handshake request head; `omit` drops headers by name
    (case-insensitive), `extra` appends (name, value) pairs."""
    headers = [("Host", host), ("Upgrade", upgrade), ("Connection", connection),
               ("Sec-WebSocket-Key", key), ("Sec-WebSocket-Version", version)]
    drop = {o.lower() for o in omit}
    lines = [f"{method} {path} HTTP/1.1"]
    lines += [f"{n}: {v}" for n, v in headers if n.lower() not in drop and v is not None]
    lines += [f"{n}: {v}" for n, v in extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def client_frame(opcode, payload=b"", fin=True, mask=None, rsv=0, length=None):
    """A masked client frame; `length` overrides the advertised payload length."""
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    mask = os.urandom(4) if mask is None else mask
    n = len(payload) if length is None else length
    head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + masked


def close_payload(code, reason=b""):
    return struct.pack("!H", code) + reason


class HttpResponse:
    def __init__(self, version, status, reason, headers, body, head):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers  # list of (name, value) in order
        self.body = body
        self.head = head

    def header(self, name):
        """The value of the last header named `name` (case-insensitive), or None."""
        found = None
        for n, v in self.headers:
            if n.lower() == name.lower():
                found = v
        return found

    def header_all(self, name):
        return [v for n, v in self.headers if n.lower() == name.lower()]

    def __repr__(self):
        return f"<HttpResponse {self.status} {self.reason!r} {self.headers!r} {self.body!r}>"


class RawClient:
    """A plain TCP client with a read buffer, for byte-exact protocol tests."""

    def __init__(self, port, timeout=IO_TIMEOUT):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        """Reads more bytes into the buffer; False at EOF (or reset)."""
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            return False
        self.buf += chunk
        return True

    def read_exact(self, n):
        while len(self.buf) < n:
            if not self._fill():
                raise EOFError(f"EOF after {len(self.buf)} of {n} bytes")
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_response(self):
        """Reads a response head and, when Content-Length is set, its body."""
        while b"\r\n\r\n" not in self.buf:
            if not self._fill():
                raise EOFError(f"EOF before a complete response head: {self.buf!r}")
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        text = head.decode("latin-1")
        lines = text.split("\r\n")
        m = re.fullmatch(r"(HTTP/\d\.\d) (\d{3}) (.*)", lines[0])
        if not m:
            raise AssertionError(f"bad status line {lines[0]!r}")
        headers = []
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep:
                raise AssertionError(f"bad header line {line!r}")
            headers.append((name, value.strip()))
        resp = HttpResponse(m.group(1), int(m.group(2)), m.group(3), headers, b"", text)
        cl = resp.header("Content-Length")
        if cl is not None:
            resp.body = self.read_exact(int(cl))
        return resp

    def read_frame(self):
        """Reads one server frame; returns (fin, opcode, payload). Server frames
        must not be masked."""
        b0, b1 = self.read_exact(2)
        if b1 & 0x80:
            raise AssertionError("server frame is masked")
        n = b1 & 0x7F
        if n == 126:
            (n,) = struct.unpack("!H", self.read_exact(2))
        elif n == 127:
            (n,) = struct.unpack("!Q", self.read_exact(8))
        return bool(b0 & 0x80), b0 & 0x0F, self.read_exact(n)

    def read_close(self):
        """Reads frames up to a close frame; returns its (code, reason)."""
        while True:
            _fin, op, payload = self.read_frame()
            if op == OP_CLOSE:
                if len(payload) < 2:
                    return None, b""
                return struct.unpack("!H", payload[:2])[0], payload[2:]

    def at_eof(self, timeout=IO_TIMEOUT):
        """True once the server closed the connection (EOF or reset) within
        `timeout`, with no further bytes; raises if bytes arrive instead."""
        self.sock.settimeout(timeout)
        if self.buf:
            raise AssertionError(f"unexpected bytes before close: {self.buf!r}")
        try:
            chunk = self.sock.recv(4096)
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False
        if chunk:
            raise AssertionError(f"unexpected bytes before close: {chunk!r}")
        return True

    def handshake(self, path="/echo", **kw):
        """Sends an upgrade request and asserts a 101 with the right accept."""
        self.send(upgrade_request(path, **kw))
        resp = self.read_response()
        if resp.status != 101:
            raise AssertionError(f"want 101, got {resp!r}")
        if resp.header("Sec-WebSocket-Accept") != accept_for(kw.get("key", SAMPLE_KEY)):
            raise AssertionError(f"bad Sec-WebSocket-Accept in {resp!r}")
        return resp
