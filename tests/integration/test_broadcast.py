"""Broadcast rooms: every member on every worker gets each message once, in order."""

import asyncio
import os
import re
import resource
import signal
import socket
import struct
import threading
import time
import unittest

from wsgate_harness import (IO_TIMEOUT, OP_CLOSE, OP_TEXT, Gateway, GatewayTestCase,
                            RawClient, client_frame, close_payload, run_async, ws_connect)

MEMBERS = 1000
SENDERS = 4
PER_SENDER = 25

CONFIG = """\
listeners:
  - address: 127.0.0.1:0
workers: 2
limits: { max_connections: 5000, max_message_size: 64KiB }
log: { level: info, format: text }
routes:
  - { name: chat, path_prefix: /chat/, handler: broadcast }
  - { name: q, path: /q, handler: broadcast, room_from: query=room, echo_to_sender: true }
  - { name: small, path_prefix: /small/, handler: broadcast, max_room_members: 2, max_rooms: 2 }
  - { name: one, path: /one, handler: broadcast }
"""


def raise_nofile(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


async def recv(ws):
    return await asyncio.wait_for(ws.recv(), IO_TIMEOUT)


class BroadcastTest(GatewayTestCase):
    CONFIG = CONFIG

    @classmethod
    def setUpClass(cls):
        # The gateway inherits this limit: 2 x MEMBERS sockets plus slack.
        if raise_nofile(2 * MEMBERS + 2000) < 2 * MEMBERS + 500:
            raise unittest.SkipTest("not enough file descriptors for the room test")
        super().setUpClass()

    def test_room_from_path_excludes_sender(self):
        async def go():
            async with ws_connect(self.url("/chat/r1")) as a, \
                    ws_connect(self.url("/chat/r1")) as b, \
                    ws_connect(self.url("/chat/r2")) as c, \
                    ws_connect(self.url("/chat/r2")) as d:
                await a.send("from a")
                self.assertEqual(await recv(b), "from a")
                await b.send(b"\x00binary from b")
                # A's own message would have been queued to it before B
                # even received it: the first thing A gets is B's.
                self.assertEqual(await recv(a), b"\x00binary from b")
                await d.send("r2 only")
                self.assertEqual(await recv(c), "r2 only")
                await c.send("r2 back")
                self.assertEqual(await recv(d), "r2 back")
                await a.send("r1 again")
                self.assertEqual(await recv(b), "r1 again")
        run_async(go())

    def test_room_from_query_includes_sender(self):
        async def go():
            async with ws_connect(self.url("/q?x=1&room=a%20b")) as a, \
                    ws_connect(self.url("/q?room=a+b")) as b, \
                    ws_connect(self.url("/q?room=other")) as c:
                await a.send("hello")
                self.assertEqual(await recv(a), "hello")
                self.assertEqual(await recv(b), "hello")
                await c.send("alone")
                self.assertEqual(await recv(c), "alone")
                await b.send("second")
                self.assertEqual(await recv(a), "second")
                self.assertEqual(await recv(b), "second")
        run_async(go())

    def test_no_room_is_closed_1008(self):
        for path, reason in [("/q", "no room parameter in the query"),
                             ("/q?room=%zz", "malformed room parameter"),
                             ("/chat/", "no room in the path"),
                             ("/chat/" + "x" * 300, "room name too long")]:
            with RawClient(self.port) as c:
                c.handshake(path)
                code, why = c.read_close()
                self.assertEqual((code, why.decode()), (1008, reason), path)

    def test_route_wide_room(self):
        async def go():
            async with ws_connect(self.url("/one")) as a, ws_connect(self.url("/one")) as b:
                await a.send("all of /one")
                self.assertEqual(await recv(b), "all of /one")
        run_async(go())

    def test_limits(self):
        async def go():
            async with ws_connect(self.url("/small/a")) as a1, \
                    ws_connect(self.url("/small/a")) as a2, \
                    ws_connect(self.url("/small/b")) as b1:
                with RawClient(self.port) as c:
                    c.handshake("/small/a")
                    self.assertEqual(c.read_close(), (1013, b"room is full"))
                with RawClient(self.port) as c:
                    c.handshake("/small/c")
                    self.assertEqual(c.read_close(), (1013, b"too many rooms"))
                await a1.send("still fine")
                self.assertEqual(await recv(a2), "still fine")
                await b1.close()
            # Rooms are dropped when empty: a new one fits again.
            async with ws_connect(self.url("/small/c")) as c1, \
                    ws_connect(self.url("/small/c")) as c2:
                await c1.send("c works")
                self.assertEqual(await recv(c2), "c works")
        run_async(go())

    def test_thousand_members_over_all_workers(self):
        room = "/chat/big"

        async def member(i, conns):
            ws = await ws_connect(self.url(room)).__aenter__()
            conns[i] = ws

        async def collect(i, ws, expect):
            got = []
            while len(got) < expect:
                got.append(await asyncio.wait_for(ws.recv(), 120))
            return i, got

        async def go():
            conns = [None] * MEMBERS
            for start in range(0, MEMBERS, 100):
                await asyncio.gather(*(member(i, conns) for i in range(start, start + 100)))
            try:
                # Every upgrade is logged with its worker: both took members.
                # (stderr is read by another thread: wait for all the lines.)
                deadline = time.monotonic() + 60
                while True:
                    lines = [l for l in self.gw.stderr_lines
                             if "upgrade" in l and f'path="{room}"' in l]
                    if len(lines) >= MEMBERS or time.monotonic() > deadline:
                        break
                    await asyncio.sleep(0.05)
                workers = {re.search(r"worker=(\d+)", l).group(1) for l in lines}
                self.assertEqual(len(lines), MEMBERS)
                self.assertEqual(workers, {"0", "1"})
                senders = conns[:SENDERS]
                total = SENDERS * PER_SENDER
                tasks = [asyncio.create_task(
                    collect(i, ws, total - (PER_SENDER if i < SENDERS else 0)))
                    for i, ws in enumerate(conns)]

                async def send_all(s, ws):
                    for k in range(PER_SENDER):
                        await ws.send(f"{s}:{k}")
                await asyncio.gather(*(send_all(s, ws) for s, ws in enumerate(senders)))
                results = await asyncio.gather(*tasks)
                for i, got in results:
                    per = {}
                    for m in got:
                        s, k = m.split(":")
                        per.setdefault(int(s), []).append(int(k))
                    want = {s: list(range(PER_SENDER)) for s in range(SENDERS) if s != i}
                    self.assertEqual(per, want, f"member {i}")
                # Exactly once: nothing more is on its way. A last message
                # from one sender is the next thing everyone else gets.
                await senders[0].send("end")
                for i, ws in enumerate(conns[1:], start=1):
                    self.assertEqual(await asyncio.wait_for(ws.recv(), 60), "end", i)
            finally:
                await asyncio.gather(*(ws.close() for ws in conns if ws is not None))
        # Below ctest's TIMEOUT for this whole file (300 s): a hang fails
        # here, with a traceback, rather than being killed from outside.
        run_async(go(), timeout=240)

    def test_slow_member_does_not_stall_the_room(self):
        async def go():
            slow = socket.create_connection(("127.0.0.1", self.port))
            slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            raw = RawClient.__new__(RawClient)
            raw.sock, raw.buf = slow, b""
            raw.handshake("/chat/slow")
            try:
                async with ws_connect(self.url("/chat/slow")) as sender, \
                        ws_connect(self.url("/chat/slow")) as reader:
                    payload = "x" * (32 * 1024)
                    n = 400  # 12.8 MB: far beyond the slow one's cap and buffers

                    # The reader keeps up (at most 4 messages behind, well
                    # under its send cap); the slow one never reads.
                    for k in range(n):
                        await sender.send(f"{k:05d}" + payload)
                        if k >= 4:
                            m = await asyncio.wait_for(reader.recv(), 60)
                            self.assertEqual(m, f"{k - 4:05d}" + payload)
                    for k in range(n - 4, n):
                        m = await asyncio.wait_for(reader.recv(), 60)
                        self.assertEqual(m, f"{k:05d}" + payload)
                self.gw.wait_for_log(r"broadcast_slow route=chat", timeout=60)
            finally:
                slow.close()
        run_async(go())

    def test_bad_frame_leaves_the_room(self):
        # /small/ rooms hold two members: the third fits only once the
        # member the gateway failed (1002, before its close frame is sent)
        # has left the room.
        async def go():
            async with ws_connect(self.url("/small/bad")) as a:
                with RawClient(self.port) as c:
                    c.handshake("/small/bad")
                    c.send(client_frame(0x3, b"reserved opcode"))
                    self.assertEqual(c.read_close()[0], 1002)
                async with ws_connect(self.url("/small/bad")) as b:
                    await a.send("now b")
                    self.assertEqual(await recv(b), "now b")
        run_async(go())


SLOW_CONFIG = """\
listeners:
  - address: 127.0.0.1:0
workers: 1
log: { level: info, format: text }
routes:
  - { name: sr-close, path_prefix: /close/, handler: broadcast, max_send_queue: 64KiB,
      slow_reader: close, ping_interval: off }
  - { name: sr-drop, path_prefix: /drop/, handler: broadcast, max_send_queue: 64KiB,
      slow_reader: drop, ping_interval: off }
"""

SLOW_PAYLOAD = 16 * 1024  # four messages fill the 64 KiB queue
# Enough to fill any kernel buffers on the way too (the gateway's send buffer
# may grow to a few MiB): the burst ends as soon as the gateway says the
# queue is full, long before this.
SLOW_MAX_BURST = 4000


def slow_client(port, path):
    """A member that reads nothing: a tiny receive window, so that the
    kernel buffers little for it and the gateway's own queue soon fills."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: the window
    sock.settimeout(IO_TIMEOUT)
    sock.connect(("127.0.0.1", port))
    c = RawClient.__new__(RawClient)
    c.sock, c.buf = sock, b""
    c.handshake(path)
    return c


def closed_line(gw, conn):
    """The ws_closed line of connection `conn` as a dict of its fields."""
    line = gw.wait_for_log(rf"ws_closed .*\bconn={conn}\b")
    return dict(re.findall(r"(\w+)=(\S+)", line))


class SlowReaderPolicyTest(GatewayTestCase):
    """A member whose queue would pass max_send_queue: slow_reader: close
    closes it with 1008, slow_reader: drop skips it for that message only;
    either way the members that read get everything, and the counters of
    the ws_closed line say what happened. One worker, so that once a member
    that reads has a message, every member of the room has been offered it."""
    CONFIG = SLOW_CONFIG

    def burst(self, sender, reader, until, start=0):
        """Sends numbered messages in lockstep with a member that reads them,
        until a log line matches `until`; returns how many were sent."""
        rx = re.compile(until)
        for k in range(start, start + SLOW_MAX_BURST):
            msg = f"{k:06d}".encode() + b"x" * SLOW_PAYLOAD
            sender.send(client_frame(OP_TEXT, msg))
            self.assertEqual(reader.read_frame(), (True, OP_TEXT, msg))
            if any(rx.search(l) for l in self.gw.stderr_lines):
                return k + 1
        self.fail(f"no log line matches {until!r} after {SLOW_MAX_BURST} messages")

    def numbered(self, payloads):
        """The numbers of the burst messages among payloads, checked to be
        whole and in the order sent."""
        out = []
        for p in payloads:
            self.assertEqual(len(p), 6 + SLOW_PAYLOAD)
            self.assertEqual(p[6:], b"x" * SLOW_PAYLOAD)
            out.append(int(p[:6]))
        self.assertEqual(out, sorted(set(out)), "each at most once, in order")
        return out

    def test_close_policy_closes_the_slow_member_with_1008(self):
        slow = slow_client(self.port, "/close/r")
        self.addCleanup(slow.close)
        with RawClient(self.port) as sender, RawClient(self.port) as reader:
            sender.handshake("/close/r")
            reader.handshake("/close/r")
            sent = self.burst(sender, reader, r"ws_slow_reader action=close code=1008 "
                              r"queued=\d+ limit=65536 route=sr-close conn=\d+")
            line = self.gw.wait_for_log(r"ws_slow_reader action=close .*route=sr-close")
            conn = re.search(r"conn=(\d+)", line).group(1)
            self.gw.wait_for_log(r"broadcast_slow route=sr-close")
            # The room goes on without it: the reader gets everything after.
            for k in range(sent, sent + 20):
                msg = f"{k:06d}".encode() + b"x" * SLOW_PAYLOAD
                sender.send(client_frame(OP_TEXT, msg))
                self.assertEqual(reader.read_frame(), (True, OP_TEXT, msg))
            # The slow member, reading at last: what was queued before the
            # limit, in order, then the close frame.
            got = []
            while True:
                fin, op, payload = slow.read_frame()
                if op == OP_CLOSE:
                    break
                self.assertEqual((fin, op), (True, OP_TEXT))
                got.append(payload)
            self.assertEqual(struct.unpack("!H", payload[:2])[0], 1008)
            self.assertEqual(payload[2:], b"slow reader")
            nums = self.numbered(got)
            self.assertEqual(nums, list(range(len(nums))), "nothing skipped before")
            self.assertLess(len(nums), sent)
            slow.send(client_frame(OP_CLOSE, close_payload(1008)))
            self.assertTrue(slow.at_eof())
            fields = closed_line(self.gw, conn)
            self.assertEqual(fields["route"], "sr-close")
            self.assertEqual(int(fields["msgs_out"]), len(nums))
            self.assertEqual(fields["slow_reader_drops"], "0")
            self.assertEqual(fields["route_slow_reader_closes"], "1")
            self.assertEqual(fields["route_slow_reader_drops"], "0")
            # A newcomer joins the same room and gets the next message.
            with RawClient(self.port) as late:
                late.handshake("/close/r")
                sender.send(client_frame(OP_TEXT, "after the close"))
                self.assertEqual(reader.read_frame(), (True, OP_TEXT, b"after the close"))
                self.assertEqual(late.read_frame(), (True, OP_TEXT, b"after the close"))

    def test_drop_policy_skips_messages_and_keeps_the_member(self):
        slow = slow_client(self.port, "/drop/r")
        self.addCleanup(slow.close)
        with RawClient(self.port) as sender, RawClient(self.port) as reader:
            sender.handshake("/drop/r")
            reader.handshake("/drop/r")
            sent = self.burst(sender, reader, r"ws_slow_reader action=drop "
                              r"queued=\d+ limit=65536 route=sr-drop conn=\d+")
            line = self.gw.wait_for_log(r"ws_slow_reader action=drop .*route=sr-drop")
            conn = re.search(r"conn=(\d+)", line).group(1)
            # More while it still reads nothing: dropped for it alone.
            for k in range(sent, sent + 50):
                msg = f"{k:06d}".encode() + b"x" * SLOW_PAYLOAD
                sender.send(client_frame(OP_TEXT, msg))
                self.assertEqual(reader.read_frame(), (True, OP_TEXT, msg))
            sent += 50

            # Now it reads (on a thread: the queue drains as it does).
            got, done = [], threading.Event()

            def collect():
                try:
                    while True:
                        fin, op, payload = slow.read_frame()
                        got.append((op, payload))
                        if op != OP_TEXT or payload == b"last":
                            return
                finally:
                    done.set()
            t = threading.Thread(target=collect, daemon=True)
            t.start()
            # Markers until one reaches it: its queue was empty then, so
            # what follows (a few bytes) is never over the limit.
            markers = 0
            deadline = time.monotonic() + IO_TIMEOUT
            while not any(p.startswith(b"m:") for _, p in list(got)):
                self.assertLess(time.monotonic(), deadline, "no marker got through")
                self.assertFalse(done.is_set(), got[-1:])
                msg = f"m:{markers}".encode()
                sender.send(client_frame(OP_TEXT, msg))
                self.assertEqual(reader.read_frame(), (True, OP_TEXT, msg))
                markers += 1
                time.sleep(0.02)
            tail = [b"t:0", b"t:1", b"t:2", b"last"]
            for msg in tail:
                sender.send(client_frame(OP_TEXT, msg))
                self.assertEqual(reader.read_frame(), (True, OP_TEXT, msg))
            self.assertTrue(done.wait(IO_TIMEOUT))
            t.join()
            ops = {op for op, _ in got}
            self.assertEqual(ops, {OP_TEXT}, "no close, only messages")
            payloads = [p for _, p in got]
            first_marker = next(i for i, p in enumerate(payloads) if p.startswith(b"m:"))
            nums = self.numbered(payloads[:first_marker])
            self.assertEqual(nums[0], 0)
            self.assertLess(len(nums), sent, "some were dropped")
            seen = [int(p[2:]) for p in payloads[first_marker:] if p.startswith(b"m:")]
            self.assertEqual(seen, sorted(set(seen)))
            self.assertEqual(payloads[first_marker + len(seen):], tail)
            # Still open both ways: it can talk to the room.
            slow.send(client_frame(OP_TEXT, "still here"))
            self.assertEqual(reader.read_frame(), (True, OP_TEXT, b"still here"))
            slow.send(client_frame(OP_CLOSE, close_payload(1000)))
            self.assertEqual(slow.read_close(), (1000, b""))
            # Every message it did not get was counted as a drop.
            fields = closed_line(self.gw, conn)
            offered = sent + markers + len(tail)
            self.assertEqual(fields["route"], "sr-drop")
            self.assertEqual(int(fields["msgs_out"]), len(payloads))
            self.assertEqual(int(fields["slow_reader_drops"]), offered - len(payloads))
            self.assertEqual(fields["route_slow_reader_drops"], fields["slow_reader_drops"])
            self.assertEqual(fields["route_slow_reader_closes"], "0")
        self.assertFalse([l for l in self.gw.stderr_lines
                          if "ws_slow_reader action=close" in l and "sr-drop" in l])


class BroadcastReloadTest(unittest.TestCase):
    """Rooms belong to the route's name: a reload does not split them."""

    def test_members_before_and_after_a_reload_share_the_room(self):
        base = ("listeners:\n  - address: 127.0.0.1:0\nworkers: 2\n"
                "log: { level: info, format: text }\nroutes:\n"
                "  - { name: chat, path_prefix: /chat/, handler: broadcast%s }\n")
        gw = Gateway(base % "")
        self.addCleanup(gw.kill)
        gw.start()
        cfg = os.path.join(gw._tmp.name, "wsgate.yaml")
        url = f"ws://127.0.0.1:{gw.port}/chat/r"

        async def go():
            async with ws_connect(url) as old:
                with open(cfg, "w", encoding="utf-8") as f:
                    f.write(base % ", echo_to_sender: true")
                gw.signal(signal.SIGHUP)
                gw.wait_for_log(r"reload_applied worker=0 generation=2")
                gw.wait_for_log(r"reload_applied worker=1 generation=2")
                async with ws_connect(url) as new:
                    await old.send("from before")
                    self.assertEqual(await recv(new), "from before")
                    # Each sender keeps its own generation's echo_to_sender.
                    await new.send("from after")
                    self.assertEqual(await recv(new), "from after")
                    self.assertEqual(await recv(old), "from after")
        run_async(go())
        gw.check_exit()


class BroadcastTlsTest(unittest.TestCase):
    """Shared frames go out through TLS and plain listeners alike."""

    def test_room_over_tls_and_plain(self):
        import ssl
        import tempfile
        from test_tls import make_cert
        tmp = tempfile.TemporaryDirectory(prefix="wsgate-bc-tls-")
        self.addCleanup(tmp.cleanup)
        cert, key = make_cert(tmp.name)
        gw = Gateway("listeners:\n"
                     f"  - {{ address: 127.0.0.1:0, tls: {{ certificate: \"{cert}\", "
                     f"key: \"{key}\" }} }}\n"
                     "  - address: 127.0.0.1:0\n"
                     "workers: 2\nlog: { level: info, format: text }\nroutes:\n"
                     "  - { name: chat, path_prefix: /chat/, handler: broadcast }\n",
                     listeners=2)
        self.addCleanup(gw.kill)
        gw.start()
        ctx = ssl.create_default_context(cafile=cert)
        tls_line = gw.wait_for_log(r"listening address=127\.0\.0\.1:\d+ tls=yes")
        tls_port = int(re.search(r":(\d+) tls=yes", tls_line).group(1))
        plain_port = [p for p in gw.ports if p != tls_port][0]

        async def go():
            secure = [await ws_connect(f"wss://127.0.0.1:{tls_port}/chat/t", ssl=ctx)
                      .__aenter__() for _ in range(4)]
            plain = [await ws_connect(f"ws://127.0.0.1:{plain_port}/chat/t").__aenter__()
                     for _ in range(4)]
            try:
                blobs = [os.urandom(n) for n in (1, 125, 70000, 300 * 1024)]
                for blob in blobs:
                    await plain[0].send(blob)
                    for ws in secure + plain[1:]:
                        self.assertEqual(await recv(ws), blob)
                await secure[0].send("back over tls")
                for ws in secure[1:] + plain:
                    self.assertEqual(await recv(ws), "back over tls")
            finally:
                await asyncio.gather(*(ws.close() for ws in secure + plain))
        run_async(go())
        gw.check_exit()


if __name__ == "__main__":
    unittest.main()
