"""Every failed upgrade gets its exact HTTP status, headers and a closed socket."""

import socket
import time
import unittest

from wsgate_harness import (REASONS, GatewayTestCase, RawClient, upgrade_request)

TOKEN = "it-errors-token-5f1c"

BASE = """\
listeners:
  - address: 127.0.0.1:0
workers: 2
log: { level: info, format: text }
auth:
  token_from: [header, query=access_token, cookie=session]
  providers:
    edge: { type: static, tokens: ["${WSGATE_TEST_TOKEN}"] }
routes:
  - { name: echo, path: /echo, handler: echo }
  - { name: private, path: /private/echo, handler: echo, auth: edge }
  - { name: up, path: /up, upstream: "ws://127.0.0.1:1" }
"""


def config(limits):
    return BASE + "limits: { " + limits + " }\n"


class ErrorResponseMixin:
    def exchange(self, data):
        """Sends `data` on a new connection; returns the response after
        checking what every error response must have."""
        with self.raw() as c:
            c.send(data)
            resp = c.read_response()
            self.check_error_shape(resp)
            self.assertTrue(c.at_eof(), f"socket not closed after {resp.status}")
        return resp

    def check_error_shape(self, resp):
        self.assertEqual(resp.version, "HTTP/1.1", resp)
        self.assertIn(resp.status, REASONS, resp)
        self.assertEqual(resp.reason, REASONS[resp.status], resp)
        connection = [t.strip().lower() for t in (resp.header("Connection") or "").split(",")]
        self.assertIn("close", connection, resp)
        ctype = resp.header("Content-Type") or ""
        self.assertTrue(ctype.split(";")[0].strip().lower() == "text/plain", resp)
        self.assertIsNotNone(resp.header("Content-Length"), resp)
        self.assertEqual(len(resp.header_all("Content-Length")), 1, resp)
        self.assertGreater(len(resp.body), 0, resp)
        self.assertLessEqual(len(resp.body), 1024, resp)

    def expect(self, data, status):
        resp = self.exchange(data)
        self.assertEqual(resp.status, status, resp)
        return resp


class ErrorStatusTest(ErrorResponseMixin, GatewayTestCase):
    CONFIG = config("max_request_head: 1KiB, handshake_timeout: 10s")
    ENV = {"WSGATE_TEST_TOKEN": TOKEN}

    # 400
    def test_400_garbage_head(self):
        self.expect(b"\x16\x03\x01 this is not http at all\r\n\r\n", 400)

    def test_400_garbage_request_line(self):
        self.expect(b"HELLO\r\n\r\n", 400)

    def test_400_no_host(self):
        self.expect(upgrade_request("/echo", omit=["Host"]), 400)

    def test_400_bad_key(self):
        self.expect(upgrade_request("/echo", key="not-a-valid-key"), 400)

    def test_400_key_of_wrong_length(self):
        self.expect(upgrade_request("/echo", key="c2hvcnQ="), 400)  # base64("short")

    def test_400_missing_key(self):
        self.expect(upgrade_request("/echo", omit=["Sec-WebSocket-Key"]), 400)

    def test_400_connection_without_upgrade(self):
        self.expect(upgrade_request("/echo", connection="keep-alive"), 400)

    def test_400_dot_segment_path(self):
        self.expect(upgrade_request("/echo/../x"), 400)

    # 404
    def test_404_unknown_path(self):
        self.expect(upgrade_request("/nope"), 404)

    def test_404_prefix_of_exact_route(self):
        self.expect(upgrade_request("/echoes"), 404)

    # 405
    def test_405_post(self):
        resp = self.expect(upgrade_request("/echo", method="POST",
                                           extra=[("Content-Length", "0")]), 405)
        self.assertEqual(resp.header("Allow"), "GET", resp)

    # 426
    def test_426_plain_get(self):
        req = b"GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        resp = self.expect(req, 426)
        self.assertEqual(resp.header("Upgrade"), "websocket", resp)
        # A response with Upgrade lists it in Connection (RFC 9110 §7.8).
        tokens = [t.strip().lower() for t in (resp.header("Connection") or "").split(",")]
        self.assertIn("upgrade", tokens, resp)
        self.assertIn("close", tokens, resp)

    def test_426_version_8(self):
        resp = self.expect(upgrade_request("/echo", version="8"), 426)
        self.assertEqual(resp.header("Sec-WebSocket-Version"), "13", resp)

    # 431
    def test_431_head_too_large(self):
        req = upgrade_request("/echo", extra=[("X-Pad", "a" * 2000)])
        self.expect(req, 431)

    def test_431_many_small_headers(self):
        req = upgrade_request("/echo", extra=[(f"X-H{i}", "v") for i in range(200)])
        self.expect(req, 431)

    def test_431_more_than_64_headers_in_a_small_head(self):
        # 5 headers of upgrade_request plus 59 tiny ones: 64, the most a head
        # may have; one more is 431 although the head is far under 1KiB.
        tiny = [(f"X{i}", "") for i in range(60)]
        ok = upgrade_request("/echo", extra=tiny[:59])
        over = upgrade_request("/echo", extra=tiny)
        self.assertLess(len(over), 1024)
        with self.raw() as c:
            c.send(ok)
            self.assertEqual(c.read_response().status, 101)
        self.expect(over, 431)

    # 401
    def test_401_no_token(self):
        resp = self.expect(upgrade_request("/private/echo"), 401)
        self.assertEqual(resp.header("WWW-Authenticate"), 'Bearer realm="wsgate"', resp)

    def test_401_wrong_token(self):
        req = upgrade_request("/private/echo",
                              extra=[("Authorization", "Bearer " + TOKEN + "x")])
        resp = self.expect(req, 401)
        www = resp.header("WWW-Authenticate") or ""
        self.assertTrue(www.startswith("Bearer "), resp)
        self.assertIn('error="invalid_token"', www, resp)

    def test_401_wrong_token_in_query(self):
        resp = self.expect(upgrade_request("/private/echo?access_token=nope"), 401)
        self.assertIn('error="invalid_token"', resp.header("WWW-Authenticate") or "", resp)

    def test_401_token_prefix_is_not_enough(self):
        req = upgrade_request("/private/echo",
                              extra=[("Authorization", "Bearer " + TOKEN[:-1])])
        self.expect(req, 401)

    # 502
    def test_502_unreachable_upstream(self):
        self.expect(upgrade_request("/up"), 502)

    def test_gateway_still_serves_after_errors(self):
        with self.raw() as c:
            c.handshake("/echo")


class MaxConnectionsTest(ErrorResponseMixin, GatewayTestCase):
    CONFIG = config("max_connections: 2")
    ENV = {"WSGATE_TEST_TOKEN": TOKEN}

    def test_503_at_max_connections(self):
        held = [RawClient(self.port), RawClient(self.port)]
        try:
            for c in held:
                c.handshake("/echo")
            resp = self.expect(upgrade_request("/echo"), 503)
            self.assertIsNotNone(resp.header("Retry-After"), resp)
            self.assertRegex(resp.header("Retry-After"), r"^\d+$")
        finally:
            for c in held:
                c.close()
        # Once the held connections are gone, a new one is served again.
        deadline = time.monotonic() + 15
        while True:
            with self.raw() as c:
                c.send(upgrade_request("/echo"))
                resp = c.read_response()
            if resp.status == 101:
                break
            self.assertEqual(resp.status, 503, resp)
            self.assertLess(time.monotonic(), deadline, "slots never freed")
            time.sleep(0.1)


class HandshakeTimeoutTest(ErrorResponseMixin, GatewayTestCase):
    CONFIG = config("handshake_timeout: 1s")
    ENV = {"WSGATE_TEST_TOKEN": TOKEN}

    def test_408_partial_head(self):
        with self.raw() as c:
            c.send(b"GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: web")
            resp = c.read_response()
            self.check_error_shape(resp)
            self.assertEqual(resp.status, 408, resp)
            self.assertTrue(c.at_eof(), "socket not closed after 408")

    def test_silent_client_is_closed(self):
        with RawClient(self.port, timeout=15) as c:
            c.sock.settimeout(15)
            data = b""
            while True:
                try:
                    chunk = c.sock.recv(4096)
                except ConnectionResetError:
                    break
                except socket.timeout:
                    self.fail("a silent client was not closed")
                if not chunk:
                    break
                data += chunk
            # Whatever was sent before the close (if anything) is a 408.
            if data:
                self.assertTrue(data.startswith(b"HTTP/1.1 408 "), data)

    def test_handshake_within_timeout_succeeds(self):
        with self.raw() as c:
            c.handshake("/echo")


if __name__ == "__main__":
    unittest.main()
