"""Edge authentication: the http (forward-auth) and plugin providers, chains,
auth: none, route origins and the brute-force throttle, on the real binary."""

import hashlib
import hmac
import http.server
import json
import os
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import unittest
import uuid

from upstreams import EchoUpstream
from wsgate_harness import (OP_TEXT, Gateway, GatewayTestCase, RawClient, client_frame,
                            run_async, upgrade_request, wsgate_bin, ws_connect)

PLUGIN_KEY = "it-plugin-key-41"


def plugin_token(user, key=PLUGIN_KEY):
    mac = hmac.new(key.encode(), user.encode(), hashlib.sha256).hexdigest()
    return f"{user}.{mac}"


def plugin_path():
    path = os.environ.get("WSGATE_AUTH_PLUGIN")
    if not path:
        raise unittest.SkipTest("WSGATE_AUTH_PLUGIN is not set")
    return path


def stall_plugin_path():
    d = os.environ.get("WSGATE_TEST_PLUGINS")
    if not d:
        raise unittest.SkipTest("WSGATE_TEST_PLUGINS is not set")
    return os.path.join(d, "auth_stall.so")


def bearer(token):
    return ("Authorization", "Bearer " + token)


# What the service answers with a 403 to forbidchal* tokens (RFC 6750 §3.1).
FORBID_CHALLENGE = 'Bearer realm="svc", error="insufficient_scope", scope="chat"'


class AuthService:
    """A forward-auth service on 127.0.0.1 (kernel-chosen port). The bearer
    token decides: denybare* -> 401 without a challenge, deny* -> 401 with
    its own challenge, forbidchal* -> 403 with FORBID_CHALLENGE, forbid* ->
    403, error* -> 500, stall* -> no answer until released, hold* -> 200 once
    `hold` is set, close* -> 200 and the connection closed, crash* -> the
    connection is closed without an answer; anything else -> 200 with
    X-Auth-User: svc-TOKEN and X-User-Id: uid-42. It records every request
    with the connection it came on."""

    def __init__(self, tls=None):
        self.requests = []
        self.lock = threading.Condition()
        self.release = threading.Event()
        self.hold = threading.Event()
        svc = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                authz = self.headers.get("Authorization", "")
                token = authz[len("Bearer "):] if authz.startswith("Bearer ") else ""
                rec = {"conn": id(self), "path": self.path,
                       "headers": {k.lower(): v for k, v in self.headers.items()},
                       "token": token}
                with svc.lock:
                    svc.requests.append(rec)
                    svc.lock.notify_all()
                if token.startswith("crash"):
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if token.startswith("close"):
                    self.close_connection = True
                    self.reply(200, [("X-Auth-User", "closer"), ("Connection", "close")])
                    return
                if token.startswith("hold"):
                    svc.hold.wait(30)
                    self.reply(200, [("X-Auth-User", "held")])
                    return
                if token.startswith("stall"):
                    svc.release.wait(30)
                    self.reply(200, [("X-Auth-User", "late")])
                    return
                if token.startswith("denybare"):
                    self.reply(401, [])
                elif token.startswith("deny") or not token:
                    self.reply(401, [("WWW-Authenticate", 'Basic realm="svc"')])
                elif token.startswith("forbidchal"):
                    self.reply(403, [("WWW-Authenticate", FORBID_CHALLENGE)])
                elif token.startswith("forbid"):
                    self.reply(403, [])
                elif token.startswith("error"):
                    self.reply(500, [])
                else:
                    self.reply(200, [("X-Auth-User", "svc-" + token[:12]),
                                     ("X-User-Id", "uid-42"), ("X-Other", "not-copied")])

            def reply(self, status, headers):
                body = b"auth\n"
                try:
                    self.send_response(status)
                    for n, v in headers:
                        self.send_header(n, v)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:  # the gateway gave up on this check (timeout)
                    self.close_connection = True

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.release.set()
        self.hold.set()
        self.server.shutdown()
        self.server.server_close()

    def with_token(self, token):
        with self.lock:
            return [r for r in self.requests if r["token"] == token]

    def wait_for(self, token, timeout=15):
        deadline = time.monotonic() + timeout
        with self.lock:
            while not any(r["token"] == token for r in self.requests):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"the auth service never saw {token!r}")
                self.lock.wait(left)


CONFIG = """\
listeners:
  - address: 127.0.0.1:0
workers: 1
log: { level: info, format: text }
auth:
  token_from: [header, query=access_token]
  providers:
    ext:
      type: http
      url: "http://127.0.0.1:@SVC@/check?svc=1"
      timeout: 1s
      subject_header: X-Auth-User
      copy_headers: [X-User-Id]
      connections: 1
    cached:
      type: http
      url: "http://127.0.0.1:@SVC@/check"
      cache_ttl: 10m
      cache_size: 16
      timeout: 20s
    ttl:
      type: http
      url: "http://127.0.0.1:@SVC@/check"
      cache_ttl: @TTL@
      timeout: 20s
    small:
      type: http
      url: "http://127.0.0.1:@SVC@/check"
      cache_ttl: 10m
      cache_size: 2
      timeout: 20s
    plug:
      type: plugin
      path: "@PLUGIN@"
      options: { key: "@KEY@", delay_ms: "20", forbid: "mallory,eve" }
      identity_headers: [X-Plugin-User]
routes:
  - { path: /ext, upstream: "ws://127.0.0.1:@UP@", auth: ext }
  - { path: /cached, handler: echo, auth: cached }
  - { path: /ttl, handler: echo, auth: ttl }
  - { path: /small, handler: echo, auth: small }
  - { path: /plug, upstream: "ws://127.0.0.1:@UP@", auth: plug }
  - { path: /chain, upstream: "ws://127.0.0.1:@UP@", auth: [plug, ext] }
  - { path: /open, upstream: "ws://127.0.0.1:@UP@", auth: none }
  - path: /origins
    handler: echo
    origins: ["https://app.example.com", "https://*.example.org", "http://localhost:3000"]
"""


# The ttl provider's cache_ttl, in seconds.
CACHE_TTL = 2


def assert_not_logged(gw, secrets):
    """No credential sent (nor the MAC part of a plugin token) is in gw's log."""
    text = gw.stderr_text
    leaked = [t for t in secrets if t in text or ("." in t and t.rsplit(".", 1)[1] in text)]
    if leaked:
        raise AssertionError(f"{len(leaked)} credentials appear in the gateway's log, "
                             f"e.g. {leaked[0]!r}")


def fill(template, **values):
    for name, value in values.items():
        template = template.replace(f"@{name}@", str(value))
    return template


class EdgeAuthTest(GatewayTestCase):
    @classmethod
    def setUpClass(cls):
        cls.svc = AuthService().start()
        cls.addClassCleanup(cls.svc.stop)
        cls.up = EchoUpstream("A").start()
        cls.addClassCleanup(cls.up.stop)
        cls.CONFIG = fill(CONFIG, SVC=cls.svc.port, UP=cls.up.port, PLUGIN=plugin_path(),
                          KEY=PLUGIN_KEY, TTL=f"{CACHE_TTL}s")
        cls.secrets = []  # every credential sent: none may reach the log
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()  # the gateway has exited: its whole log is in
        finally:
            assert_not_logged(cls.gw, cls.secrets)

    # ---- helpers

    def used(self, secret):
        """Notes a credential (returned as is) for the log scan at the end."""
        self.secrets.append(secret)
        return secret

    def note_credentials(self, path, headers):
        for n, v in headers:
            if n.lower() == "authorization" and v.startswith("Bearer "):
                self.used(v[len("Bearer "):])
        if "access_token=" in path:
            self.used(path.split("access_token=", 1)[1].split("&")[0])

    def status(self, path, headers=()):
        self.note_credentials(path, headers)
        with self.raw() as c:
            c.send(upgrade_request(path, extra=list(headers)))
            return c.read_response()

    def whoami(self, path, headers):
        self.note_credentials(path, list(headers.items()))

        async def go():
            async with ws_connect(self.url(path), extra_headers=headers) as ws:
                await ws.send("@@whoami")
                return json.loads(await ws.recv())
        info = run_async(go())
        return {}, info["headers"]

    def upstream_headers(self, path, headers):
        _, raw = self.whoami(path, headers)
        out = {}
        for n, v in raw:
            out.setdefault(n.lower(), []).append(v)
        return out

    # ---- http provider

    def test_allow_passes_identity_and_service_sees_request(self):
        token = "alice-" + uuid.uuid4().hex[:8]
        sid = self.used("sid-" + uuid.uuid4().hex)
        got = self.upstream_headers("/ext?x=1", {
            "Authorization": "Bearer " + token, "Cookie": "sid=" + sid,
            "X-User-Id": "spoofed", "X-Auth-Subject": "spoofed"})
        self.assertEqual(got["x-auth-subject"], ["svc-" + token[:12]])
        self.assertEqual(got["x-user-id"], ["uid-42"])
        self.assertNotIn("x-other", got)
        self.assertNotIn("authorization", got)
        (rec,) = self.svc.with_token(token)
        h = rec["headers"]
        self.assertEqual(rec["path"], "/check?svc=1")
        self.assertEqual(h["host"], f"127.0.0.1:{self.svc.port}")
        self.assertEqual(h["x-forwarded-method"], "GET")
        self.assertEqual(h["x-forwarded-uri"], "/ext")
        self.assertEqual(h["x-original-uri"], "/ext")
        self.assertEqual(h["x-forwarded-host"], f"127.0.0.1:{self.port}")
        self.assertEqual(h["x-forwarded-proto"], "http")
        self.assertEqual(h["x-forwarded-for"], "127.0.0.1")
        self.assertEqual(h["cookie"], "sid=" + sid)

    def test_query_token_is_sent_as_bearer(self):
        token = "qtok-" + uuid.uuid4().hex[:8]
        got = self.upstream_headers("/ext?access_token=" + token, {})
        self.assertEqual(got["x-auth-subject"], ["svc-" + token[:12]])
        (rec,) = self.svc.with_token(token)
        self.assertEqual(rec["headers"]["authorization"], "Bearer " + token)

    def test_client_identity_headers_stripped_without_auth(self):
        got = self.upstream_headers("/open", {"X-User-Id": "spoofed", "X-Plugin-User": "x"})
        self.assertNotIn("x-user-id", got)
        self.assertNotIn("x-plugin-user", got)

    def test_deny_passes_the_services_challenge(self):
        r = self.status("/ext", [("Authorization", "Bearer deny-1")])
        self.assertEqual(r.status, 401)
        self.assertEqual(r.header("WWW-Authenticate"), 'Basic realm="svc"')

    def test_deny_without_a_challenge_gets_the_gateways(self):
        r = self.status("/ext", [bearer("denybare-" + uuid.uuid4().hex[:8])])
        self.assertEqual(r.status, 401)
        self.assertRegex(r.header("WWW-Authenticate") or "", r'^Bearer realm="wsgate"')

    def test_forbid_passes_the_services_challenge(self):
        token = "forbidchal-" + uuid.uuid4().hex[:8]
        # The second /cached is answered from the cache, with the challenge.
        for path in ("/ext", "/cached", "/cached"):
            with self.subTest(path=path):
                r = self.status(path, [bearer(token)])
                self.assertEqual(r.status, 403)
                self.assertEqual(r.header_all("WWW-Authenticate"), [FORBID_CHALLENGE])
        self.assertEqual(len(self.svc.with_token(token)), 2)  # /ext, and /cached once

    def test_no_credential_is_asked_and_denied(self):
        self.assertEqual(self.status("/ext").status, 401)

    def test_forbid_is_403(self):
        self.assertEqual(self.status("/ext", [("Authorization", "Bearer forbid-1")]).status, 403)

    def test_service_error_is_503(self):
        r = self.status("/ext", [("Authorization", "Bearer error-1")])
        self.assertEqual(r.status, 503)
        self.assertIsNotNone(r.header("Retry-After"))

    def test_stall_times_out_503(self):
        token = "stall-" + uuid.uuid4().hex[:8]
        self.assertEqual(self.status("/ext", [("Authorization", "Bearer " + token)]).status, 503)
        # The connection was reset; the next check works.
        self.assertEqual(self.status("/ext", [("Authorization", "Bearer ok-after")]).status, 101)

    def test_crash_mid_request_is_503(self):
        token = "crash-" + uuid.uuid4().hex[:8]
        self.assertEqual(self.status("/ext", [("Authorization", "Bearer " + token)]).status, 503)
        self.assertEqual(self.status("/ext", [("Authorization", "Bearer ok-crash")]).status, 101)

    def test_keep_alive_reuses_one_connection(self):
        tokens = ["ka%d-%s" % (i, uuid.uuid4().hex[:6]) for i in range(4)]
        for t in tokens:
            self.assertEqual(self.status("/ext", [("Authorization", "Bearer " + t)]).status, 101)
        conns = [self.svc.with_token(t)[0]["conn"] for t in tokens]
        self.assertEqual(len(set(conns)), 1, conns)

    def test_cache_answers_repeated_credentials(self):
        token = "cache-" + uuid.uuid4().hex[:8]
        for _ in range(5):
            r = self.status("/cached", [("Authorization", "Bearer " + token)])
            self.assertEqual(r.status, 101)
        self.assertEqual(len(self.svc.with_token(token)), 1)
        deny = "deny-" + uuid.uuid4().hex[:8]
        for _ in range(3):
            r = self.status("/cached", [("Authorization", "Bearer " + deny)])
            self.assertEqual(r.status, 401)
            self.assertEqual(r.header("WWW-Authenticate"), 'Basic realm="svc"')
        self.assertEqual(len(self.svc.with_token(deny)), 1)
        # Errors are not cached.
        err = "error-" + uuid.uuid4().hex[:8]
        for _ in range(2):
            self.assertEqual(self.status("/cached", [("Authorization", "Bearer " + err)]).status,
                             503)
        self.assertEqual(len(self.svc.with_token(err)), 2)

    def test_cache_ttl_expires(self):
        # The gateway stores a decision when the answer arrives, before the
        # 101, and times it on CLOCK_MONOTONIC, as time.monotonic() does: it
        # is fresh while less than the ttl has passed since the first
        # request was sent, and stale once the ttl has passed since its 101.
        token = "ttl-" + uuid.uuid4().hex[:8]
        sent = time.monotonic()
        self.assertEqual(self.status("/ttl", [bearer(token)]).status, 101)
        answered = time.monotonic()
        self.assertEqual(self.status("/ttl", [bearer(token)]).status, 101)
        if time.monotonic() - sent < CACHE_TTL:  # else too slow a run to tell
            self.assertEqual(len(self.svc.with_token(token)), 1)
        asked = len(self.svc.with_token(token))
        time.sleep(max(0.0, answered + CACHE_TTL + 0.01 - time.monotonic()))
        self.assertEqual(self.status("/ttl", [bearer(token)]).status, 101)
        self.assertEqual(len(self.svc.with_token(token)), asked + 1)

    def test_cache_size_replaces_the_oldest(self):
        # cache_size 2: a third credential replaces the oldest decision.
        a, b, c = ("size%d-%s" % (i, uuid.uuid4().hex[:6]) for i in range(3))

        def check(token, want_asked):
            self.assertEqual(self.status("/small", [bearer(token)]).status, 101)
            self.assertEqual(len(self.svc.with_token(token)), want_asked, token)

        for t in (a, b, a, b):  # both fit
            check(t, 1)
        check(c, 1)  # replaces a
        check(b, 1)
        check(a, 2)  # asked again; replaces b
        check(c, 1)
        check(b, 2)

    def test_concurrent_checks_for_one_credential_are_one_request(self):
        # Every client waits for the same held answer: the service sees one
        # request, whether the others joined it in flight or came after it
        # was cached. The first client leaves while it waits.
        self.svc.hold.clear()
        token = self.used("hold-" + uuid.uuid4().hex[:8])
        clients = [RawClient(self.port) for _ in range(5)]
        try:
            for c in clients:
                c.send(upgrade_request("/cached", extra=[("Authorization", "Bearer " + token)]))
            self.svc.wait_for(token)
            clients[0].close()
            time.sleep(0.2)  # not asserted on: lets the others reach the gateway
            self.svc.hold.set()
            for c in clients[1:]:
                self.assertEqual(c.read_response().status, 101)
        finally:
            for c in clients:
                c.close()
        self.assertEqual(len(self.svc.with_token(token)), 1)

    def test_all_waiters_gone_cancels_the_request(self):
        self.svc.hold.clear()
        token = self.used("hold-gone-" + uuid.uuid4().hex[:6])
        clients = [RawClient(self.port) for _ in range(3)]
        for c in clients:
            c.send(upgrade_request("/cached", extra=[("Authorization", "Bearer " + token)]))
        self.svc.wait_for(token)
        for c in clients:
            c.close()
        time.sleep(0.2)  # not asserted on: lets the gateway see the EOFs first
        self.svc.hold.set()
        r = self.status("/cached", [("Authorization", "Bearer ok-" + token)])
        self.assertEqual(r.status, 101)

    def test_client_gone_while_check_pending(self):
        token = self.used("stall-gone-" + uuid.uuid4().hex[:6])
        c = RawClient(self.port)
        c.send(upgrade_request("/ext", extra=[("Authorization", "Bearer " + token)]))
        self.svc.wait_for(token)
        c.close()
        time.sleep(0.2)  # not a timing assertion: lets the gateway see the EOF first
        self.assertTrue(self.gw.alive())
        self.assertEqual(self.status("/ext", [("Authorization", "Bearer ok-gone")]).status, 101)

    # ---- plugin provider

    def test_plugin_allows_with_identity(self):
        got = self.upstream_headers("/plug", {"Authorization": "Bearer " + plugin_token("alice"),
                                              "X-Plugin-User": "spoofed"})
        self.assertEqual(got["x-auth-subject"], ["alice"])
        self.assertEqual(got["x-plugin-user"], ["alice"])

    def test_plugin_denies_and_forbids(self):
        self.assertEqual(self.status("/plug").status, 401)
        bad = plugin_token("alice", key="wrong-key")
        r = self.status("/plug", [("Authorization", "Bearer " + bad)])
        self.assertEqual(r.status, 401)
        self.assertIn('error="invalid_token"', r.header("WWW-Authenticate"))
        r = self.status("/plug", [("Authorization", "Bearer " + plugin_token("mallory"))])
        self.assertEqual(r.status, 403)

    # ---- chains, none, origins

    def test_chain_both_allow_merges_identity(self):
        tok = plugin_token("carol")
        got = self.upstream_headers("/chain", {"Authorization": "Bearer " + tok})
        self.assertEqual(got["x-auth-subject"], ["carol"])  # the first provider's
        self.assertEqual(got["x-plugin-user"], ["carol"])
        self.assertEqual(got["x-user-id"], ["uid-42"])
        self.assertEqual(len(self.svc.with_token(tok)), 1)

    def test_chain_second_denies(self):
        r = self.status("/chain", [("Authorization", "Bearer " + plugin_token("deny"))])
        self.assertEqual(r.status, 401)
        self.assertEqual(r.header("WWW-Authenticate"), 'Basic realm="svc"')
        r = self.status("/chain", [("Authorization", "Bearer " + plugin_token("forbid"))])
        self.assertEqual(r.status, 403)

    def test_chain_first_denies_without_asking_second(self):
        tok = plugin_token("dave", key="other")
        self.assertEqual(self.status("/chain", [("Authorization", "Bearer " + tok)]).status, 401)
        self.assertEqual(self.svc.with_token(tok), [])

    def test_auth_none(self):
        self.assertEqual(self.status("/open").status, 101)

    def test_origins(self):
        cases = [("https://app.example.com", 101), ("HTTPS://APP.example.com", 101),
                 ("https://a.b.example.org", 101), ("https://x.example.org", 101),
                 ("https://example.org", 403), ("https://evil.com", 403),
                 ("http://app.example.com", 403), ("https://app.example.com:8443", 403),
                 ("http://localhost:3000", 101), ("http://localhost", 403), ("null", 403)]
        for origin, want in cases:
            with self.subTest(origin=origin):
                self.assertEqual(self.status("/origins", [("Origin", origin)]).status, want)
        self.assertEqual(self.status("/origins").status, 101)  # no Origin: not a browser


PENDING_CONFIG = """\
listeners:
  - address: 127.0.0.1:0
workers: 1
limits: { handshake_timeout: 5m }
log: { level: info, format: text }
auth:
  providers:
    stall: { type: plugin, path: "@STALL@" }
    plug: { type: plugin, path: "@PLUGIN@", options: { key: "@KEY@" } }
routes:
  - { path_prefix: /stall/, handler: echo, auth: stall }
  - { path: /chain, handler: echo, auth: [plug, stall] }
  - { path: /plug, handler: echo, auth: plug }
"""


class PluginPendingTest(unittest.TestCase):
    """A client that leaves while a plugin's check is pending: the check is
    cancelled (the plugin sees it), the gateway goes on serving, and exits
    clean (no leak, no use after free under ASan)."""

    def test_plugin_client_gone_while_pending(self):
        gw = Gateway(fill(PENDING_CONFIG, STALL=stall_plugin_path(), PLUGIN=plugin_path(),
                          KEY=PLUGIN_KEY))
        self.addCleanup(gw.kill)
        gw.start()
        bob = plugin_token("bob")
        # Alone, and as the second step of a chain (after the first allowed).
        for path in ("/stall/alone", "/chain"):
            with self.subTest(path=path):
                c = RawClient(gw.port)
                c.send(upgrade_request(path, extra=[bearer(bob)]))
                gw.wait_for_log(rf"^auth_stall pending path={path} pending=1$")
                c.close()
                gw.wait_for_log(rf"^auth_stall cancelled path={path} pending=0$")
        with RawClient(gw.port) as c:
            c.handshake("/plug", extra=[bearer(bob)])
            c.send(client_frame(OP_TEXT, "still serving"))
            self.assertEqual(c.read_frame(), (True, OP_TEXT, b"still serving"))
        gw.check_exit()  # exit 0, and no sanitizer report
        destroyed = [l for l in gw.stderr_lines if l.startswith("auth_stall destroy ")]
        self.assertTrue(destroyed, gw.stderr_text)
        self.assertEqual([l for l in destroyed if not l.endswith(" pending=0")], [])
        assert_not_logged(gw, [bob])


THROTTLE_CONFIG = """\
listeners:
  - address: 127.0.0.1:0
workers: 2
auth:
  throttle: { failures: 3, window: 1m, block: 5m }
  providers:
    edge: { type: static, tokens: [good-token] }
routes:
  - { path: /p, handler: echo, auth: edge }
  - { path: /open, handler: echo }
"""


def raw_from(port, source):
    c = RawClient.__new__(RawClient)
    c.sock = socket.create_connection(("127.0.0.1", port), timeout=15,
                                      source_address=(source, 0))
    c.buf = b""
    return c


class ThrottleTest(GatewayTestCase):
    CONFIG = THROTTLE_CONFIG

    def status_from(self, source, path, token=None):
        extra = [("Authorization", "Bearer " + token)] if token else []
        with raw_from(self.port, source) as c:
            c.send(upgrade_request(path, extra=extra))
            return c.read_response()

    def test_429_after_failures_and_only_for_that_ip(self):
        for _ in range(3):
            self.assertEqual(self.status_from("127.0.0.3", "/p", "wrong").status, 401)
        r = self.status_from("127.0.0.3", "/p", "good-token")
        self.assertEqual(r.status, 429)
        retry = int(r.header("Retry-After"))
        self.assertTrue(0 < retry <= 300, retry)
        # Blocked on every worker (connections spread over them), and only
        # on authenticated routes.
        for _ in range(4):
            self.assertEqual(self.status_from("127.0.0.3", "/p", "wrong").status, 429)
        self.assertEqual(self.status_from("127.0.0.3", "/open").status, 101)
        # Another address is not affected.
        self.assertEqual(self.status_from("127.0.0.4", "/p", "good-token").status, 101)
        self.assertEqual(self.status_from("127.0.0.4", "/p", "wrong").status, 401)
        self.gw.wait_for_log(r"throttle peer=127\.0\.0\.3")


def make_cert(directory, name):
    """A self-signed certificate for 127.0.0.1 (as an IP SAN), by the openssl CLI."""
    cert = os.path.join(directory, name + ".pem")
    key = os.path.join(directory, name + ".key")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=" + name,
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60)
    return cert, key


HTTPS_CONFIG = """\
listeners:
  - address: 127.0.0.1:0
workers: 1
auth:
  providers:
    tls: { type: http, url: "https://127.0.0.1:@SVC@/check", ca_file: "@CA@", connections: 1,
           subject_header: X-Auth-User }
    untrusted: { type: http, url: "https://127.0.0.1:@SVC@/check", ca_file: "@OTHER@" }
routes:
  - { path: /s, handler: echo, auth: tls }
  - { path: /untrusted, handler: echo, auth: untrusted }
"""


class HttpsAuthTest(GatewayTestCase):
    """Forward auth over https://: verified against ca_file, keep-alive, and a
    reconnect after the service closed its connection."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="wsgate-authtls-")
        cls.addClassCleanup(cls.tmp.cleanup)
        cert, key = make_cert(cls.tmp.name, "auth-service")
        other, _ = make_cert(cls.tmp.name, "someone-else")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        cls.svc = AuthService(tls=ctx).start()
        cls.addClassCleanup(cls.svc.stop)
        cls.CONFIG = fill(HTTPS_CONFIG, SVC=cls.svc.port, CA=cert, OTHER=other)
        super().setUpClass()

    def status(self, path, token):
        with self.raw() as c:
            c.send(upgrade_request(path, extra=[("Authorization", "Bearer " + token)]))
            return c.read_response().status

    def test_allow_deny_and_keep_alive(self):
        tokens = ["tls%d-%s" % (i, uuid.uuid4().hex[:6]) for i in range(3)]
        for t in tokens:
            self.assertEqual(self.status("/s", t), 101)
        conns = {self.svc.with_token(t)[0]["conn"] for t in tokens}
        self.assertEqual(len(conns), 1)
        self.assertEqual(self.status("/s", "deny-tls"), 401)

    def test_reconnects_after_the_service_closes(self):
        for i in range(3):
            self.assertEqual(self.status("/s", "close-%d-%s" % (i, uuid.uuid4().hex[:6])), 101)
        self.assertEqual(self.status("/s", "after-close"), 101)

    def test_unverified_service_is_503(self):
        self.assertEqual(self.status("/untrusted", "ok-untrusted"), 503)
        self.assertEqual(self.svc.with_token("ok-untrusted"), [])


RELOAD_CONFIG = """\
listeners:
  - address: 127.0.0.1:0
workers: 2
auth:
  providers:
    plug: { type: plugin, path: "@PLUGIN@", options: { key: "@KEY@" } }
routes:
  - { path: /plug, handler: echo, auth: plug }
"""


class PluginReloadTest(unittest.TestCase):
    """A reload whose plugin does not load is refused; one that loads (with
    new options) replaces the instances on every worker."""

    def test_reload(self):
        good = fill(RELOAD_CONFIG, PLUGIN=plugin_path(), KEY=PLUGIN_KEY)
        gw = Gateway(good)
        self.addCleanup(gw.kill)
        gw.start()
        path = os.path.join(gw._tmp.name, "wsgate.yaml")

        def status(token):
            with RawClient(gw.port) as c:
                c.send(upgrade_request("/plug", extra=[("Authorization", "Bearer " + token)]))
                return c.read_response().status

        self.assertEqual(status(plugin_token("ann")), 101)
        with open(path, "w") as f:
            f.write(good.replace(plugin_path(), "/nonexistent/plugin.so"))
        gw.signal(signal.SIGHUP)
        gw.wait_for_log(r"reload_failed .*wsgate\.yaml:6:\d+: auth\.providers\.plug\.path: "
                        r"cannot load")
        gw.wait_for_log(r"reload result=rejected")
        self.assertEqual(status(plugin_token("ann")), 101)
        with open(path, "w") as f:
            f.write(fill(RELOAD_CONFIG, PLUGIN=plugin_path(), KEY="new-key"))
        gw.signal(signal.SIGHUP)
        gw.wait_for_log(r"reload result=ok")
        for _ in range(2):
            gw.wait_for_log(r"reload_applied worker=%d" % _)
        self.assertEqual(status(plugin_token("ann")), 401)
        self.assertEqual(status(plugin_token("ann", key="new-key")), 101)
        gw.check_exit()


class ProviderLoadErrorsTest(unittest.TestCase):
    def check(self, provider_yaml):
        text = ("listeners: [{ address: '127.0.0.1:0' }]\n"
                "auth:\n  providers:\n" + provider_yaml +
                "routes: [{ path: /p, handler: echo, auth: p }]\n")
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "c.yaml")
            with open(path, "w") as f:
                f.write(text)
            r = subprocess.run([wsgate_bin(), "-t", "-c", path], capture_output=True,
                               text=True, timeout=60)
        return r.returncode, r.stdout, r.stderr.replace(path, "c.yaml")

    def test_good_plugin(self):
        rc, out, err = self.check(f"    p: {{ type: plugin, path: '{plugin_path()}',"
                                  f" options: {{ key: k }} }}\n")
        self.assertEqual(rc, 0, err)
        self.assertIn("configuration OK", out)

    def test_missing_file(self):
        rc, _, err = self.check("    p: { type: plugin, path: /nonexistent/x.so }\n")
        self.assertEqual(rc, 1)
        self.assertRegex(err, r"^c\.yaml:4:30: auth\.providers\.p\.path: cannot load: "
                              r"/nonexistent/x\.so: cannot open shared object file")

    def test_not_a_plugin(self):
        libc = "/lib/x86_64-linux-gnu/libc.so.6"
        if not os.path.exists(libc):
            self.skipTest("no libc.so.6 at the Debian path")
        rc, _, err = self.check(f"    p: {{ type: plugin, path: {libc} }}\n")
        self.assertEqual(rc, 1)
        self.assertIn("c.yaml:4:30: auth.providers.p.path: not a wsgate auth plugin", err)

    def test_abi_mismatch(self):
        bad = os.environ.get("WSGATE_BAD_ABI_PLUGIN")
        if not bad:
            self.skipTest("WSGATE_BAD_ABI_PLUGIN is not set")
        rc, _, err = self.check(f"    p: {{ type: plugin, path: '{bad}' }}\n")
        self.assertEqual(rc, 1)
        self.assertIn("c.yaml:4:30: auth.providers.p.path: plugin ABI version 42, this wsgate "
                      "needs 1 (rebuild it)", err)

    def test_https_ca_file_missing(self):
        rc, _, err = self.check("    p: { type: http, url: 'https://127.0.0.1:1/',"
                                " ca_file: /nonexistent/ca.pem }\n")
        self.assertEqual(rc, 1)
        self.assertRegex(err, r"^c\.yaml:4:5: auth\.providers\.p\.ca_file: cannot load the CAs from "
                              r"/nonexistent/ca\.pem: ")

    def test_options_refused(self):
        rc, _, err = self.check(f"    p: {{ type: plugin, path: '{plugin_path()}',"
                                f" options: {{ colour: blue }} }}\n")
        self.assertEqual(rc, 1)
        self.assertRegex(err, r"c\.yaml:4:\d+: auth\.providers\.p\.options: invalid option "
                              r"\"colour\"")


if __name__ == "__main__":
    unittest.main()
