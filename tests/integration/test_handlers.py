"""Handler plugins and the handler API: the example plugin, what on_open and
on_close see (the authenticated identity too), that create and destroy run
once per worker and route, and plugin load errors from wsgate -t."""

import asyncio
import hashlib
import hmac
import os
import signal
import subprocess
import tempfile
import time
import unittest

from jwt_tokens import SECRET, b64u, b64u_json

from wsgate_harness import (IO_TIMEOUT, Gateway, GatewayTestCase, RawClient,
                            client_frame, close_payload, run_async, upgrade_request,
                            wsgate_bin, ws_connect)

OP_CLOSE = 0x8


def plugin_paths():
    example = os.environ.get("WSGATE_EXAMPLE_PLUGIN")
    tests = os.environ.get("WSGATE_TEST_PLUGINS")
    if not example or not tests:
        raise unittest.SkipTest("WSGATE_EXAMPLE_PLUGIN / WSGATE_TEST_PLUGINS are not set")
    return example, tests


def hs256(claims, secret=SECRET):
    """An HS256 JWT over `claims` (signed with jwt_tokens.SECRET by default)."""
    signing_input = b64u_json({"alg": "HS256", "typ": "JWT"}) + "." + b64u_json(claims)
    sig = hmac.new(secret.encode(), signing_input.encode("ascii"), hashlib.sha256).digest()
    return signing_input + "." + b64u(sig)


def probe_info(text):
    """The "key=value" lines of the probe's first message as a dict."""
    return dict(l.split("=", 1) for l in text.split("\n"))


def position(text, needle):
    i = text.index(needle)
    return text.count("\n", 0, i) + 1, i - (text.rfind("\n", 0, i) + 1) + 1


class PluginTest(GatewayTestCase):
    @classmethod
    def setUpClass(cls):
        example, tests = plugin_paths()
        cls.tmp = tempfile.TemporaryDirectory(prefix="wsgate-plugin-")
        cls.close_log = os.path.join(cls.tmp.name, "closes.log")
        cls.CONFIG = f"""\
listeners:
  - address: 127.0.0.1:0
workers: 2
log: {{ level: info, format: text }}
auth:
  providers:
    edge: {{ type: static, tokens: [sesame] }}
    users:
      type: jwt
      algorithms: [HS256]
      secret: "{SECRET}"
      claims_to_headers: {{ roles: X-Auth-Roles, tenant: X-Tenant }}
routes:
  - name: upper
    path: /upper
    handler: plugin
    plugin: {example}
    options: {{ prefix: "> ", max_messages: "3", greet: "true" }}
    auth: edge
  - name: probe
    path_prefix: /probe/
    handler: plugin
    plugin: {tests}/probe.so
    options: {{ close_log: {cls.close_log} }}
  - name: private-probe
    path: /private
    handler: plugin
    plugin: {tests}/probe.so
    auth: edge
  - {{ name: jwt-probe, path: /jwt, handler: plugin, plugin: {tests}/probe.so,
      auth: users }}
  - {{ name: open-probe, path: /open, handler: plugin, plugin: {tests}/probe.so,
      auth: none }}
"""
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.tmp.cleanup()

    def closes(self, n):
        """The first n lines on_close wrote (waiting for them as a hang guard)."""
        deadline = time.monotonic() + IO_TIMEOUT
        while True:
            try:
                with open(self.close_log, encoding="utf-8") as f:
                    lines = f.read().splitlines()
            except FileNotFoundError:
                lines = []
            if len(lines) >= n or time.monotonic() > deadline:
                return lines
            time.sleep(0.05)

    def test_example_plugin_uppercases_with_options(self):
        async def go():
            hdr = {"Authorization": "Bearer sesame"}
            async with ws_connect(self.url("/upper"), extra_headers=hdr) as ws:
                self.assertEqual(await ws.recv(), "hello edge on upper")
                await ws.send("abc é xyz")
                self.assertEqual(await ws.recv(), "> ABC é XYZ")
                await ws.send(b"\x00bin")
                self.assertEqual(await ws.recv(), b"> \x00BIN")
                await ws.send("three")
                self.assertEqual(await ws.recv(), "> THREE")
                await ws.wait_closed()
                self.assertEqual((ws.close_code, ws.close_reason),
                                 (1000, "max_messages reached"))
        run_async(go())

    def test_auth_still_guards_plugin_routes(self):
        with RawClient(self.port) as c:
            c.send(b"GET /upper HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                   b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                   b"Sec-WebSocket-Version: 13\r\n\r\n")
            self.assertEqual(c.read_response().status, 401)

    def test_on_open_sees_the_request(self):
        async def go():
            async with ws_connect(self.url("/probe/x?a=1&b=%20"),
                                  extra_headers={"X-Probe": "yes"}) as ws:
                info = dict(l.split("=", 1) for l in (await ws.recv()).split("\n"))
            self.assertEqual(info["path"], "/probe/x")
            self.assertEqual(info["query"], "a=1&b=%20")
            self.assertEqual(info["host"], f"127.0.0.1:{self.port}")
            self.assertEqual(info["route"], "probe")
            self.assertEqual(info["peer"], "127.0.0.1")
            self.assertEqual(info["subject"], "(none)")
            self.assertEqual(info["x-probe"], "yes")
            self.assertGreaterEqual(int(info["headers"]), 6)
            self.assertEqual(info["nworkers"], "2")
            self.assertIn(info["worker"], ("0", "1"))
            self.assertEqual(info["nidentity"], "0")
            async with ws_connect(self.url("/private"),
                                  extra_headers={"Authorization": "Bearer sesame"}) as ws:
                info = dict(l.split("=", 1) for l in (await ws.recv()).split("\n"))
            self.assertEqual(info["subject"], "edge")
            self.assertEqual(info["query"], "")
        run_async(go())

    def test_on_open_sees_the_identity(self):
        """req->subject and req->identity[] are what the route's provider
        established; a client's own identity headers never get into them."""
        token = hs256({"sub": "alice", "roles": ["admin", "ops"], "tenant": "acme",
                       "exp": int(time.time()) + 600})
        spoof = {"X-Auth-Subject": "mallory", "X-Auth-Roles": "root", "X-Tenant": "evil"}

        async def probe(path, headers):
            async with ws_connect(self.url(path), extra_headers=headers) as ws:
                info = probe_info(await ws.recv())
                await ws.send("subject")  # gw_ws_subject, after on_open
                return info, await ws.recv()

        async def go():
            # jwt: the subject claim and both mapped claims (an array joined).
            info, subject = await probe("/jwt", {"Authorization": f"Bearer {token}",
                                                 **spoof})
            self.assertEqual((info["route"], info["subject"], subject),
                             ("jwt-probe", "alice", "alice"))
            ident = {k: v for k, v in info.items() if k.startswith("identity.")}
            self.assertEqual(info["nidentity"], "2")
            self.assertEqual(ident, {"identity.X-Auth-Roles": "admin,ops",
                                     "identity.X-Tenant": "acme"})
            # A token without a mapped claim: that header is absent, not empty.
            partial = hs256({"sub": "bob", "roles": "reader"})
            info, subject = await probe("/jwt", {"Authorization": f"Bearer {partial}"})
            self.assertEqual((info["subject"], subject), ("bob", "bob"))
            self.assertEqual(info["nidentity"], "1")
            self.assertEqual(info["identity.X-Auth-Roles"], "reader")
            self.assertNotIn("identity.X-Tenant", info)
            # static: a subject (the provider's name), no identity headers.
            info, subject = await probe("/private", {"Authorization": "Bearer sesame",
                                                     **spoof})
            self.assertEqual((info["subject"], subject, info["nidentity"]),
                             ("edge", "edge", "0"))
            # auth: none, and a route without auth: nobody, whatever is sent.
            for path in ("/open", "/probe/none"):
                info, subject = await probe(path, {"Authorization": f"Bearer {token}",
                                                   **spoof})
                self.assertEqual((info["subject"], subject, info["nidentity"]),
                                 ("(none)", "(none)", "0"), path)
                self.assertFalse([k for k in info if k.startswith("identity.")], path)
        run_async(go())
        # The jwt route still refuses what its provider refuses.
        with RawClient(self.port) as c:
            forged = hs256({"sub": "alice"}, secret="not the secret")
            c.send(upgrade_request("/jwt", extra=[("Authorization", f"Bearer {forged}")]))
            self.assertEqual(c.read_response().status, 401)

    def test_per_connection_data(self):
        async def go():
            async with ws_connect(self.url("/probe/a")) as a, \
                    ws_connect(self.url("/probe/b")) as b:
                await a.recv()
                await b.recv()
                for m in ("1", "2"):
                    await a.send(m)
                    self.assertEqual(await a.recv(), m)
                await a.send("count")
                self.assertEqual(await a.recv(), "2")
                await b.send("count")
                self.assertEqual(await b.recv(), "0")
        run_async(go())

    def test_on_close_codes(self):
        with open(self.close_log, "w", encoding="utf-8"):
            pass
        # 1. The client closes with its own code and reason.
        with RawClient(self.port) as c:
            c.handshake("/probe/c1")
            c.read_frame()
            c.send(client_frame(OP_CLOSE, close_payload(4001, b"client bye")))
            self.assertEqual(c.read_close(), (4001, b""))
        self.assertEqual(self.closes(1)[-1], "4001 client bye")
        # 2. The handler closes; on_close gets the peer's answer.
        with RawClient(self.port) as c:
            c.handshake("/probe/c2")
            c.read_frame()
            c.send(client_frame(0x1, b"close 4002 server bye"))
            self.assertEqual(c.read_close(), (4002, b"server bye"))
            c.send(client_frame(OP_CLOSE, close_payload(4002)))
        self.assertEqual(self.closes(2)[-1], "4002 ")
        # 3. A protocol error: the gateway fails the connection with 1002.
        with RawClient(self.port) as c:
            c.handshake("/probe/c3")
            c.read_frame()
            c.send(b"\x81\x02hi")  # unmasked
            self.assertEqual(c.read_close()[0], 1002)
        self.assertEqual(self.closes(3)[-1], "1002 invalid frame header")
        # 4. The client vanishes: 1006.
        c = RawClient(self.port)
        c.handshake("/probe/c4")
        c.read_frame()
        c.close()
        self.assertEqual(self.closes(4)[-1], "1006 ")


def read_life(path):
    """The probe's life log as (event, {key: value}) tuples, in file order."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return []
    out = []
    for line in lines:
        event, *fields = line.split(" ")
        out.append((event, dict(f.split("=", 1) for f in fields)))
    return out


def wait_life(path, pred, timeout=IO_TIMEOUT):
    """The life log once pred(log) holds (a hang guard, not a timing check)."""
    deadline = time.monotonic() + timeout
    while True:
        log = read_life(path)
        if pred(log) or time.monotonic() > deadline:
            return log
        time.sleep(0.05)


class PluginLifecycleTest(unittest.TestCase):
    """create runs once per worker and route (plus the loading thread's check,
    destroyed at once); destroy once per create: when the configuration is
    released after a reload, and at a clean exit."""

    ROUTES = ("life-a", "life-b")

    def setUp(self):
        _, tests = plugin_paths()
        self.tmp = tempfile.TemporaryDirectory(prefix="wsgate-life-")
        self.addCleanup(self.tmp.cleanup)
        self.life = os.path.join(self.tmp.name, "life.log")
        routes = "".join(
            f"  - {{ name: {r}, path: /{r}, handler: plugin, plugin: {tests}/probe.so,\n"
            f"      options: {{ life_log: \"{self.life}\" }} }}\n" for r in self.ROUTES)
        self.config = ("listeners:\n  - address: 127.0.0.1:0\nworkers: 2\n"
                       "log: { level: info, format: text }\nroutes:\n" + routes)

    def creates(self, log):
        return [f for e, f in log if e == "create"]

    def destroys(self, log):
        return [f for e, f in log if e == "destroy"]

    def assert_generation(self, log, seqs):
        """One check instance per route, created and destroyed back to back
        before any worker's, and one instance per worker and route."""
        created = [(e, f) for e, f in log if e == "create" and f["seq"] in seqs]
        checks = [f for _, f in created if f["nworkers"] == "1"]
        self.assertEqual(sorted((f["route"], f["worker"]) for f in checks),
                         [(r, "0") for r in self.ROUTES], log)
        workers = [f for _, f in created if f["nworkers"] == "2"]
        self.assertEqual(sorted((f["route"], f["worker"]) for f in workers),
                         [(r, w) for r in self.ROUTES for w in ("0", "1")], log)
        first_worker = min(log.index(("create", f)) for f in workers)
        for f in checks:
            i = log.index(("create", f))
            self.assertEqual(log[i + 1][0], "destroy", log)
            self.assertEqual(log[i + 1][1]["seq"], f["seq"], log)
            self.assertLess(i + 1, first_worker, log)
        return {f["seq"] for f in workers}

    def test_once_per_worker_and_route_then_destroyed_at_exit(self):
        gw = Gateway(self.config)
        self.addCleanup(gw.kill)
        gw.start()
        log = wait_life(self.life, lambda l: len(self.creates(l)) >= 6)
        self.assertEqual(len(self.creates(log)), 6, log)
        live = self.assert_generation(log, {f["seq"] for f in self.creates(log)})
        # Running: only the two checks were destroyed.
        self.assertEqual(len(self.destroys(log)), 2, log)
        self.assertFalse(live & {f["seq"] for f in self.destroys(log)}, log)

        # Connections come and go without creating or destroying instances.
        async def go():
            for r in self.ROUTES:
                async with ws_connect(f"ws://127.0.0.1:{gw.port}/{r}") as ws:
                    info = probe_info(await ws.recv())
                    self.assertEqual((info["route"], info["nworkers"]), (r, "2"))
        run_async(go())
        gw.check_exit()  # SIGTERM, exit 0, no sanitizer report
        log = read_life(self.life)
        self.assertEqual(len(self.creates(log)), 6, log)
        # Each instance destroyed exactly once, on the thread that created it.
        gone = self.destroys(log)
        self.assertEqual(sorted(f["seq"] for f in gone),
                         sorted(f["seq"] for f in self.creates(log)), log)
        self.assertEqual({f["thread"] for f in gone}, {"same"}, log)

    def test_reload_destroys_the_old_instances_when_released(self):
        gw = Gateway(self.config)
        self.addCleanup(gw.kill)
        gw.start()
        first = wait_life(self.life, lambda l: len(self.creates(l)) >= 6)
        old = self.assert_generation(first, {f["seq"] for f in self.creates(first)})

        async def go():
            url = f"ws://127.0.0.1:{gw.port}/life-a"
            async with ws_connect(url) as ws:
                held = probe_info(await ws.recv())["worker"]
                gw.signal(signal.SIGHUP)
                gw.wait_for_log(r"reload_applied worker=0 generation=2")
                gw.wait_for_log(r"reload_applied worker=1 generation=2")
                # Destroyed by now: checks 2 + 2, the unheld worker's old 2.
                log = wait_life(self.life, lambda l: len(self.destroys(l)) >= 6)
                self.assertEqual(len(self.destroys(log)), 6, log)
                new = self.assert_generation(
                    log, {f["seq"] for f in self.creates(log)} - {f["seq"] for f in
                                                                 self.creates(first)})
                self.assertEqual(len(self.creates(log)), 12, log)
                # The worker that holds the old connection keeps its old
                # instances; the other worker's are gone with its old snapshot.
                gone = {f["seq"] for f in self.destroys(log)}
                kept = {f["seq"] for f in self.creates(first)
                        if f["seq"] in old and f["worker"] == held}
                self.assertEqual(old - gone, kept, log)
                self.assertFalse(new & gone, log)
                await ws.send("count")
                self.assertEqual(await ws.recv(), "0")
            log = wait_life(self.life, lambda l: len(self.destroys(l)) >= 8)
            self.assertEqual({f["seq"] for f in self.destroys(log)} & old, old, log)
            return new
        new = run_async(go())
        gw.check_exit()
        log = read_life(self.life)
        self.assertEqual(len(self.creates(log)), 12, log)
        self.assertEqual(sorted(f["seq"] for f in self.destroys(log)),
                         sorted(f["seq"] for f in self.creates(log)), log)
        self.assertTrue(new <= {f["seq"] for f in self.destroys(log)}, log)
        # handler.h: destroy runs on the thread that ran create, for the
        # first generation, the reloaded one, and the load-time checks.
        self.assertEqual({f["thread"] for f in self.destroys(log)}, {"same"}, log)


class PluginErrorTest(unittest.TestCase):
    """wsgate -t loads plugins and reports failures at the plugin: key."""

    def setUp(self):
        self.example, self.tests = plugin_paths()
        self.tmp = tempfile.TemporaryDirectory(prefix="wsgate-plugin-t-")
        self.addCleanup(self.tmp.cleanup)

    def check(self, plugin, options="", run=False):
        text = ("listeners:\n  - address: 127.0.0.1:0\nroutes:\n"
                "  - name: p\n    path: /p\n    handler: plugin\n"
                f"    plugin: {plugin}\n{options}")
        path = os.path.join(self.tmp.name, "c.yaml")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        args = [wsgate_bin(), "-c", path] if run else [wsgate_bin(), "-t", "-c", path]
        p = subprocess.run(args, capture_output=True, text=True, timeout=60)
        return text, path, p

    def test_ok(self):
        _, path, p = self.check(self.example, '    options: { prefix: "x" }\n')
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, f"{path}: configuration OK (1 listeners, 1 routes)\n")

    def expect(self, plugin, message, options="", key="plugin: ", run=False):
        text, path, p = self.check(plugin, options, run)
        line, col = position(text, key)
        col += len(key)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        prefix = "wsgate: " if run else ""
        want = (f"{prefix}{path}:{line}:{col}: routes[0].{key.rstrip(': ')}: {message}\n")
        self.assertEqual(p.stderr if not run else p.stderr.splitlines(True)[-1], want)

    def test_missing_file(self):
        missing = os.path.join(self.tmp.name, "nope.so")
        self.expect(missing, f"cannot load plugin: {missing}: cannot open shared object "
                    "file: No such file or directory")

    def test_not_a_shared_object(self):
        junk = os.path.join(self.tmp.name, "junk.so")
        with open(junk, "w", encoding="utf-8") as f:
            f.write("not ELF")
        text, path, p = self.check(junk)
        self.assertEqual(p.returncode, 1)
        self.assertIn("routes[0].plugin: cannot load plugin: ", p.stderr)
        self.assertIn("junk.so", p.stderr)

    def test_wrong_abi(self):
        self.expect(f"{self.tests}/bad_abi.so", "cannot load plugin: it was built for "
                    "handler ABI version 2, wsgate needs 1")

    def test_no_symbol(self):
        self.expect(f"{self.tests}/no_symbol.so", "cannot load plugin: it does not export "
                    "\"wsgate_handler\" (const struct gw_handler)")

    def test_create_rejects_options(self):
        self.expect(self.example, "handler upper: unknown option \"prefx\" (known: prefix, "
                    "max_messages, greet)", '    options: { prefx: ">" }\n',
                    key="options: ")
        self.expect(f"{self.tests}/probe.so", "handler probe: told to fail",
                    '    options: { fail: "told to fail" }\n', key="options: ")

    def test_start_fails_the_same_way(self):
        self.expect(f"{self.tests}/bad_abi.so", "cannot load plugin: it was built for "
                    "handler ABI version 2, wsgate needs 1", run=True)


class PluginReloadTest(unittest.TestCase):
    """A reload creates new instances; connections keep the old ones."""

    def test_reload_keeps_old_instances(self):
        example, _ = plugin_paths()
        base = ("listeners:\n  - address: 127.0.0.1:0\nworkers: 1\n"
                "log: { level: info, format: text }\nroutes:\n"
                "  - { name: up, path: /up, handler: plugin, plugin: %s,\n"
                "      options: { prefix: \"%s\" } }\n")
        gw = Gateway(base % (example, "old:"))
        self.addCleanup(gw.kill)
        gw.start()
        cfg = os.path.join(gw._tmp.name, "wsgate.yaml")

        async def go():
            url = f"ws://127.0.0.1:{gw.port}/up"
            async with ws_connect(url) as old:
                await old.send("a")
                self.assertEqual(await old.recv(), "old:A")
                with open(cfg, "w", encoding="utf-8") as f:
                    f.write(base % (example, "new:"))
                gw.signal(1)  # SIGHUP
                gw.wait_for_log(r"reload_applied worker=0 generation=2")
                async with ws_connect(url) as new:
                    await new.send("b")
                    self.assertEqual(await new.recv(), "new:B")
                await old.send("c")
                self.assertEqual(await old.recv(), "old:C")
            # A reload to a plugin that does not load is refused.
            with open(cfg, "w", encoding="utf-8") as f:
                f.write(base.replace(example, "/nonexistent.so") % ("/nonexistent.so", "x"))
            gw.signal(1)
            gw.wait_for_log(r"reload_failed .*cannot load plugin")
            async with ws_connect(url) as again:
                await again.send("d")
                self.assertEqual(await again.recv(), "new:D")
        run_async(go())
        gw.check_exit()


if __name__ == "__main__":
    unittest.main()
