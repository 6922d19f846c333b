"""upstreams: WebSocket upstream servers for the reverse-proxy integration tests.

Each server runs in a daemon thread with its own asyncio event loop, listens
on 127.0.0.1 with a kernel-chosen port, and is stopped with stop() (or as a
context manager). Nothing outlives the test process: the threads are daemons
and every socket is closed by stop().

EchoUpstream is a real RFC 6455 server (Debian's python3-websockets 10.4). It
echoes every message and records each connection (request path and headers,
negotiated subprotocol and extensions, the close frame it received). Text
messages starting with "@@" are commands:

    @@whoami              -> JSON {name, path, headers, subprotocol, extensions}
    @@send-binary N       -> one binary message of N bytes
    @@send-text N         -> one text message of N bytes
    @@close CODE REASON   -> starts the close handshake with CODE
    @@abort               -> drops the TCP connection without a close frame

ScriptedUpstream speaks raw bytes, so it can misbehave; the first segment of
the request path picks the behaviour (see BEHAVIOURS). It records every
connection in `conns` by the request's `id` query parameter.

DeadPort reserves a port on which nothing listens (a bound socket that never
listens answers SYN with RST), so connecting to it is refused.
"""

import asyncio
import base64
import hashlib
import json
import socket
import struct
import threading
import time
import urllib.parse

import websockets  # Debian's python3-websockets (10.4)

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
CMD = "@@"
WAIT = 30.0  # seconds a helper waits for the loop thread


def accept_for(key):
    digest = hashlib.sha1((key + WS_GUID).encode("ascii")).digest()
    return base64.b64encode(digest).decode("ascii")


class _LoopThread:
    """An event loop running in a daemon thread."""

    def __init__(self, name):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def _run(self):
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            tasks = [t for t in asyncio.all_tasks(self.loop) if not t.done()]
            for t in tasks:
                t.cancel()
            if tasks:
                self.loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            self.loop.close()

    def call(self, coro, timeout=WAIT):
        """Runs `coro` on the loop and returns its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self):
        if self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(WAIT)


class _Upstream:
    """Common start/stop/url for the servers below."""

    def __init__(self, name):
        self.name = name
        self.port = None
        self._lt = None
        self._cond = threading.Condition()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def url(self, path=""):
        return f"ws://127.0.0.1:{self.port}{path}"

    def start(self):
        self._lt = _LoopThread(f"upstream-{self.name}")
        try:
            self.port = self._lt.call(self._start())
        except BaseException:
            self._lt.stop()
            raise
        return self

    def stop(self):
        if self._lt is None:
            return
        try:
            self._lt.call(self._stop())
        except Exception:  # noqa: BLE001 - stopping must not mask a test failure
            pass
        self._lt.stop()
        self._lt = None

    def _notify(self):
        with self._cond:
            self._cond.notify_all()

    def wait_until(self, predicate, timeout=WAIT, what="condition"):
        """Waits until predicate() is truthy (re-checked on every change and
        every 0.1 s); returns its value or raises AssertionError."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                value = predicate()
                if value:
                    return value
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"upstream {self.name}: timed out waiting for {what}")
                self._cond.wait(min(left, 0.1))


# ---- a real WebSocket server ---------------------------------------------------------


class EchoUpstream(_Upstream):
    """websockets echo server that records every connection it accepted."""

    def __init__(self, name, subprotocols=None, compression=None):
        super().__init__(name)
        self.subprotocols = subprotocols
        self.compression = compression
        self.connections = []  # one dict per accepted connection, in order
        self._server = None

    async def _start(self):
        self._server = await websockets.serve(
            self._handler, "127.0.0.1", 0, subprotocols=self.subprotocols,
            compression=self.compression, max_size=None, ping_interval=None,
            close_timeout=10)
        return self._server.sockets[0].getsockname()[1]

    async def _stop(self):
        self._server.close()
        await asyncio.wait_for(self._server.wait_closed(), 20)

    def _describe(self, ws):
        return {
            "name": self.name,
            "path": ws.path,
            "headers": [[n, v] for n, v in ws.request_headers.raw_items()],
            "subprotocol": ws.subprotocol,
            "extensions": [e.name for e in ws.extensions],
        }

    async def _handler(self, ws):
        rec = self._describe(ws)
        rec.update(closed=False, close_code=None, close_reason=None, messages=0)
        with self._cond:
            self.connections.append(rec)
            self._cond.notify_all()
        try:
            async for msg in ws:
                rec["messages"] += 1
                if isinstance(msg, str) and msg.startswith(CMD):
                    await self._command(ws, msg[len(CMD):])
                else:
                    await ws.send(msg)
        except websockets.ConnectionClosed:
            pass
        finally:
            if ws.close_rcvd is not None:
                rec["close_code"] = ws.close_rcvd.code
                rec["close_reason"] = ws.close_rcvd.reason
            rec["closed"] = True
            self._notify()

    async def _command(self, ws, cmd):
        verb, _, arg = cmd.partition(" ")
        if verb == "whoami":
            await ws.send(json.dumps(self._describe(ws)))
        elif verb == "send-binary":
            await ws.send(b"\x5a" * int(arg))
        elif verb == "send-text":
            await ws.send("t" * int(arg))
        elif verb == "close":
            code, _, reason = arg.partition(" ")
            await ws.close(int(code), reason)
        elif verb == "abort":
            ws.transport.abort()
        else:
            await ws.send("unknown command " + cmd)

    def connection(self, path_contains, timeout=WAIT):
        """The first recorded connection whose path contains `path_contains`."""
        def find():
            with_path = [c for c in self.connections if path_contains in c["path"]]
            return with_path[0] if with_path else None
        return self.wait_until(find, timeout, f"a connection to {path_contains!r}")

    def closed_connection(self, path_contains, timeout=WAIT):
        """Like connection(), once that connection's handler has ended."""
        rec = self.connection(path_contains, timeout)
        self.wait_until(lambda: rec["closed"], timeout, f"{path_contains!r} to close")
        return rec


# ---- a raw, scriptable server --------------------------------------------------------


def server_frame(opcode, payload, fin=True):
    """An unmasked frame as a server sends it."""
    n = len(payload)
    head = bytes([(0x80 if fin else 0) | opcode])
    if n < 126:
        head += bytes([n])
    elif n < 65536:
        head += bytes([126]) + struct.pack("!H", n)
    else:
        head += bytes([127]) + struct.pack("!Q", n)
    return head + payload


class FrameCounter:
    """Parses a stream of frames incrementally without keeping data payloads:
    counts frames, payload bytes and complete messages, and keeps the first
    close frame's code and reason."""

    MAX_HEADER = 14

    def __init__(self):
        self._hbuf = b""  # bytes of an incomplete header
        self._skip = 0  # payload bytes of the current frame still to come
        self._fin = self._op = None
        self._mask = b""
        self._control = None  # payload of the current control frame
        self.frames = 0
        self.messages = 0
        self.payload_bytes = 0
        self.wire_bytes = 0
        self.close = None  # (code, reason) of the first close frame
        self.masked = None  # whether the last frame carried a mask

    def feed(self, data):
        self.wire_bytes += len(data)
        mv = memoryview(data)
        pos = 0
        while pos < len(mv):
            if self._skip > 0:
                n = min(self._skip, len(mv) - pos)
                if self._control is not None:
                    self._control.extend(mv[pos:pos + n])
                self._skip -= n
                self.payload_bytes += n
                pos += n
                if self._skip == 0:
                    self._end_frame()
                continue
            take = min(self.MAX_HEADER - len(self._hbuf), len(mv) - pos)
            self._hbuf += bytes(mv[pos:pos + take])
            pos += take
            used = self._header()
            if used is None:
                continue  # incomplete: the loop ends once data runs out
            pos -= len(self._hbuf) - used  # give back what followed the header
            self._hbuf = b""
            if self._skip == 0:
                self._end_frame()

    def _header(self):
        """Parses _hbuf; the header's length, or None when incomplete."""
        b = self._hbuf
        if len(b) < 2:
            return None
        n = b[1] & 0x7F
        pos = 2
        if n == 126:
            if len(b) < 4:
                return None
            (n,) = struct.unpack("!H", b[2:4])
            pos = 4
        elif n == 127:
            if len(b) < 10:
                return None
            (n,) = struct.unpack("!Q", b[2:10])
            pos = 10
        self.masked = bool(b[1] & 0x80)
        self._mask = b""
        if self.masked:
            if len(b) < pos + 4:
                return None
            self._mask = b[pos:pos + 4]
            pos += 4
        self._fin = bool(b[0] & 0x80)
        self._op = b[0] & 0x0F
        self._control = bytearray() if self._op >= 0x8 else None
        self._skip = n
        return pos

    def _end_frame(self):
        self.frames += 1
        if self._op < 0x8 and self._fin:
            self.messages += 1
        if self._op == 0x8 and self.close is None:
            data = bytes(self._control)
            if self._mask:
                data = bytes(c ^ self._mask[i % 4] for i, c in enumerate(data))
            if len(data) >= 2:
                self.close = (struct.unpack("!H", data[:2])[0], data[2:])
            else:
                self.close = (None, b"")
        self._control = None


class ScriptedUpstream(_Upstream):
    """A raw TCP server; the first path segment of the upgrade request picks
    how it answers. Every connection is recorded in `conns[id]` (the `id`
    query parameter, or the path) as a dict with at least `head` (the request
    head as text) and `done`."""

    FLOOD_MESSAGE = 1 << 20  # payload bytes of each /flood message

    def __init__(self, name="scripted"):
        super().__init__(name)
        self.conns = {}
        self._server = None
        self._writers = set()

    async def _start(self):
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self._server.sockets[0].getsockname()[1]

    async def _stop(self):
        self._server.close()
        for w in list(self._writers):
            w.transport.abort()
        await asyncio.wait_for(self._server.wait_closed(), 20)

    async def _serve(self, reader, writer):
        self._writers.add(writer)
        rec = {"head": None, "done": False}
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            text = head.decode("latin-1")
            request_line = text.split("\r\n", 1)[0]
            target = request_line.split(" ")[1] if request_line.count(" ") >= 2 else "/"
            parsed = urllib.parse.urlsplit(target)
            query = urllib.parse.parse_qs(parsed.query)
            conn_id = query.get("id", [parsed.path])[0]
            headers = {}
            for line in text.split("\r\n")[1:]:
                name, sep, value = line.partition(":")
                if sep:
                    headers[name.strip().lower()] = value.strip()
            rec.update(head=text, path=target, headers=headers)
            with self._cond:
                self.conns[conn_id] = rec
                self._cond.notify_all()
            behaviour = parsed.path.strip("/").split("/")[0]
            fn = getattr(self, "_do_" + behaviour.replace("-", "_"), None)
            if fn is None:
                writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
            else:
                await fn(reader, writer, rec, headers, query)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            rec["done"] = True
            self._notify()
            self._writers.discard(writer)
            if not writer.transport.is_closing():
                writer.close()  # FIN after whatever was written

    def conn(self, conn_id, timeout=WAIT):
        return self.wait_until(lambda: self.conns.get(conn_id), timeout,
                               f"connection {conn_id!r}")

    # -- helpers
    @staticmethod
    def _switching(headers, accept=None, extra=""):
        key = headers.get("sec-websocket-key", "")
        accept = accept_for(key) if accept is None else accept
        return ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n{extra}\r\n"
                ).encode("latin-1")

    @staticmethod
    async def _until_eof(reader):
        while await reader.read(65536):
            pass

    # -- behaviours: answers that are not a valid upgrade
    async def _do_garbage(self, reader, writer, rec, headers, query):
        writer.write(b"\x00\x01 this is not HTTP at all \xff\xfe\r\n\r\n")
        await writer.drain()
        await self._until_eof(reader)

    async def _do_ok200(self, reader, writer, rec, headers, query):
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                     b"Content-Length: 5\r\n\r\nhello")
        await writer.drain()
        await self._until_eof(reader)

    async def _do_wrongaccept(self, reader, writer, rec, headers, query):
        writer.write(self._switching(headers, accept=accept_for("AAAAAAAAAAAAAAAAAAAAAA==")))
        await writer.drain()
        await self._until_eof(reader)

    async def _do_badproto(self, reader, writer, rec, headers, query):
        writer.write(self._switching(headers, extra="Sec-WebSocket-Protocol: unoffered.v9\r\n"))
        await writer.drain()
        await self._until_eof(reader)

    async def _do_pickproto(self, reader, writer, rec, headers, query):
        """101 selecting the subprotocol named by the `p` query parameter,
        whatever was offered."""
        proto = query.get("p", ["x"])[0]
        writer.write(self._switching(headers, extra=f"Sec-WebSocket-Protocol: {proto}\r\n"))
        await writer.drain()
        await self._until_eof(reader)

    async def _do_badext(self, reader, writer, rec, headers, query):
        writer.write(self._switching(
            headers, extra="Sec-WebSocket-Extensions: x-unoffered-extension\r\n"))
        await writer.drain()
        await self._until_eof(reader)

    async def _do_hangup(self, reader, writer, rec, headers, query):
        pass  # closes without answering

    async def _do_silent(self, reader, writer, rec, headers, query):
        await self._until_eof(reader)  # never answers

    # -- refusals passed through to the client
    REFUSAL_BODY = b"upstream says no: you are not on the list\n"

    async def _do_forbidden(self, reader, writer, rec, headers, query):
        body = self.REFUSAL_BODY
        writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain; charset=utf-8\r\n"
                     b"WWW-Authenticate: Bearer realm=\"upstream\", "
                     b"error=\"insufficient_scope\"\r\n"
                     b"X-Upstream-Internal: secret-detail\r\n"
                     + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                     + body)
        await writer.drain()

    async def _do_busy(self, reader, writer, rec, headers, query):
        body = b"come back later"
        writer.write(b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 7\r\n"
                     b"Content-Type: text/plain\r\n"
                     + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        await writer.drain()

    async def _do_eofbody(self, reader, writer, rec, headers, query):
        """A refusal whose body ends at the close (no Content-Length)."""
        writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\n"
                     b"Connection: close\r\n\r\n" + self.REFUSAL_BODY)
        await writer.drain()

    async def _do_chunkedbody(self, reader, writer, rec, headers, query):
        """A refusal with a chunked body."""
        body = self.REFUSAL_BODY
        writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n"
                     + b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n")
        await writer.drain()
        await self._until_eof(reader)

    async def _do_http10(self, reader, writer, rec, headers, query):
        """An HTTP/1.0 refusal."""
        body = self.REFUSAL_BODY
        writer.write(b"HTTP/1.0 403 Forbidden\r\nContent-Type: text/plain\r\n"
                     + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        await writer.drain()

    BIG_BODY = bytes((b"0123456789abcdef"[i % 16] for i in range(10000)))

    async def _do_bigrefusal(self, reader, writer, rec, headers, query):
        body = self.BIG_BODY
        writer.write(b"HTTP/1.1 401 Unauthorized\r\nContent-Type: text/plain\r\n"
                     + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        await writer.drain()

    # -- a valid upgrade, then trouble
    async def _do_after101(self, reader, writer, rec, headers, query):
        writer.write(self._switching(headers))
        await writer.drain()  # then closes (finally: abort)

    async def _do_die(self, reader, writer, rec, headers, query):
        """101, one text frame "hello", waits for one client frame, then drops
        the connection: ?how=rst (reset) or ?how=fin (plain close)."""
        writer.write(self._switching(headers) + server_frame(0x1, b"hello"))
        await writer.drain()
        counter = FrameCounter()
        while counter.frames == 0:
            data = await reader.read(65536)
            if not data:
                return
            counter.feed(data)
        how = query.get("how", ["rst"])[0]
        if how == "fin":
            writer.close()
        else:
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
        rec["died"] = True

    async def _do_flood(self, reader, writer, rec, headers, query):
        """101, then `n` binary messages of FLOOD_MESSAGE bytes as fast as the
        connection takes them; rec['sent'] counts payload bytes written."""
        total = int(query.get("n", ["200"])[0])
        rec.update(sent=0, finished=False)
        writer.write(self._switching(headers))
        frame = server_frame(0x2, b"\xa5" * self.FLOOD_MESSAGE)
        for _ in range(total):
            writer.write(frame)
            await writer.drain()
            rec["sent"] += self.FLOOD_MESSAGE
            self._notify()
        rec["finished"] = True
        self._notify()
        await self._until_eof(reader)

    async def _do_sink(self, reader, writer, rec, headers, query):
        """101, then reads nothing until rec['resume'] (a threading.Event) is
        set; then reads everything, counting frames in rec['counter']."""
        rec.update(resume=threading.Event(), counter=FrameCounter())
        writer.write(self._switching(headers))
        await writer.drain()
        while not rec["resume"].is_set():
            await asyncio.sleep(0.05)
        while True:
            data = await reader.read(1 << 20)
            if not data:
                return
            rec["counter"].feed(data)
            self._notify()


# ---- a refused port ------------------------------------------------------------------


class DeadPort:
    """A port reserved by a bound socket that never listens: connecting to it
    is refused, and no other server can take the port meanwhile."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]

    def url(self, path=""):
        return f"ws://127.0.0.1:{self.port}{path}"

    def stop(self):
        self.sock.close()
