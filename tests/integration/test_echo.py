"""In-process echo over a real WebSocket client (python3-websockets) and raw frames."""

import asyncio
import os
import unittest

import websockets

from wsgate_harness import (OP_BINARY, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT,
                            GatewayTestCase, client_frame, close_payload,
                            run_async, ws_connect)

SIZES = [0, 125, 126, 64 * 1024, 1024 * 1024]
MAX_MESSAGE = 2 * 1024 * 1024

CONFIG = """\
listeners:
  - address: 127.0.0.1:0
workers: 2
limits: { max_connections: 1000, max_request_head: 16KiB, handshake_timeout: 10s,
          idle_timeout: 10m, max_message_size: 2MiB }
log: { level: info, format: text }
routes:
  - { name: echo, path: /echo, handler: echo }
"""


def utf8_text(n):
    """Exactly n bytes of UTF-8 text, with multi-byte code points when n allows."""
    s = "wsgate-é-" * (n // 10 + 1)
    out = s.encode("utf-8")[: max(n - 2, 0)].decode("utf-8", "ignore")
    return out + "z" * (n - len(out.encode("utf-8")))


class EchoTest(GatewayTestCase):
    CONFIG = CONFIG

    def test_text_sizes(self):
        async def go():
            async with ws_connect(self.url("/echo")) as ws:
                for n in SIZES:
                    msg = utf8_text(n)
                    self.assertEqual(len(msg.encode("utf-8")), n)
                    await ws.send(msg)
                    got = await ws.recv()
                    self.assertIsInstance(got, str, f"text of {n} B came back as binary")
                    self.assertEqual(got, msg, f"text of {n} B")
        run_async(go())

    def test_binary_sizes(self):
        async def go():
            async with ws_connect(self.url("/echo")) as ws:
                for n in SIZES:
                    msg = os.urandom(n)
                    await ws.send(msg)
                    got = await ws.recv()
                    self.assertIsInstance(got, bytes, f"binary of {n} B came back as text")
                    self.assertEqual(got, msg, f"binary of {n} B")
        run_async(go())

    def test_fragmented_message_is_echoed_whole(self):
        async def go():
            async with ws_connect(self.url("/echo")) as ws:
                parts = [os.urandom(1000), os.urandom(70000), b"", os.urandom(3)]
                await ws.send(iter(parts))
                self.assertEqual(await ws.recv(), b"".join(parts))
        run_async(go())

    def test_ping_gets_pong(self):
        async def go():
            async with ws_connect(self.url("/echo")) as ws:
                pong = await ws.ping(b"are you there")
                await asyncio.wait_for(pong, 15)
                # And the connection still echoes afterwards.
                await ws.send("after ping")
                self.assertEqual(await ws.recv(), "after ping")
        run_async(go())

    def test_close_handshake_1000(self):
        async def go():
            ws = await ws_connect(self.url("/echo"))
            await ws.send("bye")
            self.assertEqual(await ws.recv(), "bye")
            await ws.close(1000, "done")
            self.assertEqual(ws.close_code, 1000)
        run_async(go())

    def test_message_over_max_size_closes_1009(self):
        async def go():
            async with ws_connect(self.url("/echo")) as ws:
                # The gateway refuses on the frame header, so the close may
                # already arrive while the message is still being sent.
                with self.assertRaises(websockets.ConnectionClosed) as cm:
                    await ws.send(os.urandom(MAX_MESSAGE + 1))
                    await ws.recv()
                self.assertIsNotNone(cm.exception.rcvd, f"no close frame: {cm.exception}")
                self.assertEqual(cm.exception.rcvd.code, 1009)
        run_async(go())


class RawEchoTest(GatewayTestCase):
    """The same endpoint driven frame by frame, with exact bytes."""

    CONFIG = CONFIG

    def test_text_and_binary_frames(self):
        with self.raw() as c:
            c.handshake("/echo")
            for op, payload in [(OP_TEXT, b"hi"), (OP_BINARY, b"\x00\xff" * 100),
                                (OP_TEXT, b""), (OP_BINARY, os.urandom(70000))]:
                c.send(client_frame(op, payload))
                self.assertEqual(c.read_frame(), (True, op, payload))

    def test_ping_payload_comes_back_in_pong(self):
        with self.raw() as c:
            c.handshake("/echo")
            c.send(client_frame(OP_PING, b"ping-data"))
            self.assertEqual(c.read_frame(), (True, OP_PONG, b"ping-data"))

    def test_close_code_is_echoed_and_socket_closed(self):
        with self.raw() as c:
            c.handshake("/echo")
            c.send(client_frame(OP_CLOSE, close_payload(1000, b"bye")))
            fin, op, payload = c.read_frame()
            self.assertEqual((fin, op), (True, OP_CLOSE))
            self.assertEqual(payload[:2], b"\x03\xe8")
            self.assertTrue(c.at_eof(), "server did not close the TCP connection")

    def test_advertised_length_over_max_closes_1009(self):
        with self.raw() as c:
            c.handshake("/echo")
            # Only the header: the gateway must decide from the length alone.
            frame = client_frame(OP_BINARY, b"", length=MAX_MESSAGE + 1)
            c.send(frame)
            code, _reason = c.read_close()
            self.assertEqual(code, 1009)

    def test_unmasked_client_frame_closes_1002(self):
        with self.raw() as c:
            c.handshake("/echo")
            c.send(bytes([0x81, 0x02]) + b"hi")
            code, _reason = c.read_close()
            self.assertEqual(code, 1002)

    def test_invalid_utf8_text_closes_1007(self):
        with self.raw() as c:
            c.handshake("/echo")
            c.send(client_frame(OP_TEXT, b"\xc3\x28"))
            code, _reason = c.read_close()
            self.assertEqual(code, 1007)


if __name__ == "__main__":
    unittest.main()
