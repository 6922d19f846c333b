"""Broadcast rooms: every member on every worker gets each message once, in order."""

import asyncio
import os
import re
import resource
import signal
import socket
import time
import unittest

from wsgate_harness import (IO_TIMEOUT, Gateway, GatewayTestCase, RawClient,
                            client_frame, run_async, ws_connect)

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
        run_async(go(), timeout=600)

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
