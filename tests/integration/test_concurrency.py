"""Many clients at once: 200 concurrent connections, each echoing a few messages."""

import asyncio
import os
import unittest

from wsgate_harness import GatewayTestCase, run_async, ws_connect

CLIENTS = 200
MESSAGES = 5

CONFIG = """\
listeners:
  - address: 127.0.0.1:0
workers: 2
limits: { max_connections: 1000 }
log: { level: info, format: text }
routes:
  - { name: echo, path: /echo, handler: echo }
"""


class ConcurrencyTest(GatewayTestCase):
    CONFIG = CONFIG

    def test_200_concurrent_clients(self):
        async def client(i, all_open, count):
            async with ws_connect(self.url("/echo")) as ws:
                count[0] += 1
                if count[0] == CLIENTS:
                    all_open.set()
                # Hold every connection open until all are, so they overlap.
                await asyncio.wait_for(all_open.wait(), 90)
                for j in range(MESSAGES):
                    msg = f"client {i} message {j} " + "x" * (i * 7 % 300)
                    await ws.send(msg)
                    self.assertEqual(await ws.recv(), msg)
                    data = os.urandom(i + j)
                    await ws.send(data)
                    self.assertEqual(await ws.recv(), data)
            return ws.close_code

        async def go():
            all_open = asyncio.Event()
            count = [0]
            codes = await asyncio.gather(*(client(i, all_open, count) for i in range(CLIENTS)),
                                         return_exceptions=True)
            errors = [c for c in codes if isinstance(c, BaseException)]
            self.assertEqual(errors, [], f"{len(errors)} of {CLIENTS} clients failed")
            self.assertEqual(codes, [1000] * CLIENTS)
        run_async(go(), timeout=240)


if __name__ == "__main__":
    unittest.main()
