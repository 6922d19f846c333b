"""The command line: -t config check with exact error positions, --version, -h."""

import os
import subprocess
import tempfile
import unittest

from wsgate_harness import GatewayTestCase, upgrade_request, wsgate_bin

EXAMPLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                       "config", "example.yaml")

GOOD = """\
listeners:
  - address: 127.0.0.1:0
workers: 2
limits: { max_connections: 1000, max_request_head: 16KiB, handshake_timeout: 10s,
          idle_timeout: 10m, max_message_size: 1MiB }
log: { level: info, format: text }
routes:
  - { name: echo, path: /echo, handler: echo }
"""

# Line 4, column 3: the mistyped key.
BAD_NESTED = """\
listeners:
  - address: 127.0.0.1:0
limits:
  max_conections: 10
routes:
  - { name: echo, path: /echo, handler: echo }
"""

BAD_FLOW = """\
listeners:
  - address: 127.0.0.1:0
routes:
  - { name: echo, path: /echo, hanlder: echo }
"""

BAD_TWO = """\
listeners:
  - address: 127.0.0.1:0
wrokers: 2
routes:
  - name: echo
    path: /echo
    handler: echo
    upstream_timeout: 5s
"""


def position(text, needle):
    """1-based (line, column) of the first occurrence of needle in text."""
    i = text.index(needle)
    line = text.count("\n", 0, i) + 1
    col = i - (text.rfind("\n", 0, i) + 1) + 1
    return line, col


class CliTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="wsgate-cli-")
        self.addCleanup(self.tmp.cleanup)

    def run_gw(self, *args, files=None):
        for name, text in (files or {}).items():
            with open(os.path.join(self.tmp.name, name), "w", encoding="utf-8") as f:
                f.write(text)
        return subprocess.run([wsgate_bin(), *args], cwd=self.tmp.name,
                              stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=60)

    def check_no_sanitizer(self, p):
        for marker in ("AddressSanitizer", "LeakSanitizer", "runtime error:"):
            self.assertNotIn(marker, p.stderr)

    def check_bad(self, text, needles):
        p = self.run_gw("-t", "-c", "bad.yaml", files={"bad.yaml": text})
        self.check_no_sanitizer(p)
        self.assertEqual(p.returncode, 1, p)
        lines = [l for l in p.stderr.splitlines() if l.startswith("bad.yaml:")]
        for needle in needles:
            line, col = position(text, needle)
            prefix = f"bad.yaml:{line}:{col}: "
            hits = [l for l in lines if l.startswith(prefix) and needle in l]
            self.assertTrue(hits, f"no error line starting {prefix!r} naming {needle!r} in:\n"
                            + p.stderr)
        self.assertNotIn("OK", p.stdout)
        return p

    def test_mistyped_nested_key(self):
        p = self.check_bad(BAD_NESTED, ["max_conections"])
        self.assertTrue(any(l.startswith("bad.yaml:4:3: limits.max_conections")
                            for l in p.stderr.splitlines()), p.stderr)

    def test_mistyped_key_in_flow_mapping(self):
        self.check_bad(BAD_FLOW, ["hanlder"])

    def test_every_error_is_reported(self):
        self.check_bad(BAD_TWO, ["wrokers", "upstream_timeout"])

    def test_yaml_syntax_error_has_position(self):
        p = self.run_gw("-t", "-c", "bad.yaml",
                        files={"bad.yaml": "listeners:\n  - address: [127.0.0.1:0\n"})
        self.check_no_sanitizer(p)
        self.assertEqual(p.returncode, 1, p)
        self.assertRegex(p.stderr, r"(?m)^bad\.yaml:\d+:\d+: ")

    def test_missing_file(self):
        p = self.run_gw("-t", "-c", "missing.yaml")
        self.check_no_sanitizer(p)
        self.assertEqual(p.returncode, 1, p)
        self.assertIn("missing.yaml", p.stderr)

    def test_good_config_ok(self):
        p = self.run_gw("-t", "-c", "good.yaml", files={"good.yaml": GOOD})
        self.check_no_sanitizer(p)
        self.assertEqual(p.returncode, 0, p)
        out = [l for l in p.stdout.splitlines() if l.strip()]
        self.assertEqual(len(out), 1, p)
        self.assertIn("OK", out[0])

    def test_tls_file_error_has_position(self):
        text = ("listeners:\n"
                "  - address: 127.0.0.1:0\n"
                "    tls: { certificate: missing-cert.pem, key: missing-key.pem }\n"
                "routes:\n"
                "  - { name: echo, path: /echo, handler: echo }\n")
        p = self.run_gw("-t", "-c", "bad.yaml", files={"bad.yaml": text})
        self.check_no_sanitizer(p)
        self.assertEqual(p.returncode, 1, p)
        line, col = position(text, "{ certificate")
        prefix = f"bad.yaml:{line}:{col}: listeners[0].tls: "
        hits = [l for l in p.stderr.splitlines() if l.startswith(prefix)]
        self.assertTrue(hits, f"no line starting {prefix!r} in:\n{p.stderr}")
        self.assertIn("missing-cert.pem", hits[0])

    def test_built_in_default_ok(self):
        p = self.run_gw("-t")
        self.check_no_sanitizer(p)
        self.assertEqual(p.returncode, 0, p)
        self.assertIn("<default>: configuration OK", p.stdout)

    def test_example_config_ok(self):
        p = self.run_gw("-t", "-c", EXAMPLE)
        self.check_no_sanitizer(p)
        self.assertEqual(p.returncode, 0, p)
        self.assertIn("configuration OK", p.stdout)

    def test_version(self):
        p = self.run_gw("--version")
        self.check_no_sanitizer(p)
        self.assertEqual(p.returncode, 0, p)
        self.assertRegex(p.stdout, r"\d+\.\d+\.\d+")

    def test_help(self):
        p = self.run_gw("-h")
        self.check_no_sanitizer(p)
        self.assertEqual(p.returncode, 0, p)
        self.assertIn("usage", p.stdout.lower())
        self.assertIn("-c", p.stdout)


def example_on_any_port():
    """config/example.yaml as shipped, on a port the kernel chooses."""
    with open(EXAMPLE, encoding="utf-8") as f:
        text = f.read()
    assert "address: 127.0.0.1:8080" in text
    return text.replace("address: 127.0.0.1:8080", "address: 127.0.0.1:0")


class ExampleConfigTest(GatewayTestCase):
    """The README's run command serves config/example.yaml: its routes work."""

    CONFIG = example_on_any_port()
    ENV = {"WSGATE_TOKEN": "s3cret-token"}

    def test_echo(self):
        with self.raw() as c:
            c.send(upgrade_request("/echo"))
            self.assertEqual(c.read_response().status, 101)

    def test_private_echo_needs_the_token(self):
        with self.raw() as c:
            c.send(upgrade_request("/private/echo"))
            self.assertEqual(c.read_response().status, 401)
        with self.raw() as c:
            c.send(upgrade_request("/private/echo?access_token=s3cret-token"))
            self.assertEqual(c.read_response().status, 101)
        with self.raw() as c:
            c.send(upgrade_request("/private/echo",
                                   extra=[("Authorization", "Bearer s3cret-token")]))
            self.assertEqual(c.read_response().status, 101)


if __name__ == "__main__":
    unittest.main()
