"""Handler plugins and the handler API: the example plugin, what on_open and
on_close see, and plugin load errors from wsgate -t."""

import asyncio
import os
import subprocess
import tempfile
import time
import unittest

from wsgate_harness import (IO_TIMEOUT, Gateway, GatewayTestCase, RawClient,
                            client_frame, close_payload, run_async, wsgate_bin,
                            ws_connect)

OP_CLOSE = 0x8


def plugin_paths():
    example = os.environ.get("WSGATE_EXAMPLE_PLUGIN")
    tests = os.environ.get("WSGATE_TEST_PLUGINS")
    if not example or not tests:
        raise unittest.SkipTest("WSGATE_EXAMPLE_PLUGIN / WSGATE_TEST_PLUGINS are not set")
    return example, tests


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
            async with ws_connect(self.url("/private"),
                                  extra_headers={"Authorization": "Bearer sesame"}) as ws:
                info = dict(l.split("=", 1) for l in (await ws.recv()).split("\n"))
            self.assertEqual(info["subject"], "edge")
            self.assertEqual(info["query"], "")
        run_async(go())

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
