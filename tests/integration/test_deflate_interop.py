"""permessage-deflate against python3-websockets (which offers it by default)."""

import os
import unittest

from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory

from wsgate_harness import GatewayTestCase, run_async, ws_connect

CONFIG = """\
listeners:
  - address: 127.0.0.1:0
workers: 2
limits: { max_message_size: 2MiB }
log: { level: info, format: text }
routes:
  - { name: plain, path: /echo, handler: echo }
  - { name: zipped, path: /z, handler: echo, deflate: on }
"""

SIZES = [0, 1, 125, 126, 1023, 1024, 4096, 65535, 65536, 512 * 1024, 2 * 1024 * 1024]

# The client's offers: websockets' default, and each parameter it can send.
CLIENTS = {
    "default": dict(compression="deflate"),
    "no context takeover": dict(extensions=[ClientPerMessageDeflateFactory(
        server_no_context_takeover=True, client_no_context_takeover=True)]),
    "small windows": dict(extensions=[ClientPerMessageDeflateFactory(
        server_max_window_bits=9, client_max_window_bits=9)]),
    "server window 8 (declined)": dict(extensions=[ClientPerMessageDeflateFactory(
        server_max_window_bits=8)]),
    "off": dict(compression=None),
}


def text(n):
    s = ("permessage-deflate ünïcödé " * (n // 20 + 2)).encode()[:n]
    s = s.decode("utf-8", "ignore")
    return s + "z" * (n - len(s.encode()))


class DeflateInterop(GatewayTestCase):
    CONFIG = CONFIG

    def roundtrips(self, path, opts, want_ext):
        async def go():
            async with ws_connect(self.url(path), **opts) as ws:
                ext = ws.response_headers.get("Sec-WebSocket-Extensions")
                if want_ext:
                    self.assertTrue(ext and ext.startswith("permessage-deflate"), ext)
                else:
                    self.assertIsNone(ext)
                for n in SIZES:
                    t = text(n)
                    await ws.send(t)
                    self.assertEqual(await ws.recv(), t, f"text of {n} B")
                    b = os.urandom(n // 2) + bytes(n - n // 2)
                    await ws.send(b)
                    self.assertEqual(await ws.recv(), b, f"binary of {n} B")
                parts = [os.urandom(1000), bytes(70000), b"", b"xyz"]
                await ws.send(iter(parts))
                self.assertEqual(await ws.recv(), b"".join(parts))
            self.assertEqual(ws.close_code, 1000)
        run_async(go())

    def test_each_client_offer(self):
        for name, opts in CLIENTS.items():
            for path in ("/z", "/echo"):
                with self.subTest(client=name, path=path):
                    want = path == "/z" and name not in ("off", "server window 8 (declined)")
                    self.roundtrips(path, opts, want)

    def test_bomb_is_1009(self):
        async def go():
            async with ws_connect(self.url("/z"), compression="deflate") as ws:
                await ws.send(bytes(8 * 1024 * 1024))
                await ws.wait_closed()
            self.assertEqual(ws.close_code, 1009)
        run_async(go())


if __name__ == "__main__":
    unittest.main()
