"""The README's C examples are complete: each compiles as a plugin with the
project's warnings, and the gateway loads and serves them as documented."""

import os
import re
import subprocess
import tempfile
import unittest

from wsgate_harness import OP_TEXT, GatewayTestCase, client_frame, upgrade_request

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
README = os.path.join(ROOT, "README.md")


def examples():
    """The README's ```c blocks that are whole files (they #include)."""
    with open(README, encoding="utf-8") as f:
        blocks = re.findall(r"```c\n(.*?)```", f.read(), re.S)
    return [b for b in blocks if "#include" in b]


def build(tmp, name, source):
    """Compiles source into tmp/name.so; returns the path, or raises with the
    compiler's output."""
    src = os.path.join(tmp, name + ".c")
    out = os.path.join(tmp, name + ".so")
    with open(src, "w", encoding="utf-8") as f:
        f.write(source)
    cc = os.environ.get("CC", "cc")
    p = subprocess.run([cc, "-std=c11", "-Wall", "-Wextra", "-Wno-unused-parameter",
                        "-Werror", "-shared", "-fPIC", "-O2", "-I", ROOT, "-o", out, src],
                       capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        raise AssertionError(f"README example {name} does not compile:\n{p.stderr}")
    return out


def one(symbol):
    hits = [b for b in examples() if symbol in b]
    assert len(hits) == 1, f"want one README example defining {symbol}, got {len(hits)}"
    return hits[0]


TMP = tempfile.TemporaryDirectory(prefix="wsgate-readme-")


def config():
    handler = build(TMP.name, "counter", one("wsgate_handler ="))
    auth = build(TMP.name, "mine", one("wsgate_auth_plugin ="))
    return f"""\
listeners: [{{ address: 127.0.0.1:0 }}]
workers: 2
log: {{ level: info }}
auth:
  providers:
    mine: {{ type: plugin, path: {auth} }}
routes:
  - {{ name: count, path: /count, handler: plugin, plugin: {handler},
      options: {{ label: seen }} }}
  - {{ name: guarded, path: /guarded, handler: echo, auth: mine }}
"""


class ReadmeExamplesTest(GatewayTestCase):
    CONFIG = config()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        TMP.cleanup()

    def test_every_example_compiles(self):
        blocks = examples()
        self.assertGreaterEqual(len(blocks), 2)
        for i, b in enumerate(blocks):
            build(TMP.name, f"example{i}", b)

    def test_counter_handler_counts_each_connections_messages(self):
        for _ in range(2):
            with self.raw() as c:
                c.handshake("/count")
                for n in (1, 2, 3):
                    c.send(client_frame(OP_TEXT, "hi"))
                    self.assertEqual(c.read_frame(), (True, OP_TEXT, f"seen: {n}".encode()))

    def test_auth_plugin_allows_its_secret_only(self):
        with self.raw() as c:
            c.handshake("/guarded", extra=[("Authorization", "Bearer s3cret")])
        for extra in ([("Authorization", "Bearer s3creT")], []):
            with self.raw() as c:
                c.send(upgrade_request("/guarded", extra=extra))
                self.assertEqual(c.read_response().status, 401)


if __name__ == "__main__":
    unittest.main()
