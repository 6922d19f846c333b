"""Timeouts a client cannot defeat: idle close, the close deadline, a peer that
never reads, and a client that stops after the close frame."""

import socket
import time
import unittest

from wsgate_harness import (OP_CLOSE, OP_PING, OP_TEXT, GatewayTestCase, client_frame)

CONFIG = """\
listeners:
  - address: 127.0.0.1:0
workers: 1
limits: { idle_timeout: 1s, max_message_size: 64KiB }
routes:
  - { name: echo, path: /echo, handler: echo }
"""


def wait_closed(c, limit=20.0):
    """Reads and drops whatever comes until EOF; False if none within `limit`."""
    c.sock.settimeout(1.0)
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            chunk = c.sock.recv(1 << 20)
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return True
        if not chunk:
            return True
    return False


class TimeoutTest(GatewayTestCase):
    CONFIG = CONFIG

    def test_idle_client_gets_1001(self):
        with self.raw() as c:
            c.handshake()
            code, reason = c.read_close()  # after idle_timeout of silence
            self.assertEqual((code, reason), (1001, b"idle timeout"))
            c.send(client_frame(OP_CLOSE, b"\x03\xe9"))
            self.assertTrue(c.at_eof())

    def test_close_deadline_is_not_pushed_back_by_a_chatty_peer(self):
        with self.raw() as c:
            c.handshake()
            self.assertEqual(c.read_close()[0], 1001)
            # Never answer the close; keep the connection busy with pings. The
            # gateway must still give up once its close timeout has passed.
            c.sock.settimeout(0.3)
            start = time.monotonic()
            closed = False
            while time.monotonic() - start < 20 and not closed:
                try:
                    c.send(client_frame(OP_PING, b"still here"))
                    closed = c.sock.recv(4096) == b""
                except socket.timeout:
                    pass
                except (ConnectionResetError, BrokenPipeError):
                    closed = True
            self.assertTrue(closed, "connection outlived the close deadline")

    def test_peer_that_never_reads_is_dropped(self):
        with self.raw() as c:
            c.handshake()
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            c.sock.settimeout(0.5)
            msg = client_frame(OP_TEXT, b"x" * 60000)
            sent = 0
            try:
                while sent < 64 << 20:  # until the gateway stops taking more
                    c.sock.sendall(msg)
                    sent += len(msg)
            except socket.timeout:
                pass
            except (ConnectionResetError, BrokenPipeError):
                return  # already dropped
            self.assertGreater(sent, 0)
            time.sleep(2.5)  # more than idle_timeout with our receive window full
            self.assertTrue(wait_closed(c), "a peer that never reads was kept open")
        self.assertTrue(self.gw.alive())


if __name__ == "__main__":
    unittest.main()
