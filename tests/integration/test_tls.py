"""TLS listeners: wss:// echo through a listener with a certificate, beside a plain one."""

import os
import ssl
import subprocess
import tempfile
import unittest

from wsgate_harness import Gateway, run_async, ws_connect

CONFIG = """\
listeners:
  - address: 127.0.0.1:0
    tls: {{ certificate: "{cert}", key: "{key}" }}
workers: 2
routes:
  - {{ name: echo, path: /echo, handler: echo }}
"""


def make_cert(directory):
    """A throwaway self-signed certificate for 127.0.0.1, made with the openssl CLI."""
    cert = os.path.join(directory, "cert.pem")
    key = os.path.join(directory, "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return cert, key


class TlsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="wsgate-tls-")
        cls.addClassCleanup(cls.tmp.cleanup)
        cls.cert, key = make_cert(cls.tmp.name)
        cls.gw = Gateway(CONFIG.format(cert=cls.cert, key=key))
        cls.addClassCleanup(cls.gw.kill)
        cls.gw.start()
        cls.gw.wait_for_log(r"listening address=127\.0\.0\.1:\d+ tls=yes")

    @classmethod
    def tearDownClass(cls):
        cls.gw.check_exit()

    def context(self):
        ctx = ssl.create_default_context(cafile=self.cert)
        return ctx

    def test_wss_echo_text_and_binary(self):
        async def go():
            url = f"wss://127.0.0.1:{self.gw.port}/echo"
            async with ws_connect(url, ssl=self.context()) as ws:
                await ws.send("over tls")
                self.assertEqual(await ws.recv(), "over tls")
                blob = os.urandom(200 * 1024)
                await ws.send(blob)
                self.assertEqual(await ws.recv(), blob)
        run_async(go())

    def test_alpn_offers_only_http11(self):
        import socket
        ctx = self.context()
        ctx.set_alpn_protocols(["h2", "http/1.1"])
        with socket.create_connection(("127.0.0.1", self.gw.port), timeout=15) as raw:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
                self.assertEqual(s.selected_alpn_protocol(), "http/1.1")

    def test_plain_http_on_tls_port_is_dropped(self):
        import socket
        with socket.create_connection(("127.0.0.1", self.gw.port), timeout=15) as s:
            s.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
            try:
                data = s.recv(4096)
            except ConnectionResetError:
                data = b""
            # Not HTTP: the TLS handshake fails and the gateway closes.
            self.assertFalse(data.startswith(b"HTTP/1.1 101"))
        self.assertTrue(self.gw.alive())
        self.gw.wait_for_log(r"tls_error error=")


class TlsConfigCheckTest(unittest.TestCase):
    def test_missing_key_file_fails_the_check(self):
        from wsgate_harness import wsgate_bin
        with tempfile.TemporaryDirectory() as d:
            cert, _ = make_cert(d)
            path = os.path.join(d, "gw.yaml")
            with open(path, "w") as f:
                f.write(CONFIG.format(cert=cert, key=os.path.join(d, "absent.pem")))
            r = subprocess.run([wsgate_bin(), "-t", "-c", path], capture_output=True, text=True)
            self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
            self.assertIn("absent.pem", r.stderr)


if __name__ == "__main__":
    unittest.main()
