"""Opening handshakes that arrive in pieces or together with the first frames."""

import time
import unittest

from wsgate_harness import (OP_BINARY, OP_TEXT, GatewayTestCase, accept_for,
                            client_frame, upgrade_request)

CONFIG = """\
listeners:
  - address: 127.0.0.1:0
workers: 2
limits: { handshake_timeout: 30s }
log: { level: info, format: text }
routes:
  - { name: echo, path: /echo, handler: echo }
"""


class HandshakeTest(GatewayTestCase):
    CONFIG = CONFIG

    def test_head_one_byte_at_a_time(self):
        req = upgrade_request("/echo", extra=[("User-Agent", "wsgate-it/slow")])
        with self.raw() as c:
            for i in range(len(req)):
                c.send(req[i:i + 1])
                time.sleep(0.005)
            resp = c.read_response()
            self.assertEqual(resp.status, 101, resp)
            self.assertEqual(resp.reason, "Switching Protocols", resp)
            self.assertEqual((resp.header("Upgrade") or "").lower(), "websocket", resp)
            self.assertIn("upgrade", (resp.header("Connection") or "").lower(), resp)
            self.assertEqual(resp.header("Sec-WebSocket-Accept"), accept_for(
                "dGhlIHNhbXBsZSBub25jZQ=="), resp)
            c.send(client_frame(OP_TEXT, b"slow but fine"))
            self.assertEqual(c.read_frame(), (True, OP_TEXT, b"slow but fine"))

    def test_frame_in_same_write_as_head(self):
        req = upgrade_request("/echo") + client_frame(OP_TEXT, b"early bird")
        with self.raw() as c:
            c.send(req)
            resp = c.read_response()
            self.assertEqual(resp.status, 101, resp)
            self.assertEqual(c.read_frame(), (True, OP_TEXT, b"early bird"))

    def test_several_frames_in_same_write_as_head(self):
        frames = [client_frame(OP_TEXT, b"one"), client_frame(OP_BINARY, b"\x00two"),
                  client_frame(OP_TEXT, b"three" * 100)]
        with self.raw() as c:
            c.send(upgrade_request("/echo") + b"".join(frames))
            self.assertEqual(c.read_response().status, 101)
            self.assertEqual(c.read_frame(), (True, OP_TEXT, b"one"))
            self.assertEqual(c.read_frame(), (True, OP_BINARY, b"\x00two"))
            self.assertEqual(c.read_frame(), (True, OP_TEXT, b"three" * 100))

    def test_header_names_are_case_insensitive(self):
        req = (b"GET /echo HTTP/1.1\r\nhost: 127.0.0.1\r\nUPGRADE: WebSocket\r\n"
               b"connection: keep-alive, Upgrade\r\nsec-websocket-key: "
               b"dGhlIHNhbXBsZSBub25jZQ==\r\nSEC-WEBSOCKET-VERSION: 13\r\n\r\n")
        with self.raw() as c:
            c.send(req)
            resp = c.read_response()
            self.assertEqual(resp.status, 101, resp)
            self.assertEqual(resp.header("Sec-WebSocket-Accept"),
                             "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", resp)

    def test_query_string_does_not_change_route(self):
        with self.raw() as c:
            c.handshake("/echo?room=1&x=y")


if __name__ == "__main__":
    unittest.main()
