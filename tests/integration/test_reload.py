"""SIGHUP reloads: a valid file takes effect for new connections, open ones keep
theirs, and an invalid file is reported while the running configuration stays."""

import os
import signal
import unittest

from wsgate_harness import GatewayTestCase, run_async, upgrade_request, ws_connect

BEFORE = """\
listeners:
  - address: 127.0.0.1:0
workers: 2
routes:
  - { name: echo, path: /echo, handler: echo }
"""

AFTER = """\
listeners:
  - address: 127.0.0.1:0
workers: 2
routes:
  - { name: echo2, path: /echo2, handler: echo }
"""

BROKEN = """\
listeners:
  - address: 127.0.0.1:0
routes:
  - { name: echo, path: /echo, handler: echo, bogus: 1 }
"""


class ReloadTest(GatewayTestCase):
    CONFIG = BEFORE

    def config_path(self):
        return os.path.join(self.gw._tmp.name, "wsgate.yaml")

    def rewrite_and_hup(self, text, expect_log):
        with open(self.config_path(), "w", encoding="utf-8") as f:
            f.write(text)
        self.gw.signal(signal.SIGHUP)
        self.gw.wait_for_log(expect_log)

    def status_of(self, path):
        with self.raw() as c:
            c.send(upgrade_request(path))
            return c.read_response().status

    def test_1_invalid_file_keeps_running_configuration(self):
        self.rewrite_and_hup(BROKEN, r"reload result=rejected")
        self.assertRegex(self.gw.stderr_text, r"wsgate\.yaml:4:\d+: routes\[0\]\.bogus")
        self.assertEqual(self.status_of("/echo"), 101)

    def test_2_valid_file_applies_to_new_connections_only(self):
        async def go():
            async with ws_connect(self.url("/echo")) as old:
                self.rewrite_and_hup(AFTER, r"reload result=ok")
                for worker in (0, 1):
                    self.gw.wait_for_log(rf"reload_applied worker={worker} generation=2")
                # The open connection keeps the configuration it started with.
                await old.send("still here")
                self.assertEqual(await old.recv(), "still here")
        run_async(go())
        # Both workers switch: try enough connections to reach each of them.
        for _ in range(8):
            self.assertEqual(self.status_of("/echo2"), 101)
            self.assertEqual(self.status_of("/echo"), 404)


if __name__ == "__main__":
    unittest.main()
