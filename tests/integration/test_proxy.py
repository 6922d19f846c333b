"""The reverse proxy: routes to python upstreams, the upgrade request an
upstream sees, every failure status, and the frame-aware tunnel (relay, 1009,
upstream death, idle timeout, drain, bounded memory for slow readers)."""

import asyncio
import json
import os
import signal
import socket
import struct
import threading
import time
import unittest

import websockets

from upstreams import DeadPort, EchoUpstream, FrameCounter, ScriptedUpstream
from wsgate_harness import (IO_TIMEOUT, accept_for, OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG,
                            OP_TEXT, REASONS, SAMPLE_KEY, Gateway, GatewayTestCase,
                            client_frame, close_payload, run_async, small_quarantine_env,
                            upgrade_request, ws_connect)

TOKEN = "it-proxy-Tk93-token"
MiB = 1 << 20
KiB = 1 << 10
SIZES = [0, 125, 126, 64 * KiB, MiB]

CONFIG = """\
listeners:
  - address: 127.0.0.1:0
workers: 2
log: { level: info, format: text }
limits: { proxy_buffer: 64KiB, max_message_size: 2MiB, idle_timeout: 10m }
auth:
  token_from: [header, query=access_token, cookie=session, subprotocol]
  providers:
    edge: { type: static, tokens: ["${WSGATE_TEST_TOKEN}"] }
routes:
  - { name: foo, path: /foo, upstream: "ws://127.0.0.1:@A@" }
  - name: bar
    path_prefix: /bar/
    strip_prefix: true
    upstreams: ["ws://127.0.0.1:@B@", "ws://127.0.0.1:@C@/base"]
    balance: round_robin
  - { name: secure, path: /secure, upstream: "ws://127.0.0.1:@A@/sec", auth: edge }
  - name: hosted
    path: /hosted
    upstream: "ws://127.0.0.1:@A@"
    upstream_host: backend.local
  - { name: counted, path: /counted, upstream: "ws://127.0.0.1:@A@" }
  - { name: deflate, path: /deflate, upstream: "ws://127.0.0.1:@D@" }
  - { name: refused, path: /refused, upstream: "ws://127.0.0.1:@DEAD@" }
  - name: alldead
    path: /alldead
    upstreams: ["ws://127.0.0.1:@DEAD@", "ws://127.0.0.1:@DEAD2@"]
  - name: retry
    path: /retry
    upstreams: ["ws://127.0.0.1:@DEAD@", "ws://127.0.0.1:@B@/retried"]
    balance: round_robin
    backoff: 1m
  - name: scripted
    path_prefix: /s/
    strip_prefix: true
    upstream: "ws://127.0.0.1:@S@"
    upstream_timeout: 10s
  - name: slow
    path_prefix: /slow/
    strip_prefix: true
    upstream: "ws://127.0.0.1:@S@/silent"
    upstream_timeout: 1s
  - name: patient
    path_prefix: /patient/
    strip_prefix: true
    upstream: "ws://127.0.0.1:@S@/silent"
    upstream_timeout: 60s
"""


def fill(template, **ports):
    for name, port in ports.items():
        template = template.replace(f"@{name}@", str(port))
    return template


def mask_bytes(payload, mask):
    """payload XOR the repeated 4-byte mask, fast for large payloads."""
    n = len(payload)
    if n == 0:
        return b""
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(key, "little")).to_bytes(
        n, "little")


def fast_client_frame(opcode, payload, fin=True):
    """client_frame() for large payloads."""
    mask = os.urandom(4)
    n = len(payload)
    head = bytes([(0x80 if fin else 0) | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    return head + mask + mask_bytes(payload, mask)


def utf8_text(n):
    """Exactly n bytes of UTF-8 with multi-byte characters where n allows."""
    s = ("ws-\u00e9-" * (n // 4 + 1)).encode("utf-8")[:max(n - 2, 0)].decode(
        "utf-8", "ignore")
    while len(s.encode("utf-8")) < n:
        s += "z"
    return s


def header_map(headers):
    """{lower-case name: [values]} of a [[name, value], ...] list."""
    out = {}
    for name, value in headers:
        out.setdefault(name.lower(), []).append(value)
    return out


def wait_ended(c, limit=IO_TIMEOUT):
    """Reads and drops whatever comes until EOF or reset, up to `limit`
    seconds; returns (ended, close) with close the (code, reason) of a close
    frame seen on the way, or None."""
    counter = FrameCounter()
    if c.buf:
        counter.feed(c.buf)
        c.buf = b""
    c.sock.settimeout(0.5)
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            chunk = c.sock.recv(1 << 20)
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return True, counter.close
        if not chunk:
            return True, counter.close
        counter.feed(chunk)
    return False, counter.close


def check_error_shape(testcase, resp):
    """What every response the gateway writes itself must have."""
    testcase.assertEqual(resp.version, "HTTP/1.1", resp)
    testcase.assertIn(resp.status, REASONS, resp)
    testcase.assertEqual(resp.reason, REASONS[resp.status], resp)
    testcase.assertEqual((resp.header("Connection") or "").lower(), "close", resp)
    ctype = resp.header("Content-Type") or ""
    testcase.assertEqual(ctype.split(";")[0].strip().lower(), "text/plain", resp)
    testcase.assertEqual(len(resp.header_all("Content-Length")), 1, resp)
    testcase.assertGreater(len(resp.body), 0, resp)


class UpstreamsMixin:
    """Starts upstreams before the gateway (whose configuration names their
    ports) and stops them after it."""

    @classmethod
    def start_upstream(cls, up):
        cls.addClassCleanup(up.stop)
        return up if isinstance(up, DeadPort) else up.start()


class ProxyTest(UpstreamsMixin, GatewayTestCase):
    ENV = {"WSGATE_TEST_TOKEN": TOKEN}

    @classmethod
    def setUpClass(cls):
        cls.a = cls.start_upstream(EchoUpstream("A", subprotocols=["chat.v1"]))
        cls.b = cls.start_upstream(EchoUpstream("B"))
        cls.c = cls.start_upstream(EchoUpstream("C"))
        cls.d = cls.start_upstream(EchoUpstream("D", compression="deflate"))
        cls.s = cls.start_upstream(ScriptedUpstream("S"))
        cls.dead = cls.start_upstream(DeadPort())
        cls.dead2 = cls.start_upstream(DeadPort())
        cls.CONFIG = fill(CONFIG, A=cls.a.port, B=cls.b.port, C=cls.c.port, D=cls.d.port,
                          S=cls.s.port, DEAD=cls.dead.port, DEAD2=cls.dead2.port)
        super().setUpClass()

    # ---- helpers

    def whoami(self, path, **kw):
        """Connects with the websockets client; returns (the upstream's view
        of the request, the client's negotiated subprotocol)."""
        async def go():
            async with ws_connect(self.url(path), **kw) as ws:
                await ws.send("@@whoami")
                info = json.loads(await asyncio.wait_for(ws.recv(), IO_TIMEOUT))
                return info, ws.subprotocol
        return run_async(go())

    def raw_whoami(self, path, host="127.0.0.1", **kw):
        """The same over a raw socket, for byte-exact request headers; returns
        (the client's 101 response, the upstream's view)."""
        with self.raw() as c:
            resp = c.handshake(path, host=host, **kw)
            c.send(client_frame(OP_TEXT, b"@@whoami"))
            fin, op, payload = c.read_frame()
            self.assertEqual((fin, op), (True, OP_TEXT))
            c.send(client_frame(OP_CLOSE, close_payload(1000)))
            self.assertEqual(c.read_close()[0], 1000)
        return resp, json.loads(payload)

    def expect_status(self, path, status, **kw):
        """Sends an upgrade request; asserts the response status and that the
        socket is closed after it; returns the response."""
        with self.raw() as c:
            c.send(upgrade_request(path, **kw))
            resp = c.read_response()
            self.assertEqual(resp.status, status, resp)
            self.assertTrue(c.at_eof(), f"socket not closed after {resp.status}")
        return resp

    # ---- routing and the request path

    def test_foo_and_bar_reach_their_own_upstreams(self):
        info, _ = self.whoami("/foo")
        self.assertEqual((info["name"], info["path"]), ("A", "/foo"))
        seen = set()
        for _ in range(8):
            info, _ = self.whoami("/bar/x/y")
            seen.add((info["name"], info["path"]))
        self.assertEqual(seen, {("B", "/x/y"), ("C", "/base/x/y")})

    def test_query_is_preserved(self):
        info, _ = self.whoami("/foo?x=1&y=two&empty=&flag")
        self.assertEqual(info["path"], "/foo?x=1&y=two&empty=&flag")
        seen = set()
        for _ in range(8):
            info, _ = self.whoami("/bar/deep/er?q=%20a&r=2")
            seen.add((info["name"], info["path"]))
        self.assertEqual(seen, {("B", "/deep/er?q=%20a&r=2"), ("C", "/base/deep/er?q=%20a&r=2")})

    def test_url_path_prefix_without_strip(self):
        info, _ = self.whoami("/secure?k=v", extra_headers={"Authorization": "Bearer " + TOKEN})
        self.assertEqual((info["name"], info["path"]), ("A", "/sec/secure?k=v"))

    # ---- the upgrade request the upstream sees

    def test_forwarded_headers(self):
        host = "edge.example.test:8080"
        resp, info = self.raw_whoami(
            "/foo?id=hdrs", host=host, connection="Upgrade, X-Hop",
            extra=[("X-Hop", "hop-secret"), ("Keep-Alive", "timeout=5"),
                   ("Proxy-Connection", "keep-alive"),
                   ("Proxy-Authorization", "Basic c2VjcmV0"),
                   ("X-Forwarded-For", "203.0.113.7"),
                   ("X-Auth-Subject", "admin"), ("X_Auth_Subject", "admin"),
                   ("X-Custom", "kept-value"), ("Origin", "http://app.example.test"),
                   ("User-Agent", "wsgate-it/1"),
                   ("Sec-WebSocket-Protocol", "chat.v1"),
                   ("Sec-WebSocket-Extensions", "x-test-ext; p=1")])
        self.assertEqual(resp.header("Sec-WebSocket-Protocol"), "chat.v1", resp)
        h = header_map(info["headers"])
        where = json.dumps(info["headers"], indent=1)
        self.assertEqual(info["path"], "/foo?id=hdrs")
        self.assertEqual(h.get("host"), [host], where)
        self.assertEqual([v.lower() for v in h.get("upgrade", [])], ["websocket"], where)
        self.assertEqual(len(h.get("connection", [])), 1, where)
        conn_tokens = [t.strip().lower() for t in h["connection"][0].split(",")]
        self.assertIn("upgrade", conn_tokens, where)
        self.assertNotIn("x-hop", conn_tokens, where)
        for gone in ("x-hop", "keep-alive", "proxy-connection", "proxy-authorization"):
            self.assertNotIn(gone, h, f"hop-by-hop {gone} forwarded:\n{where}")
        xff = [e.strip() for v in h.get("x-forwarded-for", []) for e in v.split(",")]
        self.assertEqual(xff, ["203.0.113.7", "127.0.0.1"], where)
        self.assertEqual(h.get("x-forwarded-proto"), ["http"], where)
        self.assertEqual(h.get("x-forwarded-host"), [host], where)
        self.assertEqual(len(h.get("x-request-id", [])), 1, where)
        self.assertTrue(h["x-request-id"][0].strip(), where)
        self.assertEqual(h.get("sec-websocket-key"), [SAMPLE_KEY], where)
        self.assertEqual(h.get("sec-websocket-version"), ["13"], where)
        self.assertEqual(h.get("sec-websocket-protocol"), ["chat.v1"], where)
        self.assertIn("x-test-ext", " ".join(h.get("sec-websocket-extensions", [])), where)
        self.assertEqual(h.get("x-custom"), ["kept-value"], where)
        self.assertEqual(h.get("origin"), ["http://app.example.test"], where)
        self.assertEqual(h.get("user-agent"), ["wsgate-it/1"], where)
        spoofed = [v for n, v in info["headers"]
                   if n.lower().replace("_", "-") == "x-auth-subject"]
        self.assertEqual(spoofed, [], f"client-sent X-Auth-Subject arrived:\n{where}")

    def test_forwarded_for_and_request_id_without_client_values(self):
        ids = []
        for i in range(2):
            _, info = self.raw_whoami(f"/foo?id=rid{i}")
            h = header_map(info["headers"])
            where = json.dumps(info["headers"], indent=1)
            self.assertEqual(h.get("x-forwarded-for"), ["127.0.0.1"], where)
            self.assertEqual(h.get("host"), ["127.0.0.1"], where)
            self.assertEqual(len(h.get("x-request-id", [])), 1, where)
            ids.append(h["x-request-id"][0])
            self.assertNotIn("x-auth-subject", h, where)
        self.assertNotEqual(ids[0], ids[1], "two connections got the same X-Request-Id")

    def test_upstream_host(self):
        _, info = self.raw_whoami("/hosted", host="public.example.test")
        h = header_map(info["headers"])
        where = json.dumps(info["headers"], indent=1)
        self.assertEqual(h.get("host"), ["backend.local"], where)
        self.assertEqual(h.get("x-forwarded-host"), ["public.example.test"], where)

    # ---- identity and the consumed credential

    def check_authenticated(self, info, where_token="anywhere"):
        h = header_map(info["headers"])
        where = json.dumps(info, indent=1)
        self.assertEqual(h.get("x-auth-subject"), ["edge"], where)
        spoofs = [v for n, v in info["headers"]
                  if n.lower().replace("_", "-") == "x-auth-subject" and v != "edge"]
        self.assertEqual(spoofs, [], where)
        self.assertNotIn(TOKEN, info["path"], f"token left in the path ({where_token}):\n{where}")
        for name, value in info["headers"]:
            self.assertNotIn(TOKEN, value, f"token left in {name} ({where_token}):\n{where}")
        return h

    SPOOF = [("X-Auth-Subject", "admin"), ("X_Auth_Subject", "root")]

    def test_token_in_header_is_stripped(self):
        _, info = self.raw_whoami(
            "/secure?id=tok-h",
            extra=[("Authorization", "Bearer " + TOKEN)] + self.SPOOF)
        h = self.check_authenticated(info, "header")
        self.assertNotIn("authorization", h, json.dumps(info, indent=1))
        self.assertEqual(info["path"], "/sec/secure?id=tok-h")

    def test_token_in_query_is_stripped(self):
        _, info = self.raw_whoami(f"/secure?a=1&access_token={TOKEN}&b=2", extra=self.SPOOF)
        self.check_authenticated(info, "query")
        self.assertEqual(info["path"], "/sec/secure?a=1&b=2")
        _, info = self.raw_whoami(f"/secure?access_token={TOKEN}")
        self.check_authenticated(info, "query")
        self.assertEqual(info["path"].rstrip("?"), "/sec/secure")

    def test_token_in_cookie_is_stripped_other_cookies_kept(self):
        _, info = self.raw_whoami(
            "/secure?id=tok-c",
            extra=[("Cookie", f"theme=dark; session={TOKEN}; x=1")] + self.SPOOF)
        h = self.check_authenticated(info, "cookie")
        cookies = [c.strip() for v in h.get("cookie", []) for c in v.split(";")]
        self.assertEqual(sorted(cookies), ["theme=dark", "x=1"], json.dumps(info, indent=1))

    def test_token_in_subprotocol_is_stripped(self):
        resp, info = self.raw_whoami(
            "/secure?id=tok-p",
            extra=[("Sec-WebSocket-Protocol", f"bearer.{TOKEN}, chat.v1")] + self.SPOOF)
        h = self.check_authenticated(info, "subprotocol")
        offered = [p.strip() for v in h.get("sec-websocket-protocol", []) for p in v.split(",")]
        self.assertEqual(offered, ["chat.v1"], json.dumps(info, indent=1))
        self.assertEqual(resp.header("Sec-WebSocket-Protocol"), "chat.v1", resp)

    def test_token_in_subprotocol_with_websockets_client(self):
        info, chosen = self.whoami("/secure?id=tok-p2", subprotocols=[f"bearer.{TOKEN}",
                                                                       "chat.v1"])
        self.check_authenticated(info, "subprotocol")
        self.assertEqual(chosen, "chat.v1")
        self.assertEqual(info["subprotocol"], "chat.v1")

    def test_unauthenticated_never_reaches_the_upstream(self):
        self.expect_status("/secure?id=noauth-1", 401)
        self.expect_status("/secure?id=noauth-2", 401,
                           extra=[("Authorization", "Bearer not-the-token")])
        self.whoami("/foo?id=barrier")  # a later connection
        self.assertEqual([c["path"] for c in self.a.connections if "noauth" in c["path"]], [])

    # ---- subprotocols

    def test_subprotocol_selected_by_the_upstream(self):
        info, chosen = self.whoami("/foo?id=proto", subprotocols=["chat.v2", "chat.v1"])
        self.assertEqual(chosen, "chat.v1")
        self.assertEqual(info["subprotocol"], "chat.v1")
        offered = [p.strip() for n, v in info["headers"]
                   if n.lower() == "sec-websocket-protocol" for p in v.split(",")]
        self.assertEqual(offered, ["chat.v2", "chat.v1"])

    def test_no_subprotocol_when_the_upstream_selects_none(self):
        info, chosen = self.whoami("/foo?id=noproto", subprotocols=["chat.v9"])
        self.assertIsNone(chosen)
        self.assertIsNone(info["subprotocol"])

    # ---- failures

    def expect_gateway_error(self, path, status, **kw):
        resp = self.expect_status(path, status, **kw)
        check_error_shape(self, resp)
        return resp

    def assert_asked(self, conn_id):
        """The scripted upstream did receive the upgrade request: the status
        is its answer's, not an earlier failure's."""
        rec = self.s.conn(conn_id, timeout=10)
        self.assertTrue(rec["head"].startswith("GET /"), rec["head"])
        return rec

    def test_502_connection_refused(self):
        self.expect_gateway_error("/refused", 502)

    def test_502_when_every_upstream_is_refused(self):
        self.expect_gateway_error("/alldead", 502)
        self.expect_gateway_error("/alldead", 502)  # both now in backoff

    def test_502_garbage_answer(self):
        self.expect_gateway_error("/s/garbage?id=garbage", 502)
        self.assert_asked("garbage")

    def test_502_200_answer(self):
        self.expect_gateway_error("/s/ok200?id=ok200", 502)
        self.assert_asked("ok200")

    def test_502_wrong_accept(self):
        self.expect_gateway_error("/s/wrongaccept?id=wrongaccept", 502)
        self.assert_asked("wrongaccept")

    def test_502_unoffered_subprotocol(self):
        self.expect_gateway_error("/s/badproto?id=badproto", 502,
                                  extra=[("Sec-WebSocket-Protocol", "chat.v1")])
        self.assert_asked("badproto")

    def test_502_unoffered_extension(self):
        self.expect_gateway_error("/s/badext?id=badext", 502)
        self.assert_asked("badext")

    def test_502_upstream_closes_without_answering(self):
        self.expect_gateway_error("/s/hangup?id=hangup", 502)
        self.assert_asked("hangup")

    def test_504_upstream_never_answers(self):
        self.expect_gateway_error("/slow/x?id=slow", 504)
        rec = self.assert_asked("slow")
        self.assertTrue(rec["path"].startswith("/silent/x"), rec["path"])

    def test_client_leaving_during_the_upstream_handshake_releases_it(self):
        with self.raw() as c:
            c.send(upgrade_request("/patient/x?id=leaver"))
            rec = self.assert_asked("leaver")
        # Far less than the route's 60 s upstream_timeout.
        self.s.wait_until(lambda: rec["done"], IO_TIMEOUT,
                          "the upstream connection of a departed client to close")

    def test_403_refusal_passed_through_with_body(self):
        resp = self.expect_status("/s/forbidden?id=forbidden", 403)
        self.assertEqual(resp.reason, "Forbidden", resp)
        self.assertEqual(resp.body, ScriptedUpstream.REFUSAL_BODY, resp)
        self.assertEqual(resp.header("Content-Type"), "text/plain; charset=utf-8", resp)
        self.assertEqual(resp.header("WWW-Authenticate"),
                         'Bearer realm="upstream", error="insufficient_scope"', resp)
        self.assertEqual((resp.header("Connection") or "").lower(), "close", resp)

    def test_refusal_body_delimited_by_close_is_passed(self):
        # No Content-Length: the body ends where the upstream closes
        # (RFC 9112, section 6.3).
        resp = self.expect_status("/s/eofbody?id=eofbody", 403)
        self.assertEqual(resp.body, ScriptedUpstream.REFUSAL_BODY, resp)

    def test_refusal_with_chunked_body_is_well_formed(self):
        resp = self.expect_status("/s/chunkedbody?id=chunkedbody", 403)
        self.assertIn(resp.body, (b"", ScriptedUpstream.REFUSAL_BODY), resp)
        self.assertIsNone(resp.header("Transfer-Encoding"), resp)

    def test_http10_refusal_is_passed(self):
        resp = self.expect_status("/s/http10?id=http10", 403)
        self.assertEqual(resp.body, ScriptedUpstream.REFUSAL_BODY, resp)

    def test_503_refusal_passes_retry_after(self):
        resp = self.expect_status("/s/busy?id=busy", 503)
        self.assertEqual(resp.header("Retry-After"), "7", resp)
        self.assertEqual(resp.body, b"come back later", resp)

    def test_refusal_body_is_capped_at_4KiB(self):
        resp = self.expect_status("/s/bigrefusal?id=bigrefusal", 401)
        self.assertGreater(len(resp.body), 0, resp)
        self.assertLessEqual(len(resp.body), 4096, resp)
        self.assertTrue(ScriptedUpstream.BIG_BODY.startswith(resp.body), resp)

    def test_retry_skips_a_refused_upstream(self):
        for i in range(10):
            info, _ = self.whoami(f"/retry?id=retry{i}")
            self.assertEqual((info["name"], info["path"]), ("B", f"/retried/retry?id=retry{i}"))

    def test_gateway_serves_after_upstream_failures(self):
        self.expect_status("/refused", 502)
        self.expect_status("/s/garbage", 502)
        info, _ = self.whoami("/foo?id=after-failures")
        self.assertEqual(info["name"], "A")

    # ---- upstream trouble after the 101

    def test_upstream_closes_right_after_101(self):
        with self.raw() as c:
            c.send(upgrade_request("/s/after101?id=after101"))
            resp = c.read_response()
            self.assertIn(resp.status, (101, 502), resp)
            ended, _ = wait_ended(c)
            self.assertTrue(ended, "client connection kept open after the upstream closed")
        self.assert_asked("after101")

    def check_upstream_death(self, how):
        with self.raw() as c:
            c.handshake(f"/s/die?how={how}&id=die-{how}")
            self.assertEqual(c.read_frame(), (True, OP_TEXT, b"hello"))
            c.send(client_frame(OP_TEXT, b"are you there?"))
            ended, close = wait_ended(c)
            self.assertTrue(ended, f"client connection hangs after the upstream died ({how})")
        self.assertTrue(self.s.conn(f"die-{how}").get("died"))
        return close

    def test_upstream_reset_mid_stream_ends_the_client(self):
        close = self.check_upstream_death("rst")
        self.assertEqual(close[0] if close else None, 1014, close)

    def test_upstream_fin_mid_stream_ends_the_client(self):
        close = self.check_upstream_death("fin")
        self.assertEqual(close[0] if close else None, 1014, close)

    def test_upstream_abort_ends_the_websockets_client(self):
        async def go():
            async with ws_connect(self.url("/foo?id=abort")) as ws:
                await ws.send("@@abort")
                with self.assertRaises(websockets.ConnectionClosed):
                    await asyncio.wait_for(ws.recv(), IO_TIMEOUT)
        run_async(go())

    def test_client_reset_ends_the_upstream_connection(self):
        with self.raw() as c:
            c.handshake("/foo?id=client-rst")
            c.send(client_frame(OP_TEXT, b"before the reset"))
            self.assertEqual(c.read_frame(), (True, OP_TEXT, b"before the reset"))
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        rec = self.a.closed_connection("id=client-rst", timeout=IO_TIMEOUT)
        self.assertTrue(rec["closed"])

    # ---- the relay

    def test_concurrent_clients_do_not_mix(self):
        async def one(i):
            async with ws_connect(self.url(f"/bar/conc?id={i}")) as ws:
                for k in range(5):
                    msg = f"client {i} message {k} " + "x" * (i * 97)
                    await ws.send(msg)
                    self.assertEqual(await asyncio.wait_for(ws.recv(), 60), msg)
                    data = os.urandom(1000 + i)
                    await ws.send(data)
                    self.assertEqual(await asyncio.wait_for(ws.recv(), 60), data)

        async def go():
            await asyncio.gather(*(one(i) for i in range(40)))
        run_async(go())

    def test_echo_text_and_binary_of_every_size(self):
        async def go():
            async with ws_connect(self.url("/foo?id=sizes")) as ws:
                for n in SIZES:
                    text = utf8_text(n)
                    self.assertEqual(len(text.encode("utf-8")), n)
                    await ws.send(text)
                    self.assertEqual(await asyncio.wait_for(ws.recv(), 60), text, f"text {n}")
                    data = os.urandom(n)
                    await ws.send(data)
                    self.assertEqual(await asyncio.wait_for(ws.recv(), 60), data, f"binary {n}")
        run_async(go())

    def test_echo_through_strip_prefix_route(self):
        async def go():
            async with ws_connect(self.url("/bar/echo")) as ws:
                for n in SIZES:
                    data = os.urandom(n)
                    await ws.send(data)
                    self.assertEqual(await asyncio.wait_for(ws.recv(), 60), data, f"binary {n}")
        run_async(go())

    def test_message_of_exactly_max_message_size_passes(self):
        async def go():
            async with ws_connect(self.url("/foo?id=max")) as ws:
                data = os.urandom(2 * MiB)
                await ws.send(data)
                self.assertEqual(await asyncio.wait_for(ws.recv(), 60), data)
        run_async(go())

    def test_fragmented_message_is_relayed(self):
        with self.raw() as c:
            c.handshake("/foo?id=frag")
            c.send(client_frame(OP_TEXT, b"frag", fin=False))
            c.send(client_frame(OP_CONT, b"men", fin=False))
            c.send(client_frame(OP_CONT, b"ted"))
            payload = b""
            while True:
                fin, _op, part = c.read_frame()
                payload += part
                if fin:
                    break
            self.assertEqual(payload, b"fragmented")

    def test_control_frames_between_fragments_do_not_count(self):
        # Four 512 KiB fragments make a message of exactly max_message_size;
        # pings between them are not part of it.
        part = 512 * KiB
        with self.raw() as c:
            c.handshake("/foo?id=frag-ping")
            for i in range(4):
                op = OP_BINARY if i == 0 else OP_CONT
                c.send(fast_client_frame(op, bytes([0x40 + i]) * part, fin=(i == 3)))
                if i < 3:
                    c.send(client_frame(OP_PING, b"p%d" % i))
            pongs, data = [], None
            while data is None:
                fin, op, payload = c.read_frame()
                if op == OP_PONG:
                    pongs.append(payload)
                else:
                    self.assertNotEqual(op, OP_CLOSE, payload)
                    self.assertEqual((fin, op), (True, OP_BINARY))
                    data = payload
            self.assertEqual(len(data), 4 * part)
            self.assertEqual(data, b"".join(bytes([0x40 + i]) * part for i in range(4)))
            while len(pongs) < 3:
                _fin, op, payload = c.read_frame()
                self.assertEqual(op, OP_PONG)
                pongs.append(payload)
            self.assertEqual(pongs, [b"p0", b"p1", b"p2"])

    def test_frames_split_into_single_bytes(self):
        with self.raw() as c:
            c.handshake("/foo?id=trickle")
            frame = client_frame(OP_TEXT, b"trickled through the tunnel" * 10)
            for i in range(len(frame)):
                c.send(frame[i:i + 1])
                time.sleep(0.002)
            self.assertEqual(c.read_frame(),
                             (True, OP_TEXT, b"trickled through the tunnel" * 10))

    def test_ping_is_answered_end_to_end(self):
        async def go():
            async with ws_connect(self.url("/foo?id=ping")) as ws:
                pong = await ws.ping(b"through the gateway")
                await asyncio.wait_for(pong, IO_TIMEOUT)
        run_async(go())

    def test_close_codes_are_relayed_both_ways(self):
        async def go():
            async with ws_connect(self.url("/foo?id=close-up")) as ws:
                await ws.send("@@close 4001 bye")
                with self.assertRaises(websockets.ConnectionClosed) as cm:
                    await asyncio.wait_for(ws.recv(), IO_TIMEOUT)
                self.assertIsNotNone(cm.exception.rcvd, str(cm.exception))
                self.assertEqual((cm.exception.rcvd.code, cm.exception.rcvd.reason),
                                 (4001, "bye"))
            ws = await ws_connect(self.url("/foo?id=close-down"))
            await ws.send("hello")
            await ws.recv()
            await ws.close(4002, "client-bye")
        run_async(go())
        rec = self.a.closed_connection("id=close-down")
        self.assertEqual((rec["close_code"], rec["close_reason"]), (4002, "client-bye"))

    # ---- max_message_size

    def send_all_tolerant(self, c, data):
        """Sends `data`; the gateway may stop reading once it closed."""
        try:
            c.sock.settimeout(IO_TIMEOUT)
            c.sock.sendall(data)
        except (socket.timeout, BrokenPipeError, ConnectionResetError):
            pass

    def test_1009_client_message_over_limit_closes_both_sides(self):
        with self.raw() as c:
            c.handshake("/foo?id=big-up")
            self.send_all_tolerant(
                c, fast_client_frame(OP_BINARY, b"\x11" * (3 * MiB // 2), fin=False)
                + fast_client_frame(OP_CONT, b"\x22" * MiB))
            c.sock.settimeout(IO_TIMEOUT)
            # No data frame may come back: the message never completed.
            _fin, op, payload = c.read_frame()
            self.assertEqual(op, OP_CLOSE, "a data frame came back")
            self.assertEqual(struct.unpack("!H", payload[:2])[0], 1009, payload)
            try:
                c.send(client_frame(OP_CLOSE, close_payload(1009)))
            except OSError:
                pass
        rec = self.a.closed_connection("id=big-up")
        self.assertEqual(rec["close_code"], 1009,
                         "the upstream did not get close 1009 at a frame boundary: " + str(rec))

    def test_python_client_and_upstream_negotiate_deflate_end_to_end(self):
        text = "compressible " * 20000

        async def go():
            async with ws_connect(self.url("/deflate?id=deflate-py"),
                                  compression="deflate") as ws:
                self.assertEqual([e.name for e in ws.extensions], ["permessage-deflate"])
                for _ in range(3):
                    await ws.send(text)
                    self.assertEqual(await asyncio.wait_for(ws.recv(), 60), text)
        run_async(go())
        rec = self.d.wait_until(
            lambda: next((c for c in self.d.connections if "deflate-py" in c["path"]), None),
            what="the deflate connection")
        self.assertEqual(rec["extensions"], ["permessage-deflate"])

    def test_extension_offers_on_several_lines_are_one_offer(self):
        # The upstream picks from the second line: a choice it was offered.
        extra = [("Sec-WebSocket-Extensions", "x-unknown"),
                 ("Sec-WebSocket-Extensions", "permessage-deflate")]
        with self.raw() as c:
            resp = c.handshake("/deflate?id=deflate-lines", extra=extra)
            self.assertEqual((resp.header("Sec-WebSocket-Extensions") or "").split(";")[0],
                             "permessage-deflate", resp)
        rec = self.d.wait_until(
            lambda: next((c for c in self.d.connections if "deflate-lines" in c["path"]),
                         None), what="the deflate connection")
        names = [v for n, v in rec["headers"] if n.lower() == "sec-websocket-extensions"]
        self.assertEqual(names, ["x-unknown, permessage-deflate"], rec)

    def test_messages_and_bytes_are_counted_per_route(self):
        # Only this test uses the route: its totals are these two tunnels'.
        frames = [client_frame(OP_TEXT, "m" * n, mask=b"\0\0\0\0") for n in (1, 200, 70000)]
        up = sum(len(f) for f in frames)
        for i in (1, 2):
            with self.raw() as c:
                c.handshake(f"/counted?id=count{i}")
                for f in frames:
                    c.send(f)
                    self.assertEqual(c.read_frame()[1], OP_TEXT)
                c.send(client_frame(OP_CLOSE, close_payload(1000)))
                self.assertEqual(c.read_close()[0], 1000)
            line = self.gw.wait_for_log(rf"tunnel_closed route=counted .*route_tunnels={i} ")
            fields = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
            self.assertEqual(fields["code"], "0", line)  # the peers closed it
            self.assertEqual(fields["msgs_up"], "3", line)
            self.assertEqual(fields["msgs_down"], "3", line)
            # Frame bytes: the data frames plus the close frame, each way.
            self.assertEqual(int(fields["bytes_up"]), up + 8, line)
            self.assertEqual(fields["route_msgs_up"], str(3 * i), line)
            self.assertEqual(fields["route_msgs_down"], str(3 * i), line)
            self.assertEqual(int(fields["route_bytes_up"]), i * (up + 8), line)
            self.assertEqual(fields["route_too_big"], "0", line)

    def test_gateway_close_waits_for_the_clients_answer(self):
        # After its 1009 the gateway reads on, dropping what comes, until
        # the client's own close frame: closing first would reset a client
        # that has not read the 1009 yet.
        with self.raw() as c:
            c.handshake("/foo?id=answer")
            self.send_all_tolerant(c, fast_client_frame(OP_BINARY, b"\x44" * (2 * MiB + 1)))
            self.assertEqual(c.read_close()[0], 1009)
            self.assertFalse(c.at_eof(timeout=0.5), "closed before the client answered")
            c.send(client_frame(OP_TEXT, b"dropped"))
            c.send(client_frame(OP_CLOSE, close_payload(1009)))
            self.assertTrue(c.at_eof())
        rec = self.a.closed_connection("id=answer")
        self.assertEqual(rec["close_code"], 1009, str(rec))
        self.assertEqual(rec["messages"], 0, str(rec))

    def test_1009_single_frame_over_limit(self):
        with self.raw() as c:
            c.handshake("/foo?id=big-one")
            self.send_all_tolerant(c, fast_client_frame(OP_BINARY, b"\x33" * (2 * MiB + 1)))
            self.assertEqual(c.read_close()[0], 1009)
        rec = self.a.closed_connection("id=big-one")
        self.assertEqual(rec["close_code"], 1009, str(rec))
        line = self.gw.wait_for_log(r"tunnel_closed route=foo .*code=1009 ")
        self.assertRegex(line, r" route_too_big=[1-9]")

    def test_1009_upstream_message_over_limit_closes_both_sides(self):
        with self.raw() as c:
            c.handshake("/foo?id=big-down")
            c.send(client_frame(OP_TEXT, b"@@send-binary 3000000"))
            c.sock.settimeout(IO_TIMEOUT)
            _fin, op, payload = c.read_frame()
            self.assertEqual(op, OP_CLOSE, "the oversized message was relayed")
            self.assertEqual(struct.unpack("!H", payload[:2])[0], 1009, payload)
            try:
                c.send(client_frame(OP_CLOSE, close_payload(1009)))
            except OSError:
                pass
        rec = self.a.closed_connection("id=big-down")
        self.assertEqual(rec["close_code"], 1009, str(rec))


IDLE_CONFIG = """\
listeners:
  - address: 127.0.0.1:0
workers: 1
log: { level: info, format: text }
limits: { idle_timeout: 1s }
routes:
  - { name: foo, path: /foo, upstream: "ws://127.0.0.1:@A@" }
"""


class HalfOpenUpstream:
    """A raw WebSocket upstream: answers the handshake, then reports what it
    reads (its EOF included) and sends what the test tells it to."""

    def __init__(self):
        self.ls = socket.create_server(("127.0.0.1", 0))
        self.port = self.ls.getsockname()[1]
        self.conns = []
        self.ready = threading.Condition()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                s, _ = self.ls.accept()
            except OSError:
                return
            buf = b""
            while b"\r\n\r\n" not in buf:
                buf += s.recv(4096)
            key = [l.split(b":", 1)[1].strip().decode() for l in buf.split(b"\r\n")
                   if l.lower().startswith(b"sec-websocket-key:")][0]
            s.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                      b"Connection: Upgrade\r\nSec-WebSocket-Accept: "
                      + accept_for(key).encode() + b"\r\n\r\n")
            with self.ready:
                self.conns.append(s)
                self.ready.notify_all()

    def next_conn(self, n):
        with self.ready:
            self.ready.wait_for(lambda: len(self.conns) >= n, IO_TIMEOUT)
            return self.conns[n - 1]

    def stop(self):
        self.ls.close()
        for s in self.conns:
            s.close()


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class HalfCloseTest(GatewayTestCase):
    """A peer that shuts its sending side without a close frame: the other
    side gets the EOF, can still send the other way, and the gateway waits
    without spinning."""

    @classmethod
    def setUpClass(cls):
        cls.up = HalfOpenUpstream()
        cls.addClassCleanup(cls.up.stop)
        cls.CONFIG = ("listeners: [{ address: 127.0.0.1:0 }]\nworkers: 1\n"
                      "log: { level: info, format: text }\nroutes:\n"
                      f"  - {{ name: half, path: /half, upstream: \"ws://127.0.0.1:{cls.up.port}\" }}\n")
        super().setUpClass()

    def test_client_half_close_reaches_the_upstream_and_data_still_flows_back(self):
        with self.raw() as c:
            c.handshake("/half")
            u = self.up.next_conn(1)
            u.settimeout(IO_TIMEOUT)
            c.send(client_frame(OP_TEXT, b"before", mask=b"\0\0\0\0"))
            got = b""
            while len(got) < 12:  # 2 header bytes, the (zero) mask, the payload
                chunk = u.recv(64)
                self.assertTrue(chunk, "EOF before the frame")
                got += chunk
            self.assertEqual(got[6:], b"before")
            c.sock.shutdown(socket.SHUT_WR)
            self.assertEqual(u.recv(64), b"", "the upstream did not get the half-close")
            # While one direction is shut, the gateway must not poll the
            # dead one: a spinning worker burns a core in this second.
            before = cpu_seconds(self.gw.proc.pid)
            time.sleep(1.0)
            self.assertLess(cpu_seconds(self.gw.proc.pid) - before, 0.5,
                            "the gateway spins on a half-closed connection")
            u.sendall(bytes([0x81, 5]) + b"after")
            self.assertEqual(c.read_frame(), (True, OP_TEXT, b"after"))
            # The upstream goes without a close frame: the client hears 1014.
            u.close()
            self.assertEqual(c.read_close()[0], 1014)
            self.assertTrue(c.at_eof())


class FullBacklog:
    """A listener whose accept queue is full and never drained: the kernel
    drops further SYNs, so a connect to it stays pending."""

    def __init__(self):
        self.ls = socket.socket()
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(0)
        self.port = self.ls.getsockname()[1]
        self.fillers = []
        for _ in range(3):
            c = socket.socket()
            c.setblocking(False)
            c.connect_ex(("127.0.0.1", self.port))
            self.fillers.append(c)
        time.sleep(0.2)

    def stop(self):
        for c in self.fillers:
            c.close()
        self.ls.close()


class ConnectTimeoutTest(GatewayTestCase):
    """An upstream that never completes the TCP handshake: the connect is
    still pending when connect() returns, the bufferevent waits for it, and
    connect_timeout ends the wait with 502."""

    @classmethod
    def setUpClass(cls):
        cls.hole = FullBacklog()
        cls.addClassCleanup(cls.hole.stop)
        cls.ok = EchoUpstream("ok")
        cls.ok.start()
        cls.addClassCleanup(cls.ok.stop)
        cls.CONFIG = (
            "listeners: [{ address: 127.0.0.1:0 }]\nworkers: 1\n"
            "log: { level: info, format: text }\nroutes:\n"
            f"  - {{ name: hole, path: /hole, upstream: \"ws://127.0.0.1:{cls.hole.port}\","
            " connect_timeout: 1s }\n"
            "  - name: fallback\n    path: /fallback\n    connect_timeout: 1s\n"
            f"    upstreams: [\"ws://127.0.0.1:{cls.hole.port}\", \"ws://127.0.0.1:{cls.ok.port}\"]\n"
            "    balance: round_robin\n")
        super().setUpClass()

    def test_502_after_connect_timeout(self):
        with self.raw() as c:
            c.send(upgrade_request("/hole"))
            self.assertEqual(c.read_response().status, 502)
        self.gw.wait_for_log(r"upstream_down route=hole .*connect timeout")

    def test_retry_on_the_next_upstream_after_a_connect_timeout(self):
        for _ in range(2):  # whichever the round robin starts with
            with self.raw() as c:
                c.handshake("/fallback")
                c.send(client_frame(OP_TEXT, b"made it"))
                self.assertEqual(c.read_frame(), (True, OP_TEXT, b"made it"))


class LeastConnBurstTest(UpstreamsMixin, GatewayTestCase):
    """least_conn counts upgrades still in flight: a burst of clients is
    spread over the upstreams instead of all picking the one that has no
    established connection yet."""

    @classmethod
    def setUpClass(cls):
        cls.x = cls.start_upstream(EchoUpstream("X"))
        cls.y = cls.start_upstream(EchoUpstream("Y"))
        cls.CONFIG = (
            "listeners: [{ address: 127.0.0.1:0 }]\nworkers: 1\n"
            "log: { level: info, format: text }\nroutes:\n"
            "  - name: lc\n    path: /lc\n    balance: least_conn\n"
            f"    upstreams: [\"ws://127.0.0.1:{cls.x.port}\", \"ws://127.0.0.1:{cls.y.port}\"]\n")
        super().setUpClass()

    def test_a_burst_is_spread(self):
        clients = [self.raw()]
        try:
            clients[0].handshake("/lc?id=held")  # one upstream has one already
            burst = [self.raw() for _ in range(9)]
            clients += burst
            for i, c in enumerate(burst):  # all asked before any is answered
                c.send(upgrade_request(f"/lc?id=burst{i}"))
            for c in burst:
                self.assertEqual(c.read_response().status, 101)
            deadline = time.monotonic() + IO_TIMEOUT
            while len(self.x.connections) + len(self.y.connections) < 10 and \
                    time.monotonic() < deadline:
                time.sleep(0.02)  # the upstreams record a connection after its 101
            seen = {"X": len(self.x.connections), "Y": len(self.y.connections)}
            self.assertEqual(seen["X"] + seen["Y"], 10, seen)
            self.assertLessEqual(abs(seen["X"] - seen["Y"]), 2, seen)
        finally:
            for c in clients:
                c.close()


class IdleTimeoutTest(UpstreamsMixin, GatewayTestCase):
    @classmethod
    def setUpClass(cls):
        cls.a = cls.start_upstream(EchoUpstream("A"))
        cls.CONFIG = fill(IDLE_CONFIG, A=cls.a.port)
        super().setUpClass()

    def test_idle_tunnel_closes_both_sides_with_1001(self):
        async def go():
            async with ws_connect(self.url("/foo?id=idle")) as ws:
                await ws.send("one message")
                self.assertEqual(await ws.recv(), "one message")
                with self.assertRaises(websockets.ConnectionClosed) as cm:
                    await asyncio.wait_for(ws.recv(), 30)
                self.assertIsNotNone(cm.exception.rcvd, str(cm.exception))
                self.assertEqual(cm.exception.rcvd.code, 1001)
        run_async(go())
        rec = self.a.closed_connection("id=idle")
        self.assertEqual(rec["close_code"], 1001, str(rec))


DRAIN_CONFIG = """\
listeners:
  - address: 127.0.0.1:0
workers: 2
log: { level: info, format: text }
routes:
  - { name: foo, path: /foo, upstream: "ws://127.0.0.1:@A@" }
"""


class DrainTest(unittest.TestCase):
    def test_sigterm_sends_1001_to_client_and_upstream(self):
        up = EchoUpstream("A").start()
        self.addCleanup(up.stop)
        gw = Gateway(fill(DRAIN_CONFIG, A=up.port))
        self.addCleanup(gw.kill)
        gw.start()
        url = f"ws://127.0.0.1:{gw.port}/foo?id=drain"

        async def go():
            conns = [await ws_connect(f"{url}{i}") for i in range(3)]
            try:
                for i, ws in enumerate(conns):
                    await ws.send(f"before drain {i}")
                    self.assertEqual(await ws.recv(), f"before drain {i}")
                gw.signal(signal.SIGTERM)
                for ws in conns:
                    with self.assertRaises(websockets.ConnectionClosed) as cm:
                        await asyncio.wait_for(ws.recv(), 30)
                    self.assertIsNotNone(cm.exception.rcvd, str(cm.exception))
                    self.assertEqual(cm.exception.rcvd.code, 1001)
            finally:
                for ws in conns:
                    await ws.close()
        run_async(go())
        for i in range(3):
            rec = up.closed_connection(f"id=drain{i}")
            self.assertEqual(rec["close_code"], 1001, str(rec))
        self.assertEqual(gw.wait(30), 0, gw.stderr_text)
        self.assertEqual(gw.sanitizer_reports(), [])


# ---- slow readers ----------------------------------------------------------------------

MEMORY_CONFIG = """\
listeners:
  - address: 127.0.0.1:0
workers: 2
log: { level: info, format: text }
limits: { proxy_buffer: 64KiB, max_message_size: 2MiB, idle_timeout: 10m }
routes:
  - name: scripted
    path_prefix: /s/
    strip_prefix: true
    upstream: "ws://127.0.0.1:@S@"
"""

FLOOD_MESSAGES = 200  # of 1 MiB each: 200 MiB
MEMORY_SLACK = 64 * MiB
STALL = 2.0  # seconds without progress that count as "stalled"


def wait_stalled(rec, timeout=120):
    """Waits until a flooding ScriptedUpstream connection `rec` has sent
    everything or made no progress for STALL seconds."""
    last, since = -1, time.monotonic()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not rec.get("finished"):
        sent = rec.get("sent", 0)
        if sent != last:
            last, since = sent, time.monotonic()
        elif time.monotonic() - since > STALL:
            return
        time.sleep(0.1)


def vmrss(pid):
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


class RssSampler:
    """Samples a process's VmRSS every 20 ms in a thread; keeps the peak."""

    def __init__(self, pid):
        self.pid = pid
        self.peak = vmrss(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, vmrss(self.pid))
            except (OSError, AssertionError):
                return
            self._stop.wait(0.02)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(5)


class SlowReaderMemoryTest(UpstreamsMixin, GatewayTestCase):
    ENV = small_quarantine_env()

    @classmethod
    def setUpClass(cls):
        cls.s = cls.start_upstream(ScriptedUpstream("S"))
        cls.CONFIG = fill(MEMORY_CONFIG, S=cls.s.port)
        super().setUpClass()

    def baseline(self):
        """The gateway's RSS after one small proxied flood read in full."""
        with self.raw() as c:
            c.handshake("/s/flood?n=4&id=warmup")
            counter = FrameCounter()
            c.sock.settimeout(IO_TIMEOUT)
            while counter.messages < 4:
                data = c.sock.recv(1 << 20)
                self.assertTrue(data, "EOF during the warm-up flood")
                counter.feed(data)
        time.sleep(0.5)
        return vmrss(self.gw.proc.pid)

    def assert_bounded(self, sampler, base, when):
        growth = sampler.peak - base
        self.assertLess(growth, MEMORY_SLACK,
                        f"gateway RSS grew by {growth / MiB:.1f} MiB {when} "
                        f"(baseline {base / MiB:.1f} MiB)")

    def test_client_that_stops_reading(self):
        base = self.baseline()
        total = FLOOD_MESSAGES * ScriptedUpstream.FLOOD_MESSAGE
        with RssSampler(self.gw.proc.pid) as rss, self.raw() as c:
            c.handshake(f"/s/flood?n={FLOOD_MESSAGES}&id=flood")
            rec = self.s.conn("flood")
            wait_stalled(rec)  # read nothing until the upstream cannot push more
            self.assertLess(rec.get("sent", 0), total,
                            "the gateway took all 200 MiB from the upstream while the "
                            "client read nothing")
            self.assert_bounded(rss, base, "while the client did not read")
            # Now read everything: the relay resumes and nothing was lost.
            counter = FrameCounter()
            if c.buf:
                counter.feed(c.buf)
                c.buf = b""
            c.sock.settimeout(60)
            while counter.messages < FLOOD_MESSAGES:
                data = c.sock.recv(1 << 20)
                self.assertTrue(data, f"EOF after {counter.payload_bytes} bytes")
                counter.feed(data)
            self.assertEqual(counter.payload_bytes, total)
            self.assertIsNone(counter.close)
            self.assert_bounded(rss, base, "during a 200 MiB flood to a slow client")

    def test_upstream_that_stops_reading(self):
        base = self.baseline()
        frame = fast_client_frame(OP_BINARY, b"\x3c" * MiB)
        total = FLOOD_MESSAGES * len(frame)
        with RssSampler(self.gw.proc.pid) as rss, self.raw() as c:
            c.handshake("/s/sink?id=sink")
            rec = self.s.conn("sink")
            view = memoryview(frame * 8)  # 8 messages per buffer

            def sender(stop_on_stall):
                """Sends until all is out, or (stop_on_stall) no progress for
                STALL seconds; returns the bytes sent by this call."""
                c.sock.settimeout(0.2)
                sent = 0
                since = time.monotonic()
                deadline = time.monotonic() + 120
                while self.sent < total and time.monotonic() < deadline:
                    off = self.sent % len(view)
                    end = min(len(view), off + (total - self.sent))
                    try:
                        n = c.sock.send(view[off:end])
                    except socket.timeout:
                        n = 0
                    if n > 0:
                        self.sent += n
                        sent += n
                        since = time.monotonic()
                    elif stop_on_stall and time.monotonic() - since > STALL:
                        break
                return sent

            self.sent = 0
            sender(stop_on_stall=True)
            self.assertLess(self.sent, total,
                            "the gateway took all 200 MiB from the client while the "
                            "upstream read nothing")
            self.assert_bounded(rss, base, "while the upstream did not read")
            rec["resume"].set()
            sender(stop_on_stall=False)
            self.assertEqual(self.sent, total, "the client could not send everything")
            counter = self.s.wait_until(
                lambda: rec["counter"].messages >= FLOOD_MESSAGES and rec["counter"],
                timeout=120, what="all 200 messages at the upstream")
            self.assertEqual(counter.payload_bytes, FLOOD_MESSAGES * MiB)
            self.assertIsNone(counter.close)
            self.assert_bounded(rss, base, "during a 200 MiB flood to a slow upstream")


if __name__ == "__main__":
    unittest.main()
