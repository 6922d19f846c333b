"""jwt_tokens: JSON Web Tokens for the tests, made independently of wsgate.

HS* tokens are signed with the standard library's hmac; RS*, PS* and ES*
tokens with the `openssl` command line (genpkey, pkey, dgst), ECDSA DER
signatures converted to the raw R || S that JWS uses. A Keys object holds one
RSA key and one EC key per curve in a temporary directory.
"""

import base64
import hashlib
import hmac
import json
import os
import subprocess
import tempfile

ALGS = ["HS256", "HS384", "HS512", "RS256", "RS384", "RS512",
        "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"]
CURVES = {"ES256": ("P-256", 32), "ES384": ("P-384", 48), "ES512": ("P-521", 66)}
SECRET = "it-jwt-secret-0123456789abcdef-0123456789abcdef-0123456789abcdef!"  # 66 bytes


def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64u_json(obj):
    return b64u(json.dumps(obj, separators=(",", ":")).encode("utf-8"))


def openssl(*args, data=None):
    return subprocess.run(["openssl", *args], input=data, check=True,
                          capture_output=True).stdout


def der_to_raw(der, size):
    """An ECDSA-Sig-Value (SEQUENCE of INTEGER r, s) as r || s."""
    assert der[0] == 0x30
    i = 2 if der[1] < 0x80 else 2 + (der[1] & 0x7F)
    out = b""
    for _ in range(2):
        assert der[i] == 0x02
        n = der[i + 1]
        v = der[i + 2:i + 2 + n].lstrip(b"\x00")
        out += v.rjust(size, b"\x00")
        i += 2 + n
    return out


class Keys:
    def __init__(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="wsgate-jwt-")
        self.dir = self.tmp.name
        self.priv = {}
        self.pub = {}
        self.make("rsa", "RSA", "rsa_keygen_bits:2048")
        self.make("rsa2", "RSA", "rsa_keygen_bits:2048")
        for alg, (crv, _) in CURVES.items():
            self.make(crv, "EC", f"ec_paramgen_curve:{crv}")

    def make(self, name, algorithm, opt):
        priv = os.path.join(self.dir, f"{name}.key")
        pub = os.path.join(self.dir, f"{name}.pub")
        openssl("genpkey", "-algorithm", algorithm, "-pkeyopt", opt, "-out", priv)
        openssl("pkey", "-in", priv, "-pubout", "-out", pub)
        self.priv[name] = priv
        self.pub[name] = pub

    def key_name(self, alg):
        return CURVES[alg][0] if alg.startswith("ES") else "rsa"

    def public_pem(self, alg):
        return self.pub[self.key_name(alg)]

    def cleanup(self):
        self.tmp.cleanup()

    # ---- signing

    def sign(self, alg, data, key=None, secret=None):
        bits = alg[2:]
        if alg.startswith("HS"):
            k = secret if secret is not None else SECRET
            k = k if isinstance(k, bytes) else k.encode()
            return hmac.new(k, data, getattr(hashlib, "sha" + bits)).digest()
        keyfile = self.priv[key or self.key_name(alg)]
        args = ["dgst", "-sha" + bits, "-sign", keyfile]
        if alg.startswith("PS"):
            args += ["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:-1"]
        sig = openssl(*args, data=data)
        if alg.startswith("ES"):
            sig = der_to_raw(sig, CURVES[alg][1])
        return sig

    def token(self, alg, claims, header=None, key=None, secret=None):
        h = {"alg": alg, "typ": "JWT"}
        h.update(header or {})
        signing_input = (b64u_json(h) + "." + b64u_json(claims)).encode("ascii")
        sig = self.sign(alg, signing_input, key=key, secret=secret)
        return signing_input.decode("ascii") + "." + b64u(sig)

    # ---- JWKS

    def jwk(self, name, kid):
        pub = self.pub[name]
        if name.startswith("rsa"):
            modulus = openssl("rsa", "-pubin", "-in", pub, "-noout", "-modulus")
            n = bytes.fromhex(modulus.decode().strip().split("=", 1)[1])
            return {"kty": "RSA", "kid": kid, "n": b64u(n), "e": b64u(b"\x01\x00\x01")}
        text = openssl("pkey", "-pubin", "-in", pub, "-noout", "-text").decode()
        hexes = []
        grab = False
        for line in text.splitlines():
            if line.strip().startswith("pub:"):
                grab = True
                continue
            if grab:
                if ":" in line and all(c in "0123456789abcdef:" for c in line.strip()):
                    hexes.append(line.strip())
                else:
                    break
        point = bytes.fromhex("".join(hexes).replace(":", ""))
        size = (len(point) - 1) // 2
        return {"kty": "EC", "kid": kid, "crv": name, "x": b64u(point[1:1 + size]),
                "y": b64u(point[1 + size:])}
