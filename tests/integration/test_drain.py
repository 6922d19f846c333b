"""SIGTERM drains: open WebSocket clients get close 1001 and the process exits 0."""

import asyncio
import signal
import unittest

import websockets

from wsgate_harness import GatewayTestCase, run_async, ws_connect

CONFIG = """\
listeners:
  - address: 127.0.0.1:0
workers: 2
log: { level: info, format: text }
routes:
  - { name: echo, path: /echo, handler: echo }
"""


class DrainTest(GatewayTestCase):
    CONFIG = CONFIG

    def test_sigterm_sends_1001_and_exits_0(self):
        async def go():
            conns = [await ws_connect(self.url("/echo")) for _ in range(4)]
            try:
                for i, ws in enumerate(conns):
                    await ws.send(f"before drain {i}")
                    self.assertEqual(await ws.recv(), f"before drain {i}")
                self.gw.signal(signal.SIGTERM)
                for ws in conns:
                    with self.assertRaises(websockets.ConnectionClosed) as cm:
                        await asyncio.wait_for(ws.recv(), 30)
                    self.assertIsNotNone(cm.exception.rcvd, str(cm.exception))
                    self.assertEqual(cm.exception.rcvd.code, 1001)
            finally:
                for ws in conns:
                    await ws.close()
        run_async(go())
        status = self.gw.wait(30)
        self.assertEqual(status, 0, self.gw.stderr_text)
        self.assertEqual(self.gw.sanitizer_reports(), [])


if __name__ == "__main__":
    unittest.main()
