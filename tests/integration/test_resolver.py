"""Upstream host names through the configured resolver: a DNS server written
for the tests answers, stalls or refuses; the gateway resolves with evdns,
re-resolves after resolve_interval, bounds a lookup by connect_timeout, and
survives a client that leaves while its lookup is pending."""

import os
import re
import socket
import struct
import subprocess
import tempfile
import threading
import time
import unittest

from upstreams import EchoUpstream
from wsgate_harness import (IO_TIMEOUT, OP_TEXT, GatewayTestCase, client_frame,
                            upgrade_request, wsgate_bin)


class FakeDns:
    """A UDP DNS server on 127.0.0.1: A queries for names in `answers` get
    127.0.0.1; names in `stall` get no answer at all; others NXDOMAIN.
    AAAA queries get an empty NOERROR. Counts the A queries per name."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.answers = set()
        self.stall = set()
        self.queries = {}
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def count(self, name):
        with self.lock:
            return self.queries.get(name, 0)

    def _serve(self):
        while True:
            try:
                data, peer = self.sock.recvfrom(512)
            except OSError:
                return
            reply = self._answer(data)
            if reply is not None:
                self.sock.sendto(reply, peer)

    def _answer(self, q):
        if len(q) < 12:
            return None
        qid, _flags, qd = struct.unpack("!HHH", q[:6])
        if qd != 1:
            return None
        labels, i = [], 12
        while i < len(q) and q[i] != 0:
            n = q[i]
            labels.append(q[i + 1:i + 1 + n].decode("ascii", "replace").lower())
            i += 1 + n
        question = q[12:i + 5]
        qtype, = struct.unpack("!H", q[i + 1:i + 3])
        name = ".".join(labels)
        if qtype == 1:
            with self.lock:
                self.queries[name] = self.queries.get(name, 0) + 1
        if name in self.stall:
            return None
        header = lambda rcode, an: struct.pack("!HHHHHH", qid, 0x8180 | rcode, 1, an, 0, 0)
        if name not in self.answers:
            return header(3, 0) + question  # NXDOMAIN
        if qtype != 1:
            return header(0, 0) + question
        rr = struct.pack("!HHHIH", 0xC00C, 1, 1, 30, 4) + socket.inet_aton("127.0.0.1")
        return header(0, 1) + question + rr

    def stop(self):
        self.sock.close()


CONFIG = """\
listeners: [{{ address: 127.0.0.1:0 }}]
workers: 1
log: {{ level: info, format: text }}
resolver: {{ nameservers: ["127.0.0.1:{dns}"], timeout: 500ms, attempts: 4 }}
routes:
  - {{ name: named, path: /named, upstream: "ws://echo.wsgate.test:{up}",
      resolve_interval: 1s }}
  - {{ name: stalled, path: /stalled, upstream: "ws://stall.wsgate.test:{up}",
      connect_timeout: 1s }}
  - {{ name: missing, path: /missing, upstream: "ws://missing.wsgate.test:{up}" }}
"""


class ResolverTest(GatewayTestCase):
    @classmethod
    def setUpClass(cls):
        cls.dns = FakeDns()
        cls.addClassCleanup(cls.dns.stop)
        cls.dns.answers.add("echo.wsgate.test")
        cls.dns.stall.add("stall.wsgate.test")
        cls.up = EchoUpstream("named")
        cls.up.start()
        cls.addClassCleanup(cls.up.stop)
        cls.CONFIG = CONFIG.format(dns=cls.dns.port, up=cls.up.port)
        super().setUpClass()

    def echo(self, path):
        with self.raw() as c:
            c.handshake(path)
            c.send(client_frame(OP_TEXT, b"via dns"))
            self.assertEqual(c.read_frame(), (True, OP_TEXT, b"via dns"))

    def status(self, path):
        with self.raw() as c:
            c.send(upgrade_request(path))
            return c.read_response().status

    def test_host_name_resolved_and_re_resolved_after_the_interval(self):
        self.echo("/named")
        first = self.dns.count("echo.wsgate.test")
        self.assertGreaterEqual(first, 1)
        self.echo("/named")  # within resolve_interval: the cached address
        self.assertEqual(self.dns.count("echo.wsgate.test"), first)
        time.sleep(1.2)
        self.echo("/named")
        self.assertGreater(self.dns.count("echo.wsgate.test"), first)

    def test_a_stalled_lookup_is_bounded_by_connect_timeout(self):
        # evdns alone would retry for 4 x 500ms; connect_timeout ends it.
        self.assertEqual(self.status("/stalled"), 502)
        self.gw.wait_for_log(r"upstream_down route=stalled .*DNS lookup timed out")

    def test_unknown_name_is_502(self):
        self.assertEqual(self.status("/missing"), 502)
        self.gw.wait_for_log(r"upstream_down route=missing ")

    def test_client_leaving_during_a_lookup(self):
        before = self.dns.count("stall.wsgate.test")
        for _ in range(5):
            with self.raw() as c:
                c.send(upgrade_request("/stalled"))
                deadline = time.monotonic() + IO_TIMEOUT
                while self.dns.count("stall.wsgate.test") == before and \
                        time.monotonic() < deadline:
                    time.sleep(0.01)
                before = self.dns.count("stall.wsgate.test")
            # The client is gone with its lookup pending; the cancelled
            # lookup's callback comes later and must not touch the attempt.
        time.sleep(0.3)
        self.echo("/named")
        self.assertTrue(self.gw.alive())


class ResolverConfigTest(unittest.TestCase):
    def test_bad_nameserver_has_position(self):
        text = ("listeners: [{ address: 127.0.0.1:0 }]\n"
                "resolver:\n"
                "  nameservers: [\"10.0.0.2:53\", \"dns.example\", \"[::1]:5353\"]\n"
                "routes: [{ path: /e, handler: echo }]\n")
        with tempfile.TemporaryDirectory(prefix="wsgate-resolver-") as tmp:
            path = os.path.join(tmp, "r.yaml")
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
            p = subprocess.run([wsgate_bin(), "-t", "-c", path], capture_output=True,
                               text=True, timeout=60)
        self.assertEqual(p.returncode, 1, p)
        col = text.splitlines()[2].index('"dns.example"') + 1
        self.assertRegex(p.stderr, rf"r\.yaml:3:{col}: resolver\.nameservers\[1\]: ")
        self.assertNotIn("nameservers[0]", p.stderr)
        self.assertNotIn("nameservers[2]", p.stderr)


if __name__ == "__main__":
    unittest.main()
