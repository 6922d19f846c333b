"""TLS on both legs of a proxied connection: wss:// upstreams (verification
against upstream_tls.ca_file, SNI, server_name, client certificates, and the
502 when verification fails), and the tunnel over a TLS client connection
(relay, fragments, close codes, 1009, 1014, bounded memory when the TLS
client or the upstream stops reading), with a plain or a wss:// upstream
behind it.

Every certificate is made here with the openssl CLI: a CA, a server
certificate it signed (localhost, backend.test, 127.0.0.1), one for
localhost only, a client certificate, and an unrelated second CA."""

import asyncio
import json
import os
import re
import socket
import ssl
import struct
import subprocess
import tempfile
import time
import unittest

import websockets

from test_proxy import (RssSampler, UpstreamsMixin, fast_client_frame, fill, utf8_text, vmrss,
                        wait_ended, wait_stalled)
from upstreams import EchoUpstream, FrameCounter, ScriptedUpstream
from wsgate_harness import (IO_TIMEOUT, OP_BINARY, OP_CLOSE, OP_CONT, OP_TEXT,
                            GatewayTestCase, RawClient, client_frame, close_payload,
                            run_async, small_quarantine_env, upgrade_request,
                            ws_connect)

KiB = 1 << 10
MiB = 1 << 20
SIZES = [0, 125, 126, 64 * KiB, MiB]


# ---- a throwaway PKI -------------------------------------------------------------------


def openssl(*args):
    r = subprocess.run(["openssl", *args], capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)}: exit {r.returncode}\n{r.stderr}")


class Pki:
    """Certificates in a temporary directory; attributes are file paths."""

    def __init__(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="wsgate-pki-")
        self.dir = self._tmp.name
        self.ca, self.ca_key = self._ca("ca", "wsgate-it test CA")
        self.other_ca, _ = self._ca("other-ca", "wsgate-it unrelated CA")
        self.server, self.server_key = self._leaf(
            "server", "localhost", "serverAuth",
            "DNS:localhost,DNS:backend.test,IP:127.0.0.1")
        self.localhost_only, self.localhost_only_key = self._leaf(
            "localhost-only", "localhost", "serverAuth", "DNS:localhost")
        self.client, self.client_key = self._leaf("client", "wsgate-it gateway", "clientAuth")

    def cleanup(self):
        self._tmp.cleanup()

    def _path(self, name):
        return os.path.join(self.dir, name)

    def _ca(self, name, cn):
        cert, key = self._path(name + ".pem"), self._path(name + ".key")
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=" + cn,
                "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        return cert, key

    def _leaf(self, name, cn, usage, san=None):
        cert, key = self._path(name + ".pem"), self._path(name + ".key")
        csr, ext = self._path(name + ".csr"), self._path(name + ".ext")
        with open(ext, "w", encoding="ascii") as f:
            f.write("basicConstraints=critical,CA:FALSE\n"
                    "keyUsage=critical,digitalSignature\n"
                    f"extendedKeyUsage={usage}\n"
                    "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n")
            if san:
                f.write(f"subjectAltName={san}\n")
        openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=" + cn)
        openssl("x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey", self.ca_key,
                "-set_serial", str(int.from_bytes(os.urandom(8), "big")), "-days", "2",
                "-extfile", ext, "-out", cert)
        return cert, key


PKI = None


def setUpModule():
    global PKI
    PKI = Pki()
    unittest.addModuleCleanup(PKI.cleanup)


def server_context(cert, key, client_ca=None):
    """An upstream's TLS context; with client_ca it requires a client
    certificate signed by that CA."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    if client_ca is not None:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(cafile=client_ca)
    return ctx


def client_context():
    """What a client of the gateway's TLS listener trusts: the test CA."""
    return ssl.create_default_context(cafile=PKI.ca)


# ---- TLS upstreams ---------------------------------------------------------------------


NO_CALLBACK = "<sni_callback not called>"


class TlsEchoUpstream(EchoUpstream):
    """EchoUpstream over TLS. Each recorded connection (and @@whoami) also
    has `sni`, the name the sni_callback saw (None: no SNI sent), and
    `peer_cn`, the CN of the client certificate (None without one)."""

    def __init__(self, name, cert, key, client_ca=None, compression=None):
        super().__init__(name, compression=compression)
        self.ctx = server_context(cert, key, client_ca)
        self.ctx.sni_callback = self._sni

    @staticmethod
    def _sni(sslobj, server_name, ctx):
        sslobj.wsgate_sni = server_name  # the SSLObject the transport reports

    def url(self, path=""):
        return f"wss://localhost:{self.port}{path}"

    async def _start(self):
        self._server = await websockets.serve(
            self._handler, "127.0.0.1", 0, ssl=self.ctx, subprotocols=self.subprotocols,
            compression=self.compression, max_size=None, ping_interval=None,
            close_timeout=10)
        return self._server.sockets[0].getsockname()[1]

    def _describe(self, ws):
        rec = super()._describe(ws)
        sslobj = ws.transport.get_extra_info("ssl_object")
        rec["sni"] = getattr(sslobj, "wsgate_sni", NO_CALLBACK)
        subject = dict(x[0] for x in (sslobj.getpeercert() or {}).get("subject", ()))
        rec["peer_cn"] = subject.get("commonName")
        return rec

    def paths(self):
        with self._cond:
            return [c["path"] for c in self.connections]


class TlsScriptedUpstream(ScriptedUpstream):
    """ScriptedUpstream over TLS."""

    def __init__(self, name, cert, key):
        super().__init__(name)
        self.ctx = server_context(cert, key)

    async def _start(self):
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0,
                                                  ssl=self.ctx)
        return self._server.sockets[0].getsockname()[1]


class TlsRawClient(RawClient):
    """RawClient over TLS to a gateway listener, verified with the test CA."""

    def __init__(self, port, timeout=IO_TIMEOUT):  # replaces RawClient's plain socket
        raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            self.sock = client_context().wrap_socket(raw, server_hostname="127.0.0.1")
        except BaseException:
            raw.close()
            raise
        self.buf = b""


def send_all_tolerant(c, data):
    """Sends `data`; the gateway may stop reading once it closed."""
    try:
        c.sock.settimeout(IO_TIMEOUT)
        c.sock.sendall(data)
    except (socket.timeout, OSError):
        pass


def count_log(gw, pattern):
    """How many of the gateway's stderr lines match `pattern`."""
    rx = re.compile(pattern)
    return sum(1 for line in gw.stderr_lines if rx.search(line))


def wait_for_new_log(gw, pattern, before, timeout=IO_TIMEOUT):
    """Waits until more than `before` stderr lines match `pattern`."""
    deadline = time.monotonic() + timeout
    while count_log(gw, pattern) <= before:
        if time.monotonic() > deadline:
            raise AssertionError(f"no new log line matches {pattern!r}:\n" + gw.stderr_text)
        time.sleep(0.05)


def read_message(c):
    """Reads data frames up to a final one; returns (first opcode, payload)."""
    first, payload = None, b""
    while True:
        fin, op, part = c.read_frame()
        if first is None:
            first = op
        payload += part
        if fin:
            return first, payload


# ---- 1-4: wss:// upstreams behind a plain listener -------------------------------------

UPSTREAM_CONFIG = """\
listeners:
  - address: 127.0.0.1:0
workers: 2
log: { level: info, format: text }
limits: { max_message_size: 2MiB }
routes:
  - name: verified
    path: /verified
    upstream: "wss://localhost:@T@"
    upstream_tls: { ca_file: "@CA@" }
  - name: deflate
    path: /deflate
    upstream: "wss://localhost:@D@"
    upstream_tls: { ca_file: "@CA@" }
  - name: renamed
    path: /renamed
    upstream: "wss://localhost:@T@"
    upstream_tls: { ca_file: "@CA@", server_name: backend.test }
  - name: named
    path: /named
    upstream: "wss://127.0.0.1:@L@"
    upstream_tls: { ca_file: "@CA@", server_name: localhost }
  - name: ip
    path: /ip
    upstream: "wss://127.0.0.1:@T@"
    upstream_tls: { ca_file: "@CA@" }
  - name: wrongca
    path: /wrongca
    upstream: "wss://localhost:@T@"
    upstream_tls: { ca_file: "@OTHERCA@" }
  - name: systemca
    path: /systemca
    upstream: "wss://localhost:@T@"
  - name: wrongname
    path: /wrongname
    upstream: "wss://127.0.0.1:@L@"
    upstream_tls: { ca_file: "@CA@" }
  - name: wrongservername
    path: /wrongservername
    upstream: "wss://localhost:@T@"
    upstream_tls: { ca_file: "@CA@", server_name: elsewhere.test }
  - name: verifyoff
    path: /verifyoff
    upstream: "wss://localhost:@T@"
    upstream_tls: { ca_file: "@OTHERCA@", verify: false }
  - name: mtls
    path: /mtls
    upstream: "wss://localhost:@M@"
    upstream_tls: { ca_file: "@CA@", certificate: "@CCERT@", key: "@CKEY@" }
  - name: mtlsnocert
    path: /mtlsnocert
    upstream: "wss://localhost:@M@"
    upstream_tls: { ca_file: "@CA@" }
"""


class WssUpstreamTest(UpstreamsMixin, GatewayTestCase):
    """A plain listener; each failure route is used by one test only, since
    a failed upstream is skipped for `backoff` afterwards."""

    @classmethod
    def setUpClass(cls):
        cls.t = cls.start_upstream(TlsEchoUpstream("T", PKI.server, PKI.server_key))
        cls.d = cls.start_upstream(TlsEchoUpstream("D", PKI.server, PKI.server_key,
                                                   compression="deflate"))
        cls.l = cls.start_upstream(TlsEchoUpstream("L", PKI.localhost_only,
                                                   PKI.localhost_only_key))
        cls.m = cls.start_upstream(TlsEchoUpstream("M", PKI.server, PKI.server_key,
                                                   client_ca=PKI.ca))
        cls.CONFIG = fill(UPSTREAM_CONFIG, T=cls.t.port, D=cls.d.port, L=cls.l.port,
                          M=cls.m.port, CA=PKI.ca, OTHERCA=PKI.other_ca,
                          CCERT=PKI.client, CKEY=PKI.client_key)
        super().setUpClass()

    def whoami(self, path):
        """The upstream's record of this connection, through @@whoami."""
        async def go():
            async with ws_connect(self.url(path)) as ws:
                await ws.send("@@whoami")
                return json.loads(await asyncio.wait_for(ws.recv(), IO_TIMEOUT))
        return run_async(go())

    def expect_502(self, route, upstream):
        """An upgrade on `route` gets a 502 and the socket closed, the
        upstream never sees the request, and the gateway logs the reject."""
        with self.raw() as c:
            c.send(upgrade_request("/" + route))
            resp = c.read_response()
            self.assertEqual(resp.status, 502, resp)
            self.assertEqual((resp.header("Connection") or "").lower(), "close", resp)
            self.assertTrue(c.at_eof(), "socket not closed after the 502")
        self.assertNotIn("/" + route, upstream.paths())
        return self.gw.wait_for_log(rf"reject status=502 .*route={route} ")

    def assert_tls_failure_logged(self, route, upstream, verify_error):
        """The 502 of expect_502, after a TLS handshake that failed to verify
        the upstream's certificate for `verify_error` (OpenSSL's text)."""
        line = self.expect_502(route, upstream)
        self.assertIn('reason="no upstream could be reached"', line)
        down = self.gw.wait_for_log(rf"upstream_down route={route} ")
        self.assertRegex(down, rf' upstream=\S+:{upstream.port} error="TLS handshake failed: '
                               rf'[^"]*certificate verify failed: {verify_error}"')

    # ---- 1. a verified wss:// upstream

    def test_echo_text_and_binary_of_every_size(self):
        async def go():
            async with ws_connect(self.url("/verified?id=sizes")) as ws:
                for n in SIZES:
                    text = utf8_text(n)
                    await ws.send(text)
                    self.assertEqual(await asyncio.wait_for(ws.recv(), 60), text, f"text {n}")
                    data = os.urandom(n)
                    await ws.send(data)
                    self.assertEqual(await asyncio.wait_for(ws.recv(), 60), data,
                                     f"binary {n}")
        run_async(go())
        rec = self.t.closed_connection("id=sizes")
        self.assertEqual(rec["messages"], 2 * len(SIZES))
        self.assertEqual(rec["close_code"], 1000)

    def test_deflate_negotiated_end_to_end(self):
        text = "compressible over tls " * 20000
        blob = os.urandom(300 * KiB)

        async def go():
            async with ws_connect(self.url("/deflate?id=deflate"),
                                  compression="deflate") as ws:
                self.assertEqual([e.name for e in ws.extensions], ["permessage-deflate"])
                for _ in range(3):
                    await ws.send(text)
                    self.assertEqual(await asyncio.wait_for(ws.recv(), 60), text)
                await ws.send(blob)
                self.assertEqual(await asyncio.wait_for(ws.recv(), 60), blob)
        run_async(go())
        rec = self.d.closed_connection("id=deflate")
        self.assertEqual(rec["extensions"], ["permessage-deflate"])
        self.assertEqual(rec["messages"], 4)

    # ---- 2. SNI and server_name

    def test_sni_is_the_url_host_name(self):
        self.assertEqual(self.whoami("/verified?id=sni")["sni"], "localhost")

    def test_sni_is_server_name_when_set(self):
        self.assertEqual(self.whoami("/renamed")["sni"], "backend.test")

    def test_server_name_is_the_name_verified(self):
        # The URL's host is 127.0.0.1, which this certificate does not name;
        # server_name is what is sent and checked.
        info = self.whoami("/named")
        self.assertEqual((info["name"], info["sni"]), ("L", "localhost"))

    def test_ip_url_is_verified_against_the_ip_san(self):
        self.assertEqual(self.whoami("/ip")["name"], "T")

    def test_no_sni_for_an_ip_url(self):
        # RFC 6066 section 3: no literal address in server_name.
        self.assertIsNone(self.whoami("/ip")["sni"])

    # ---- 3. verification failures

    def test_502_when_the_ca_did_not_sign_the_certificate(self):
        self.assert_tls_failure_logged("wrongca", self.t, "unable to get local issuer certificate")

    def test_502_with_the_system_cas(self):
        self.assert_tls_failure_logged("systemca", self.t, "unable to get local issuer certificate")

    def test_502_when_the_ip_is_not_in_the_certificate(self):
        self.assert_tls_failure_logged("wrongname", self.l, "IP address mismatch")

    def test_502_when_server_name_is_not_in_the_certificate(self):
        self.assert_tls_failure_logged("wrongservername", self.t, "hostname mismatch")

    def test_verify_false_accepts_any_certificate(self):
        self.assertEqual(self.whoami("/verifyoff")["name"], "T")

    # ---- 4. client certificates

    def test_client_certificate_is_presented(self):
        info = self.whoami("/mtls")
        self.assertEqual((info["name"], info["peer_cn"]), ("M", "wsgate-it gateway"))

    def test_502_without_a_client_certificate(self):
        # Under TLS 1.3 (what both ends pick here) the gateway's side of the
        # handshake completes and the upstream's alert arrives while it waits
        # for the 101; under TLS 1.2 the handshake itself fails.
        line = self.expect_502("mtlsnocert", self.m)
        self.assertRegex(line, r'reason="(no upstream could be reached|'
                               r'upstream closed before answering the upgrade)"')


# ---- 5. the tunnel over a TLS listener -------------------------------------------------

TLS_LISTENER_CONFIG = """\
listeners:
  - address: 127.0.0.1:0
    tls: { certificate: "@CERT@", key: "@KEY@" }
workers: 2
log: { level: info, format: text }
limits: { max_message_size: @MAX@, proxy_buffer: 64KiB }
routes:
  - { name: plain, path: /plain, upstream: "ws://127.0.0.1:@E@" }
  - name: wss
    path: /wss
    upstream: "wss://localhost:@T@"
    upstream_tls: { ca_file: "@CA@" }
  - { name: scripted, path_prefix: /s/, strip_prefix: true, upstream: "ws://127.0.0.1:@S@" }
  - name: scripted-tls
    path_prefix: /t/
    strip_prefix: true
    upstream: "wss://localhost:@ST@"
    upstream_tls: { ca_file: "@CA@" }
"""


class TlsListenerMixin(UpstreamsMixin):
    """A TLS listener with /plain (a ws:// echo upstream) and /wss (a
    wss:// one), each test running over both; /s/ and /t/ lead to scripted
    upstreams, plain and TLS."""

    MAX = "2MiB"

    @classmethod
    def setUpClass(cls):
        cls.e = cls.start_upstream(EchoUpstream("E"))
        cls.t = cls.start_upstream(TlsEchoUpstream("T", PKI.server, PKI.server_key))
        cls.s = cls.start_upstream(ScriptedUpstream("S"))
        cls.st = cls.start_upstream(TlsScriptedUpstream("ST", PKI.server, PKI.server_key))
        cls.CONFIG = fill(TLS_LISTENER_CONFIG, E=cls.e.port, T=cls.t.port, S=cls.s.port,
                          ST=cls.st.port, CA=PKI.ca, CERT=PKI.server, KEY=PKI.server_key,
                          MAX=cls.MAX)
        super().setUpClass()
        cls.gw.wait_for_log(r"listening address=127\.0\.0\.1:\d+ tls=yes")

    def url(self, path):
        return f"wss://127.0.0.1:{self.port}{path}"

    def connect(self, path, **kw):
        return ws_connect(self.url(path), ssl=client_context(), **kw)

    def raw(self):
        return TlsRawClient(self.port)

    def routes(self):
        return (("/plain", self.e), ("/wss", self.t))


class TlsTunnelTest(TlsListenerMixin, GatewayTestCase):
    def test_echo_text_and_binary_of_every_size(self):
        async def go(path):
            async with self.connect(f"{path}?id=sizes") as ws:
                for n in SIZES:
                    text = utf8_text(n)
                    await ws.send(text)
                    self.assertEqual(await asyncio.wait_for(ws.recv(), 60), text, f"text {n}")
                    data = os.urandom(n)
                    await ws.send(data)
                    self.assertEqual(await asyncio.wait_for(ws.recv(), 60), data,
                                     f"binary {n}")
        for path, up in self.routes():
            with self.subTest(path=path):
                run_async(go(path))
                rec = up.closed_connection("id=sizes")
                self.assertEqual(rec["messages"], 2 * len(SIZES))

    def test_fragmented_message_is_relayed(self):
        parts = [os.urandom(n) for n in (1, 70 * KiB, 300 * KiB, 0, 17)]
        for path, up in self.routes():
            with self.subTest(path=path), self.raw() as c:
                c.handshake(f"{path}?id=frag")
                c.send(client_frame(OP_TEXT, b"frag", fin=False))
                c.send(client_frame(OP_CONT, b"men", fin=False))
                c.send(client_frame(OP_CONT, b"ted"))
                self.assertEqual(read_message(c), (OP_TEXT, b"fragmented"))
                for i, part in enumerate(parts):
                    c.send(fast_client_frame(OP_BINARY if i == 0 else OP_CONT, part,
                                             fin=i == len(parts) - 1))
                self.assertEqual(read_message(c), (OP_BINARY, b"".join(parts)))
                c.send(client_frame(OP_CLOSE, close_payload(1000)))
                self.assertEqual(c.read_close()[0], 1000)
                self.assertEqual(up.closed_connection("id=frag")["messages"], 2)

    def test_close_codes_are_relayed_both_ways(self):
        async def go(path):
            async with self.connect(f"{path}?id=close-up") as ws:
                await ws.send("@@close 4001 bye")
                with self.assertRaises(websockets.ConnectionClosed) as cm:
                    await asyncio.wait_for(ws.recv(), IO_TIMEOUT)
                self.assertIsNotNone(cm.exception.rcvd, str(cm.exception))
                self.assertEqual((cm.exception.rcvd.code, cm.exception.rcvd.reason),
                                 (4001, "bye"))
            ws = await self.connect(f"{path}?id=close-down")
            await ws.send("hello")
            self.assertEqual(await asyncio.wait_for(ws.recv(), IO_TIMEOUT), "hello")
            await ws.close(4002, "client-bye")
            self.assertEqual(ws.close_rcvd.code, 4002)  # the upstream's echo of it
        for path, up in self.routes():
            with self.subTest(path=path):
                run_async(go(path))
                rec = up.closed_connection("id=close-down")
                self.assertEqual((rec["close_code"], rec["close_reason"]),
                                 (4002, "client-bye"))

    def test_upstream_gone_without_close_frame_gets_1014(self):
        async def go(path):
            async with self.connect(f"{path}?id=abort") as ws:
                await ws.send("@@abort")
                with self.assertRaises(websockets.ConnectionClosed) as cm:
                    await asyncio.wait_for(ws.recv(), IO_TIMEOUT)
                self.assertIsNotNone(cm.exception.rcvd, str(cm.exception))
                self.assertEqual(cm.exception.rcvd.code, 1014)
        for path, up in self.routes():
            with self.subTest(path=path):
                logged = rf'tunnel_close route={path[1:]} code=1014 reason="upstream went away"'
                before = count_log(self.gw, logged)
                run_async(go(path))
                self.assertIsNone(up.closed_connection("id=abort")["close_code"])
                wait_for_new_log(self.gw, logged, before)

    def test_raw_client_sees_1014_and_the_end(self):
        for path, _up in self.routes():
            with self.subTest(path=path), self.raw() as c:
                c.handshake(f"{path}?id=abort-raw")
                c.send(client_frame(OP_TEXT, b"@@abort"))
                self.assertEqual(c.read_close()[0], 1014)
                try:
                    c.send(client_frame(OP_CLOSE, close_payload(1014)))
                except OSError:
                    pass  # the gateway may have closed already
                ended, _ = wait_ended(c)
                self.assertTrue(ended, "the TLS connection stayed open after the 1014")

    def test_upstream_death_after_its_first_frame_gets_1014(self):
        # The upstream's 101 and first frame come in one write; then it
        # drops the connection: a clean (TLS) close or a reset, no close frame.
        for prefix, up in (("s", self.s), ("t", self.st)):
            for how in ("fin", "rst"):
                conn_id = f"die-{how}"
                with self.subTest(upstream=prefix, how=how), self.raw() as c:
                    c.handshake(f"/{prefix}/die?how={how}&id={conn_id}")
                    self.assertEqual(c.read_frame(), (True, OP_TEXT, b"hello"))
                    c.send(client_frame(OP_TEXT, b"are you there?"))
                    self.assertEqual(c.read_close()[0], 1014)
                    # Not read at once: over TLS the close_notify can reach
                    # the gateway before the upstream's task records it.
                    rec = up.conn(conn_id)
                    self.assertTrue(up.wait_until(lambda: rec.get("died"), what="its end"))


class TlsTunnelLimitTest(TlsListenerMixin, GatewayTestCase):
    MAX = "256KiB"
    LIMIT = 256 * KiB

    def test_message_of_exactly_max_message_size_passes(self):
        async def go(path):
            async with self.connect(f"{path}?id=max") as ws:
                data = os.urandom(self.LIMIT)
                await ws.send(data)
                self.assertEqual(await asyncio.wait_for(ws.recv(), 60), data)
        for path, _up in self.routes():
            with self.subTest(path=path):
                run_async(go(path))

    def test_1009_client_message_over_limit_reaches_both_sides(self):
        async def go(path):
            async with self.connect(f"{path}?id=big-up") as ws:
                await ws.send(os.urandom(self.LIMIT + 1))
                with self.assertRaises(websockets.ConnectionClosed) as cm:
                    await asyncio.wait_for(ws.recv(), IO_TIMEOUT)
                self.assertIsNotNone(cm.exception.rcvd, str(cm.exception))
                self.assertEqual(cm.exception.rcvd.code, 1009)
        for path, up in self.routes():
            with self.subTest(path=path):
                run_async(go(path))
                rec = up.closed_connection("id=big-up")
                self.assertEqual((rec["close_code"], rec["messages"]), (1009, 0), rec)

    def test_1009_fragmented_client_message_over_limit(self):
        half = 200 * KiB
        for path, up in self.routes():
            with self.subTest(path=path), self.raw() as c:
                c.handshake(f"{path}?id=big-frag")
                send_all_tolerant(c, fast_client_frame(OP_BINARY, b"\x11" * half, fin=False)
                                  + fast_client_frame(OP_CONT, b"\x22" * half))
                c.sock.settimeout(IO_TIMEOUT)
                _fin, op, payload = c.read_frame()
                self.assertEqual(op, OP_CLOSE, "a data frame came back")
                self.assertEqual(struct.unpack("!H", payload[:2])[0], 1009, payload)
                try:
                    c.send(client_frame(OP_CLOSE, close_payload(1009)))
                except OSError:
                    pass
                rec = up.closed_connection("id=big-frag")
                self.assertEqual((rec["close_code"], rec["messages"]), (1009, 0), rec)

    def test_1009_upstream_message_over_limit_reaches_both_sides(self):
        for path, up in self.routes():
            with self.subTest(path=path), self.raw() as c:
                c.handshake(f"{path}?id=big-down")
                c.send(client_frame(OP_TEXT, f"@@send-binary {self.LIMIT + 1}"))
                c.sock.settimeout(IO_TIMEOUT)
                _fin, op, payload = c.read_frame()
                self.assertEqual(op, OP_CLOSE, "the oversized message was relayed")
                self.assertEqual(struct.unpack("!H", payload[:2])[0], 1009, payload)
                try:
                    c.send(client_frame(OP_CLOSE, close_payload(1009)))
                except OSError:
                    pass
                rec = up.closed_connection("id=big-down")
                self.assertEqual(rec["close_code"], 1009, rec)


# ---- 6. a TLS client (or an upstream) that stops reading -------------------------------

SLOW_CONFIG = """\
listeners:
  - address: 127.0.0.1:0
    tls: { certificate: "@CERT@", key: "@KEY@" }
workers: 2
log: { level: info, format: text }
limits: { proxy_buffer: 64KiB, max_message_size: 2MiB, idle_timeout: 10m }
routes:
  - name: scripted
    path_prefix: /s/
    strip_prefix: true
    upstream: "ws://127.0.0.1:@S@"
  - name: scripted-tls
    path_prefix: /t/
    strip_prefix: true
    upstream: "wss://localhost:@ST@"
    upstream_tls: { ca_file: "@CA@" }
"""

FLOOD_MESSAGES = 50  # of 1 MiB each
MEMORY_SLACK = 32 * MiB
STALL = 2.0  # seconds without progress that count as "stalled"


class TlsSlowReaderMemoryTest(UpstreamsMixin, GatewayTestCase):
    ENV = small_quarantine_env()

    @classmethod
    def setUpClass(cls):
        cls.s = cls.start_upstream(ScriptedUpstream("S"))
        cls.st = cls.start_upstream(TlsScriptedUpstream("ST", PKI.server, PKI.server_key))
        cls.CONFIG = fill(SLOW_CONFIG, S=cls.s.port, ST=cls.st.port, CA=PKI.ca,
                          CERT=PKI.server, KEY=PKI.server_key)
        super().setUpClass()

    def raw(self):
        return TlsRawClient(self.port)

    @staticmethod
    def read_messages(c, counter, n, timeout):
        if c.buf:
            counter.feed(c.buf)
            c.buf = b""
        c.sock.settimeout(timeout)
        while counter.messages < n:
            data = c.sock.recv(1 << 20)
            if not data:
                raise AssertionError(f"EOF after {counter.payload_bytes} bytes")
            counter.feed(data)

    def baseline(self, prefix, up):
        """The gateway's RSS after one small flood read in full."""
        conn_id = f"warmup-{self.id()}"
        with self.raw() as c:
            c.handshake(f"/{prefix}/flood?n=4&id={conn_id}")
            self.read_messages(c, FrameCounter(), 4, IO_TIMEOUT)
        rec = up.conn(conn_id)
        up.wait_until(lambda: rec["done"], what="the warm-up's end")
        time.sleep(0.5)
        return vmrss(self.gw.proc.pid)

    def assert_bounded(self, sampler, base, when):
        growth = sampler.peak - base
        self.assertLess(growth, MEMORY_SLACK,
                        f"gateway RSS grew by {growth / MiB:.1f} MiB {when} "
                        f"(baseline {base / MiB:.1f} MiB)")

    def check_slow_reader(self, prefix, up):
        base = self.baseline(prefix, up)
        total = FLOOD_MESSAGES * ScriptedUpstream.FLOOD_MESSAGE
        conn_id = f"flood-{prefix}"
        with RssSampler(self.gw.proc.pid) as rss, self.raw() as c:
            c.handshake(f"/{prefix}/flood?n={FLOOD_MESSAGES}&id={conn_id}")
            rec = up.conn(conn_id)
            wait_stalled(rec)  # read nothing until the upstream cannot push more
            self.assertLess(rec.get("sent", 0), total,
                            f"the gateway took all {total // MiB} MiB from the upstream "
                            "while the TLS client read nothing")
            self.assert_bounded(rss, base, "while the TLS client did not read")
            counter = FrameCounter()
            self.read_messages(c, counter, FLOOD_MESSAGES, 60)
            self.assertEqual(counter.payload_bytes, total)
            self.assertEqual(counter.frames, FLOOD_MESSAGES)
            self.assertIsNone(counter.close)
            up.wait_until(lambda: rec.get("finished"), what="the flood's end")
            self.assert_bounded(rss, base, "during the flood to a slow TLS client")

    def test_tls_client_that_stops_reading(self):
        self.check_slow_reader("s", self.s)

    def test_tls_client_that_stops_reading_behind_a_wss_upstream(self):
        self.check_slow_reader("t", self.st)

    def check_slow_upstream(self, prefix, up):
        """The reverse: the TLS client floods an upstream that reads nothing
        until told to, then everything."""
        base = self.baseline(prefix, up)
        frame = fast_client_frame(OP_BINARY, b"\x3c" * MiB)
        total = FLOOD_MESSAGES * len(frame)
        conn_id = f"sink-{prefix}"
        with RssSampler(self.gw.proc.pid) as rss, self.raw() as c:
            c.handshake(f"/{prefix}/sink?id={conn_id}")
            rec = up.conn(conn_id)
            view = memoryview(frame)
            sent = 0

            def send_until(stop_on_stall):
                nonlocal sent
                c.sock.settimeout(0.2)
                since = time.monotonic()
                deadline = time.monotonic() + 120
                while sent < total and time.monotonic() < deadline:
                    off = sent % len(view)
                    try:
                        n = c.sock.send(view[off:min(len(view), off + total - sent)])
                    except socket.timeout:
                        n = 0  # an SSL write is retried with the same bytes
                    if n > 0:
                        sent += n
                        since = time.monotonic()
                    elif stop_on_stall and time.monotonic() - since > STALL:
                        return

            send_until(stop_on_stall=True)
            self.assertLess(sent, total, f"the gateway took all {total // MiB} MiB from "
                                         "the TLS client while the upstream read nothing")
            self.assert_bounded(rss, base, "while the upstream did not read")
            rec["resume"].set()
            send_until(stop_on_stall=False)
            self.assertEqual(sent, total, "the TLS client could not send everything")
            counter = up.wait_until(
                lambda: rec["counter"].messages >= FLOOD_MESSAGES and rec["counter"],
                timeout=120, what=f"all {FLOOD_MESSAGES} messages at the upstream")
            self.assertEqual(counter.payload_bytes, FLOOD_MESSAGES * MiB)
            self.assertIsNone(counter.close)
            self.assert_bounded(rss, base, "during a flood to a slow upstream")

    def test_upstream_that_stops_reading_behind_a_tls_client(self):
        self.check_slow_upstream("s", self.s)

    def test_wss_upstream_that_stops_reading_behind_a_tls_client(self):
        self.check_slow_upstream("t", self.st)


if __name__ == "__main__":
    unittest.main()
