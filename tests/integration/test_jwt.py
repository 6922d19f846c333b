"""The jwt provider end to end: every algorithm against the real binary, token
sources for browsers (query, cookie, subprotocol) and what an upstream and the
log see of them, claims as identity headers, JWKS rotation on SIGHUP, and
close 1008 when a live connection's token expires."""

import asyncio
import json
import os
import signal
import subprocess
import tempfile
import time
import unittest

import websockets

from jwt_tokens import ALGS, SECRET, Keys, b64u, b64u_json
from upstreams import EchoUpstream, ScriptedUpstream
from wsgate_harness import (IO_TIMEOUT, OP_CLOSE, OP_TEXT, Gateway, GatewayTestCase,
                            client_frame, close_payload, run_async, upgrade_request,
                            wsgate_bin, ws_connect)

ISS = "https://auth.example.com"
# Seconds a close may seem to precede exp: the gateway's timer runs on the
# monotonic clock, which the wall clock may drift from while NTP slews it
# (up to 0.5 ms/s); nothing else may make it early.
EXPIRY_CLOCK_SLACK = 0.01

PROVIDER = """\
    p{alg}: {{ type: jwt, algorithms: [{alg}], {key}, issuer: "{iss}",
              audience: [chat, api], required_claims: [exp], leeway: 5s }}
"""

CONFIG = """\
listeners:
  - address: 127.0.0.1:0
workers: 2
log: { level: info, format: text }
auth:
  token_from: [header, query=access_token, cookie=session, subprotocol]
  providers:
@PROVIDERS@
    users: { type: jwt, algorithms: [HS256], secret: "${JWT_SECRET}",
             issuer: https://auth.example.com, audience: chat }
    claims:
      type: jwt
      algorithms: [HS256, RS256]
      secret: "${JWT_SECRET}"
      public_key: "@RSA_PUB@"
      subject_claim: email
      claims_to_headers: { roles: X-Auth-Roles, tenant: X-Tenant }
    keyset: { type: jwt, algorithms: [RS256, ES256], jwks: "@JWKS@" }
    short: { type: jwt, algorithms: [HS256], secret: "${JWT_SECRET}", leeway: 0s }
routes:
@ROUTES@
  - { name: users, path: /users, handler: echo, auth: users }
  - { name: claims, path: /claims, upstream: "ws://127.0.0.1:@A@", auth: claims }
  - { name: keyset, path: /keyset, handler: echo, auth: keyset }
  - { name: qonly, path: /qonly, handler: echo, auth: users, token_from: [query=t] }
  - { name: sub-echo, path: /sub-echo, handler: echo, auth: users }
  - { name: sub-proxy, path: /sub-proxy, upstream: "ws://127.0.0.1:@A@", auth: users }
  - name: sub-pick
    path_prefix: /pick/
    strip_prefix: true
    upstream: "ws://127.0.0.1:@S@/pickproto"
    auth: users
  - { name: exp-echo, path: /exp-echo, handler: echo, auth: short }
  - { name: exp-proxy, path: /exp-proxy, upstream: "ws://127.0.0.1:@A@", auth: short }
  - name: exp-keep
    path: /exp-keep
    handler: echo
    auth: short
    close_on_expiry: false
"""


def claims(**extra):
    now = int(time.time())
    c = {"iss": ISS, "aud": "chat", "sub": "alice", "exp": now + 600, "iat": now}
    c.update(extra)
    return {k: v for k, v in c.items() if v is not None}


def secret_part(token):
    """The longest dot-separated part of a token: what must never be logged."""
    return max(token.split("."), key=len)


class JwtTest(GatewayTestCase):
    @classmethod
    def setUpClass(cls):
        cls.keys = Keys()
        cls.addClassCleanup(cls.keys.cleanup)
        cls.a = EchoUpstream("A", subprotocols=["chat.v1"]).start()
        cls.addClassCleanup(cls.a.stop)
        cls.s = ScriptedUpstream("S").start()
        cls.addClassCleanup(cls.s.stop)
        cls.jwks_path = os.path.join(cls.keys.dir, "jwks.json")
        cls.write_jwks([cls.keys.jwk("rsa", "k1"), cls.keys.jwk("P-256", "e1")])
        providers, routes = "", ""
        for alg in ALGS:
            key = (f'secret: "{SECRET}"' if alg.startswith("HS")
                   else f'public_key: "{cls.keys.public_pem(alg)}"')
            providers += PROVIDER.format(alg=alg, key=key, iss=ISS)
            routes += f"  - {{ name: h{alg}, path: /h/{alg}, handler: echo, auth: p{alg} }}\n"
        cls.CONFIG = (CONFIG.replace("@PROVIDERS@", providers.rstrip("\n"))
                      .replace("@ROUTES@", routes.rstrip("\n"))
                      .replace("@A@", str(cls.a.port)).replace("@S@", str(cls.s.port))
                      .replace("@RSA_PUB@", cls.keys.pub["rsa"])
                      .replace("@JWKS@", cls.jwks_path))
        cls.ENV = {"JWT_SECRET": SECRET}
        cls.tokens_used = []
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        # No credential of any test ever reached the log.
        text = cls.gw.stderr_text
        leaked = [t for t in cls.tokens_used if t in text or secret_part(t) in text]
        super().tearDownClass()
        assert not leaked, f"{len(leaked)} tokens appear in the gateway's log"

    @classmethod
    def write_jwks(cls, keys):
        tmp = cls.jwks_path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"keys": keys}, f)
        os.replace(tmp, cls.jwks_path)

    # ---- helpers

    def status(self, path, token=None, extra=()):
        """The status of a handshake to path with token in Authorization."""
        if token is not None:
            self.tokens_used.append(token)
            extra = [("Authorization", "Bearer " + token)] + list(extra)
        with self.raw() as c:
            c.send(upgrade_request(path, extra=extra))
            return c.read_response()

    def expect(self, path, token, want, what):
        resp = self.status(path, token)
        self.assertEqual(resp.status, want, f"{path} {what}: {resp!r}")
        if want == 401:
            www = resp.header("WWW-Authenticate") or ""
            self.assertIn('error="invalid_token"', www, f"{path} {what}: {resp!r}")
            self.assertNotIn(secret_part(token), resp.body.decode("latin-1"))
        return resp

    # ---- every algorithm

    def test_every_algorithm(self):
        k = self.keys
        now = int(time.time())
        for alg in ALGS:
            with self.subTest(alg=alg):
                path = f"/h/{alg}"
                self.expect(path, k.token(alg, claims()), 101, "valid")
                self.expect(path, k.token(alg, claims(aud=["x", "api"])), 101, "aud list")
                self.expect(path, k.token(alg, claims(exp=now - 60)), 401, "expired")
                self.expect(path, k.token(alg, claims(nbf=now + 600)), 401, "not yet valid")
                self.expect(path, k.token(alg, claims(iat=now + 600)), 401, "iat in future")
                self.expect(path, k.token(alg, claims(iss="https://evil.example.com")), 401,
                            "wrong issuer")
                self.expect(path, k.token(alg, claims(aud="other")), 401, "wrong audience")
                self.expect(path, k.token(alg, claims(exp=None)), 401, "missing exp")
                good = k.token(alg, claims())
                head, body, sig = good.split(".")
                forged_body = b64u_json(claims(sub="admin"))
                self.expect(path, f"{head}.{forged_body}.{sig}", 401, "forged claims")
                flipped = sig[:5] + ("A" if sig[5] != "A" else "B") + sig[6:]
                self.expect(path, f"{head}.{body}.{flipped}", 401, "forged signature")
                none = b64u_json({"alg": "none", "typ": "JWT"}) + "." + body + "."
                self.expect(path, none, 401, "alg none")
                none2 = b64u_json({"alg": "none"}) + "." + body + "." + b64u(b"x")
                self.expect(path, none2, 401, "alg none with a signature")
                other = "HS256" if alg != "HS256" else "HS384"
                self.expect(path, k.token(other, claims()), 401, "algorithm not allowed")
                if not alg.startswith("HS"):
                    # HMAC keyed with the public key's PEM: algorithm confusion.
                    with open(k.public_pem(alg), "rb") as f:
                        pem = f.read()
                    confused = k.token("HS256", claims(), secret=pem)
                    self.expect(path, confused, 401, "HMAC with the public key")
                if alg.startswith("RS") or alg.startswith("PS"):
                    self.expect(path, k.token(alg, claims(), key="rsa2"), 401, "other key")
                self.expect(path, "a" + good, 401, "bad base64")
                self.expect(path, head + "." + b64u(b"{not json") + "." + sig, 401, "bad JSON")
                self.expect(path, head + "." + body, 401, "two segments")
                self.expect(path, good + ".x", 401, "four segments")
                self.expect(path, b64u(b"[]") + "." + body + "." + sig, 401, "header array")

    def test_design_example_provider(self):
        self.expect("/users", self.keys.token("HS256", claims()), 101, "valid")
        self.expect("/users", self.keys.token("HS256", claims(aud="api")), 401, "audience")
        resp = self.status("/users")
        self.assertEqual(resp.status, 401)
        self.assertNotIn("error=", resp.header("WWW-Authenticate") or "")

    # ---- claims as identity headers

    def whoami(self, path, token, extra_headers=()):
        self.tokens_used.append(token)

        async def go():
            hdrs = [("Authorization", "Bearer " + token)] + list(extra_headers)
            async with ws_connect(self.url(path), extra_headers=hdrs) as ws:
                await ws.send("@@whoami")
                return json.loads(await asyncio.wait_for(ws.recv(), IO_TIMEOUT))
        return run_async(go())

    def test_claims_arrive_as_headers_and_client_copies_do_not(self):
        for alg in ("HS256", "RS256"):
            tok = self.keys.token(alg, claims(email="alice@example.com", sub="u-1",
                                              roles=["admin", "dev"], tenant=42))
            spoof = [("X-Auth-Roles", "root"), ("x-tenant", "0"),
                     ("X-Auth-Subject", "mallory"), ("X_Auth_Roles", "root")]
            info = self.whoami(f"/claims?id=c-{alg}", tok, spoof)
            got = {}
            for n, v in info["headers"]:
                got.setdefault(n.lower().replace("_", "-"), []).append(v)
            where = json.dumps(info["headers"], indent=1)
            self.assertEqual(got.get("x-auth-subject"), ["alice@example.com"], where)
            self.assertEqual(got.get("x-auth-roles"), ["admin,dev"], where)
            self.assertEqual(got.get("x-tenant"), ["42"], where)
            self.assertNotIn("authorization", got, where)
            for n, v in info["headers"]:
                self.assertNotIn(tok.split(".")[2], v, where)
        # With HS256 and RS256 both allowed, HMAC keyed with the RSA public key
        # (algorithm confusion) still fails: an HS token is checked only
        # against the secret.
        with open(self.keys.pub["rsa"], "rb") as f:
            pem = f.read()
        self.expect("/claims", self.keys.token("HS256", claims(email="x@y"), secret=pem),
                    401, "confusion")
        # A token without the claims sets none of them, nor lets a client's through.
        info = self.whoami("/claims?id=c-none", self.keys.token("HS256", claims(
            email="bob@example.com")), [("X-Tenant", "7")])
        names = [n.lower() for n, _ in info["headers"]]
        self.assertNotIn("x-tenant", names)
        self.assertNotIn("x-auth-roles", names)

    # ---- token sources and what they leave behind

    def test_token_from_query_cookie_subprotocol_on_a_proxied_route(self):
        cases = {
            "query": lambda t: ("/sub-proxy?id=src-q&access_token=" + t + "&x=1", [], None),
            "cookie": lambda t: ("/sub-proxy?id=src-c",
                                 [("Cookie", f"theme=dark; session={t}")], None),
            "subprotocol": lambda t: ("/sub-proxy?id=src-p", [], [f"bearer.{t}", "chat.v1"]),
        }
        for name, make in cases.items():
            with self.subTest(source=name):
                tok = self.keys.token("HS256", claims(sub=f"via-{name}"))
                self.tokens_used.append(tok)
                path, hdrs, protos = make(tok)

                async def go():
                    async with ws_connect(self.url(path), extra_headers=hdrs,
                                          subprotocols=protos) as ws:
                        await ws.send("@@whoami")
                        info = json.loads(await asyncio.wait_for(ws.recv(), IO_TIMEOUT))
                        return info, ws.subprotocol
                info, chosen = run_async(go())
                where = json.dumps(info, indent=1)
                self.assertNotIn(tok, info["path"], where)
                for n, v in info["headers"]:
                    self.assertNotIn(tok, v, where)
                    self.assertNotIn(tok.split(".")[2], v, where)
                subj = [v for n, v in info["headers"] if n.lower() == "x-auth-subject"]
                self.assertEqual(subj, [f"via-{name}"], where)
                if protos:
                    self.assertEqual(chosen, "chat.v1")
                    self.assertEqual(info["subprotocol"], "chat.v1")
                if name == "cookie":
                    cookies = [v for n, v in info["headers"] if n.lower() == "cookie"]
                    self.assertEqual(cookies, ["theme=dark"], where)
                if name == "query":
                    self.assertEqual(info["path"], "/sub-proxy?id=src-q&x=1")
        # The access log names the path, never the query that carried a token.
        line = self.gw.wait_for_log(r"upgrade status=101 path=\"/sub-proxy\" route=sub-proxy")
        self.assertNotIn("access_token", line)

    def test_bearer_subprotocol_never_selected_by_the_gateway(self):
        tok = self.keys.token("HS256", claims())
        self.tokens_used.append(tok)
        for protos in ([f"bearer.{tok}"], [f"bearer.{tok}", "chat.v1"]):
            with self.raw() as c:
                c.send(upgrade_request("/sub-echo", extra=[
                    ("Sec-WebSocket-Protocol", ", ".join(protos))]))
                resp = c.read_response()
            self.assertEqual(resp.status, 101, resp)
            self.assertIsNone(resp.header("Sec-WebSocket-Protocol"), resp)
            self.assertNotIn(secret_part(tok), str(resp.head))

    def test_upstream_selecting_the_stripped_bearer_entry_is_502(self):
        tok = self.keys.token("HS256", claims())
        self.tokens_used.append(tok)
        proto = "bearer." + tok
        with self.raw() as c:
            c.send(upgrade_request(f"/pick/?id=pick-bad&p={proto}", extra=[
                ("Sec-WebSocket-Protocol", f"{proto}, chat.v1")]))
            resp = c.read_response()
        self.assertEqual(resp.status, 502, resp)
        rec = self.s.conn("pick-bad")
        self.assertNotIn(tok, rec["headers"].get("sec-websocket-protocol", ""))
        self.assertEqual(rec["headers"].get("sec-websocket-protocol"), "chat.v1")
        # Selecting what was really offered is fine.
        with self.raw() as c:
            c.send(upgrade_request("/pick/?id=pick-ok&p=chat.v1", extra=[
                ("Sec-WebSocket-Protocol", f"{proto}, chat.v1")]))
            resp = c.read_response()
        self.assertEqual(resp.status, 101, resp)
        self.assertEqual(resp.header("Sec-WebSocket-Protocol"), "chat.v1")

    def test_route_token_from_overrides_auth_token_from(self):
        tok = self.keys.token("HS256", claims())
        self.assertEqual(self.status("/qonly", tok).status, 401)  # header not read here
        self.assertEqual(self.status("/users", tok).status, 101)
        with self.raw() as c:
            c.send(upgrade_request("/qonly?t=" + tok))
            self.assertEqual(c.read_response().status, 101)
        with self.raw() as c:
            c.send(upgrade_request("/qonly?access_token=" + tok))
            self.assertEqual(c.read_response().status, 401)

    # ---- JWKS rotation on SIGHUP

    def test_jwks_kid_rotation_on_sighup(self):
        k = self.keys
        self.expect("/keyset", k.token("RS256", claims(), header={"kid": "k1"}), 101, "k1")
        self.expect("/keyset", k.token("ES256", claims(), header={"kid": "e1"}), 101, "e1")
        new = k.token("RS256", claims(), header={"kid": "k2"}, key="rsa2")
        self.expect("/keyset", new, 401, "k2 before rotation")
        self.write_jwks([k.jwk("rsa2", "k2"), k.jwk("P-256", "e1")])
        self.gw.signal(signal.SIGHUP)
        for worker in range(2):
            self.gw.wait_for_log(rf"reload_applied worker={worker} generation=2")
        self.expect("/keyset", new, 101, "k2 after rotation")
        self.expect("/keyset", k.token("RS256", claims(), header={"kid": "k1"}), 401,
                    "k1 after rotation")

    # ---- expiry on live connections

    def expiring(self, path, seconds=4):
        # exp counts whole seconds: at least seconds - 1 remain, a margin for
        # a loaded (sanitizer) run between minting and the handshake.
        self.exp = int(time.time()) + seconds
        tok = self.keys.token("HS256", claims(exp=self.exp))
        self.tokens_used.append(tok)
        return tok

    def test_expiry_closes_handler_connection_1008(self):
        tok = self.expiring("/exp-echo")

        async def go():
            async with ws_connect(self.url("/exp-echo"), extra_headers=[
                    ("Authorization", "Bearer " + tok)]) as ws:
                await ws.send("still valid")
                self.assertEqual(await asyncio.wait_for(ws.recv(), IO_TIMEOUT), "still valid")
                with self.assertRaises(websockets.ConnectionClosed):
                    await asyncio.wait_for(ws.recv(), 30)
                return ws.close_code, ws.close_reason
        code, reason = run_async(go())
        self.assertEqual((code, reason), (1008, "token expired"))

    def test_expiry_closes_proxied_connection_both_sides(self):
        tok = self.expiring("/exp-proxy")

        async def go():
            async with ws_connect(self.url("/exp-proxy?id=exp-p"), extra_headers=[
                    ("Authorization", "Bearer " + tok)]) as ws:
                await ws.send("hi")
                self.assertEqual(await asyncio.wait_for(ws.recv(), IO_TIMEOUT), "hi")
                with self.assertRaises(websockets.ConnectionClosed):
                    await asyncio.wait_for(ws.recv(), 30)
                return ws.close_code, ws.close_reason
        code, reason = run_async(go())
        self.assertEqual((code, reason), (1008, "token expired"))
        rec = self.a.closed_connection("exp-p", timeout=30)
        self.assertEqual((rec["close_code"], rec["close_reason"]), (1008, "token expired"))

    def test_expiry_close_arrives_between_exp_and_one_second_after(self):
        # The contract's bound: closed at exp, by the gateway's clock (the
        # same wall clock as ours), within a second. exp is whole seconds.
        for path in ("/exp-echo", "/exp-proxy?id=exp-t"):
            with self.subTest(path=path):
                tok = self.expiring(path)
                with self.raw() as c:
                    c.handshake(path, extra=[("Authorization", "Bearer " + tok)])
                    c.send(client_frame(OP_TEXT, "before exp"))
                    self.assertEqual(c.read_frame(), (True, OP_TEXT, b"before exp"))
                    code, reason = c.read_close()
                    closed_at = time.time()
                self.assertEqual((code, reason), (1008, b"token expired"))
                self.assertGreaterEqual(closed_at, self.exp - EXPIRY_CLOCK_SLACK)
                self.assertLessEqual(closed_at, self.exp + 1.0)

    def test_close_on_expiry_false_keeps_the_connection(self):
        tok = self.expiring("/exp-keep", seconds=3)

        async def go():
            async with ws_connect(self.url("/exp-keep"), extra_headers=[
                    ("Authorization", "Bearer " + tok)]) as ws:
                deadline = self.exp + 2
                while int(time.time()) < deadline:  # past exp, by the wall clock
                    await asyncio.sleep(0.5)
                await ws.send("after exp")
                return await asyncio.wait_for(ws.recv(), IO_TIMEOUT)
        self.assertEqual(run_async(go()), "after exp")

    def test_token_issued_this_second_is_accepted_without_leeway(self):
        # Just after a second boundary the coarse clock behind time() still
        # shows the previous second: a gateway reading it would call a token
        # issued now "issued in the future".
        for _ in range(3):
            time.sleep(1.0 - time.time() % 1.0)
            tok = self.keys.token("HS256", claims(iat=int(time.time()), exp=None))
            self.expect("/exp-echo", tok, 101, "iat now, leeway 0")

    def test_already_expired_is_rejected_at_the_handshake(self):
        tok = self.keys.token("HS256", claims(exp=int(time.time()) - 1))
        self.expect("/exp-echo", tok, 401, "expired at connect")


class JwtConfigTest(unittest.TestCase):
    """Key files are read at load: errors carry the position, path and reason."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="wsgate-jwtcfg-")
        self.addCleanup(self.tmp.cleanup)

    def check(self, text, env=None):
        path = os.path.join(self.tmp.name, "gw.yaml")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        e = dict(os.environ)
        e.update(env or {})
        p = subprocess.run([wsgate_bin(), "-t", "-c", path], capture_output=True, text=True,
                           env=e, timeout=60)
        return p.returncode, p.stdout + p.stderr, path

    def test_design_example_loads(self):
        rc, out, _ = self.check(
            "listeners: [{address: 127.0.0.1:0}]\n"
            "auth:\n"
            "  providers:\n"
            "    users: { type: jwt, algorithms: [HS256], secret: \"${JWT_SECRET}\",\n"
            "             issuer: https://auth.example.com, audience: chat }\n"
            "routes: [{ path: /chat, handler: echo, auth: users }]\n",
            env={"JWT_SECRET": SECRET})
        self.assertEqual(rc, 0, out)
        self.assertIn("configuration OK", out)

    def test_unreadable_and_invalid_key_files(self):
        bad_pem = os.path.join(self.tmp.name, "bad.pem")
        with open(bad_pem, "w", encoding="utf-8") as f:
            f.write("-----BEGIN PUBLIC KEY-----\nnot base64!\n-----END PUBLIC KEY-----\n")
        bad_jwks = os.path.join(self.tmp.name, "bad.json")
        with open(bad_jwks, "w", encoding="utf-8") as f:
            f.write('{"keys": [{"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}]}')
        missing = os.path.join(self.tmp.name, "missing.pem")
        text = ("listeners: [{address: 127.0.0.1:0}]\n"
                "auth:\n"
                "  providers:\n"
                f"    a: {{ type: jwt, algorithms: [RS256], public_key: \"{missing}\" }}\n"
                f"    b: {{ type: jwt, algorithms: [ES256], public_key: \"{bad_pem}\" }}\n"
                f"    c: {{ type: jwt, algorithms: [ES256], jwks: \"{bad_jwks}\" }}\n"
                f"    d: {{ type: jwt, algorithms: [ES256], jwks: \"{missing}\" }}\n"
                "routes: [{ path: /chat, handler: echo, auth: a }]\n")
        rc, out, path = self.check(text)
        self.assertEqual(rc, 1, out)
        lines = out.strip().splitlines()
        self.assertEqual(len(lines), 4, out)
        col = text.splitlines()[3].index('"' + missing) + 1
        self.assertEqual(lines[0], f"{path}:4:{col}: auth.providers.a.public_key: cannot read "
                                   f"{missing}: No such file or directory")
        self.assertRegex(lines[1], rf"^{path}:5:\d+: auth.providers.b.public_key: {bad_pem}: "
                                   r"not a PEM public key or certificate \(.+\)$")
        self.assertRegex(lines[2], rf"^{path}:6:\d+: auth.providers.c.jwks: {bad_jwks}: "
                                   r"keys\[0\]: an EC key needs")
        self.assertRegex(lines[3], rf"^{path}:7:\d+: auth.providers.d.jwks: cannot read "
                                   rf"{missing}: No such file")

    def test_key_of_the_wrong_family(self):
        keys = Keys()
        self.addCleanup(keys.cleanup)
        text = ("listeners: [{address: 127.0.0.1:0}]\n"
                "auth:\n"
                "  providers:\n"
                f"    a: {{ type: jwt, algorithms: [ES256], public_key: \"{keys.pub['rsa']}\" }}\n"
                f"    b: {{ type: jwt, algorithms: [ES384], public_key: \"{keys.pub['P-256']}\" }}\n"
                "routes: [{ path: /chat, handler: echo, auth: a }]\n")
        rc, out, path = self.check(text)
        self.assertEqual(rc, 1, out)
        self.assertEqual(out.count("no allowed algorithm uses this key"), 2, out)


if __name__ == "__main__":
    unittest.main()
