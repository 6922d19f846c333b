"""Static-token authentication with the token in a header, a query or a cookie."""

import unittest

import websockets

from wsgate_harness import GatewayTestCase, run_async, upgrade_request, ws_connect

TOKEN = "it-auth-Zx81-token"

CONFIG = """\
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
"""


class TokenSourcesTest(GatewayTestCase):
    CONFIG = CONFIG
    ENV = {"WSGATE_TEST_TOKEN": TOKEN}

    def echo_once(self, url, **kw):
        async def go():
            async with ws_connect(url, **kw) as ws:
                await ws.send("authenticated hello")
                self.assertEqual(await ws.recv(), "authenticated hello")
        run_async(go())

    def test_header(self):
        self.echo_once(self.url("/private/echo"),
                       extra_headers={"Authorization": "Bearer " + TOKEN})

    def test_query(self):
        self.echo_once(self.url("/private/echo?access_token=" + TOKEN))

    def test_query_among_other_parameters(self):
        self.echo_once(self.url("/private/echo?a=1&access_token=" + TOKEN + "&b=2"))

    def test_cookie(self):
        self.echo_once(self.url("/private/echo"),
                       extra_headers={"Cookie": "session=" + TOKEN})

    def test_cookie_among_other_cookies(self):
        self.echo_once(self.url("/private/echo"),
                       extra_headers={"Cookie": "theme=dark; session=" + TOKEN + "; x=1"})

    def test_raw_101_with_header_token(self):
        with self.raw() as c:
            c.handshake("/private/echo", extra=[("Authorization", "Bearer " + TOKEN)])

    def test_missing_token_is_401(self):
        async def go():
            with self.assertRaises(websockets.InvalidStatusCode) as cm:
                async with ws_connect(self.url("/private/echo")):
                    pass
            self.assertEqual(cm.exception.status_code, 401)
        run_async(go())

    def test_wrong_cookie_name_is_401(self):
        with self.raw() as c:
            c.send(upgrade_request("/private/echo", extra=[("Cookie", "other=" + TOKEN)]))
            self.assertEqual(c.read_response().status, 401)

    def test_token_not_logged(self):
        self.echo_once(self.url("/private/echo?access_token=" + TOKEN))
        with self.raw() as c:
            c.send(upgrade_request("/private/echo?access_token=wrong-token-value"))
            self.assertEqual(c.read_response().status, 401)
        self.assertNotIn(TOKEN, self.gw.stderr_text)

    def test_unprotected_route_needs_no_token(self):
        self.echo_once(self.url("/echo"))


if __name__ == "__main__":
    unittest.main()
