"""RFC 6455 / RFC 7692 conformance of the in-process endpoint, with raw sockets.

Organised like the Autobahn testsuite's sections (framing, ping/pong, reserved
bits, opcodes, fragmentation, UTF-8, limits, closing, compression), with the
cases derived from the RFC text. Every protocol case runs twice: on a route
without permessage-deflate, and on one where the client negotiated it (the
`Deflate*` subclasses), where the client also sends its messages compressed.
"""

import os
import socket
import struct
import time
import unittest
import zlib

from wsgate_harness import (OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT,
                            GatewayTestCase, RawClient, accept_for, upgrade_request)

MAX_MESSAGE = 256 * 1024
THRESHOLD = 64

CONFIG = f"""\
listeners:
  - address: 127.0.0.1:0
workers: 2
limits: {{ max_message_size: 256KiB, idle_timeout: 1m }}
log: {{ level: info, format: text }}
routes:
  - {{ name: plain, path: /echo, handler: echo, ping_interval: off }}
  - {{ name: deflate, path: /z, handler: echo, deflate: on, deflate_threshold: {THRESHOLD}B,
      ping_interval: off }}
"""

TAIL = b"\x00\x00\xff\xff"


def frame(opcode, payload=b"", fin=True, rsv=0, mask=None, length=None, masked=True):
    """A client frame with any header bits; `length` overrides the length."""
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    n = len(payload) if length is None else length
    head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    bit = 0x80 if masked else 0
    if n < 126:
        head += bytes([bit | n])
    elif n < 65536:
        head += bytes([bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", n)
    if not masked:
        return head + payload
    mask = os.urandom(4) if mask is None else mask
    return head + mask + xor(payload, mask)


def xor(data, mask, offset=0):
    if not data:
        return b""
    reps = (len(data) + offset) // 4 + 2
    m = (mask * reps)[offset % 4: offset % 4 + len(data)]
    return (int.from_bytes(data, "big") ^ int.from_bytes(m, "big")).to_bytes(len(data), "big")


class Conn:
    """One raw connection: frames out, messages in, optional permessage-deflate."""

    def __init__(self, port, path, offer=None, window=15):
        self.raw = RawClient(port)
        extra = [("Sec-WebSocket-Extensions", offer)] if offer else []
        self.raw.send(upgrade_request(path, extra=extra))
        self.resp = self.raw.read_response()
        assert self.resp.status == 101, self.resp
        assert self.resp.header("Sec-WebSocket-Accept") == accept_for(
            "dGhlIHNhbXBsZSBub25jZQ==")
        self.ext = self.resp.header("Sec-WebSocket-Extensions")
        self.deflate = self.ext is not None
        params = [p.strip() for p in (self.ext or "").split(";")]
        self.server_nct = "server_no_context_takeover" in params
        self.client_nct = "client_no_context_takeover" in params
        bits = [p for p in params if p.startswith("server_max_window_bits=")]
        self.server_bits = int(bits[0].split("=")[1]) if bits else 15
        self.inflater = zlib.decompressobj(-self.server_bits)
        self.compressor = zlib.compressobj(6, zlib.DEFLATED, -window)

    def close(self):
        self.raw.close()

    def send(self, data):
        self.raw.send(data)

    def compress(self, payload):
        if self.client_nct:
            self.compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
        out = self.compressor.compress(payload) + self.compressor.flush(zlib.Z_SYNC_FLUSH)
        assert out.endswith(TAIL)
        return out[:-4]

    def send_message(self, opcode, payload, compress=None, fragments=1):
        """Sends a message, compressed when the connection negotiated it (or as
        `compress` says), split into `fragments` frames."""
        if isinstance(payload, str):
            payload = payload.encode("utf-8")
        compress = self.deflate if compress is None else compress
        body = self.compress(payload) if compress else payload
        parts = split(body, fragments)
        out = b""
        for i, part in enumerate(parts):
            out += frame(opcode if i == 0 else OP_CONT, part, fin=i == len(parts) - 1,
                         rsv=4 if compress and i == 0 else 0)
        self.send(out)

    def read_frame(self):
        b0, b1 = self.raw.read_exact(2)
        assert not b1 & 0x80, "server frame is masked"
        n = b1 & 0x7F
        if n == 126:
            (n,) = struct.unpack("!H", self.raw.read_exact(2))
        elif n == 127:
            (n,) = struct.unpack("!Q", self.raw.read_exact(8))
        return bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0x0F, self.raw.read_exact(n)

    def read_message(self):
        """The next data message or control frame: (opcode, payload, compressed)."""
        fin, rsv, op, payload = self.read_frame()
        if op >= 8:
            assert rsv == 0 and fin
            return op, payload, False
        assert rsv in (0, 4), f"server frame with RSV {rsv}"
        assert rsv == 0 or self.deflate, "RSV1 without permessage-deflate"
        compressed = rsv == 4
        data = payload
        while not fin:
            fin, rsv2, op2, more = self.read_frame()
            assert op2 == OP_CONT and rsv2 == 0
            data += more
        if compressed:
            if self.server_nct:
                self.inflater = zlib.decompressobj(-self.server_bits)
            data = self.inflater.decompress(data + TAIL)
        return op, data, compressed

    def expect_echo(self, opcode, payload):
        if isinstance(payload, str):
            payload = payload.encode("utf-8")
        op, data, compressed = self.read_message()
        assert op == opcode, f"want opcode {opcode}, got {op} {data[:60]!r}"
        assert data == payload, f"echo differs: {len(data)} vs {len(payload)} bytes"
        return compressed

    def expect_close(self, code):
        """Reads up to the server's close frame and asserts its code, then
        that the server closes the TCP connection."""
        while True:
            op, data, _ = self.read_message()
            if op == OP_CLOSE:
                break
        got = struct.unpack("!H", data[:2])[0] if len(data) >= 2 else None
        assert got == code, f"want close {code}, got {got} {data[2:]!r}"
        assert self.raw.at_eof(), "the server did not close the TCP connection"
        return data[2:]


def split(data, n):
    if n <= 1:
        return [data]
    size = max(1, -(-len(data) // n))
    parts = [data[i:i + size] for i in range(0, len(data), size)]
    while len(parts) < n:
        parts.append(b"")
    return parts


class Base(GatewayTestCase):
    """The protocol cases, on the route without permessage-deflate."""
    CONFIG = CONFIG
    PATH = "/echo"
    OFFER = None

    def conn(self, offer=None, path=None, **kw):
        c = Conn(self.port, path or self.PATH, offer or self.OFFER, **kw)
        self.addCleanup(c.close)
        if self.OFFER is not None and offer is None:
            self.assertIsNotNone(c.ext, "permessage-deflate was not negotiated")
        return c

    def fails_with(self, code, data, c=None):
        c = c or self.conn()
        c.send(data)
        c.expect_close(code)


class Framing(Base):
    """Autobahn 1.x: text and binary messages of every length encoding."""

    SIZES = [0, 1, 125, 126, 127, 128, 65535, 65536, 65537, 200 * 1024]

    def test_1_1_text(self):
        c = self.conn()
        for n in self.SIZES:
            msg = ("*" * n).encode()
            c.send_message(OP_TEXT, msg)
            c.expect_echo(OP_TEXT, msg)

    def test_1_2_binary(self):
        c = self.conn()
        for n in self.SIZES:
            msg = os.urandom(n)
            c.send_message(OP_BINARY, msg)
            c.expect_echo(OP_BINARY, msg)

    def test_1_3_chopped_writes(self):
        # The frame arrives one byte per write; the server must reassemble it.
        c = self.conn()
        msg = b"chopped into single bytes \xe2\x82\xac"
        body = c.compress(msg) if c.deflate else msg
        data = frame(OP_TEXT, body, rsv=4 if c.deflate else 0)
        for i in range(len(data)):
            c.send(data[i:i + 1])
        c.expect_echo(OP_TEXT, msg)

    def test_1_4_many_messages_in_one_write(self):
        c = self.conn()
        msgs = [os.urandom(i * 37) for i in range(50)]
        out = b""
        for m in msgs:
            body = c.compress(m) if c.deflate else m
            out += frame(OP_BINARY, body, rsv=4 if c.deflate else 0)
        c.send(out)
        for m in msgs:
            c.expect_echo(OP_BINARY, m)

    def test_1_5_unmasked_frame_is_1002(self):
        self.fails_with(1002, frame(OP_TEXT, b"hello", masked=False))

    def test_1_6_non_minimal_length_is_1002(self):
        # 5 bytes announced with the 16-bit form (RFC 6455 §5.2: minimal form).
        head = bytes([0x81, 0x80 | 126]) + struct.pack("!H", 5) + b"\0\0\0\0"
        self.fails_with(1002, head + b"hello")

    def test_1_7_64bit_length_top_bit_is_1002(self):
        head = bytes([0x82, 0x80 | 127]) + struct.pack("!Q", 1 << 63) + b"\0\0\0\0"
        self.fails_with(1002, head)


class PingPong(Base):
    """Autobahn 2.x."""

    def test_2_1_empty_ping(self):
        c = self.conn()
        c.send(frame(OP_PING))
        self.assertEqual(c.read_message()[:2], (OP_PONG, b""))

    def test_2_2_ping_with_text_payload(self):
        c = self.conn()
        c.send(frame(OP_PING, b"Hello, world!"))
        self.assertEqual(c.read_message()[:2], (OP_PONG, b"Hello, world!"))

    def test_2_3_ping_with_binary_payload(self):
        c = self.conn()
        payload = bytes([0x00, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0x00, 0xff])
        c.send(frame(OP_PING, payload))
        self.assertEqual(c.read_message()[:2], (OP_PONG, payload))

    def test_2_4_ping_125_bytes(self):
        c = self.conn()
        payload = os.urandom(125)
        c.send(frame(OP_PING, payload))
        self.assertEqual(c.read_message()[:2], (OP_PONG, payload))

    def test_2_5_ping_126_bytes_is_1002(self):
        self.fails_with(1002, frame(OP_PING, b"x" * 126))

    def test_2_6_ping_sent_bytewise(self):
        c = self.conn()
        data = frame(OP_PING, b"bytewise ping")
        for i in range(len(data)):
            c.send(data[i:i + 1])
        self.assertEqual(c.read_message()[:2], (OP_PONG, b"bytewise ping"))

    def test_2_7_unsolicited_pong_is_ignored(self):
        c = self.conn()
        c.send(frame(OP_PONG, b"unsolicited"))
        c.send_message(OP_TEXT, "after pong")
        c.expect_echo(OP_TEXT, "after pong")

    def test_2_8_pong_126_bytes_is_1002(self):
        self.fails_with(1002, frame(OP_PONG, b"x" * 126))

    def test_2_9_ten_pings_ten_pongs_in_order(self):
        c = self.conn()
        c.send(b"".join(frame(OP_PING, f"ping {i}") for i in range(10)))
        for i in range(10):
            self.assertEqual(c.read_message()[:2], (OP_PONG, f"ping {i}".encode()))


class ReservedBits(Base):
    """Autobahn 3.x: RSV bits no extension claimed are 1002."""

    RSV_DATA = [2, 1, 3, 7]  # RSV2, RSV3, RSV2+3, all; RSV1 depends on deflate

    def test_3_1_rsv_on_text(self):
        for rsv in self.RSV_DATA:
            with self.subTest(rsv=rsv):
                self.fails_with(1002, frame(OP_TEXT, b"hello", rsv=rsv))

    def test_3_2_rsv_after_a_good_message(self):
        c = self.conn()
        c.send_message(OP_TEXT, "good")
        c.send(frame(OP_TEXT, b"bad", rsv=2))
        c.expect_echo(OP_TEXT, "good")
        c.expect_close(1002)

    def test_3_3_rsv_on_binary_ping_close(self):
        for op in (OP_BINARY, OP_PING, OP_CLOSE):
            for rsv in self.RSV_DATA:
                with self.subTest(op=op, rsv=rsv):
                    self.fails_with(1002, frame(op, b"", rsv=rsv))

    def test_3_4_rsv1_on_control_frames(self):
        # Never allowed: permessage-deflate claims RSV1 for data frames only.
        for op in (OP_PING, OP_PONG, OP_CLOSE):
            with self.subTest(op=op):
                self.fails_with(1002, frame(op, b"", rsv=4))

    def test_3_5_rsv1_on_continuation(self):
        c = self.conn()
        c.send(frame(OP_TEXT, b"first", fin=False) + frame(OP_CONT, b"x", rsv=4))
        c.expect_close(1002)

    def test_3_6_rsv1_on_text(self):
        if self.OFFER is not None:
            self.skipTest("RSV1 is permessage-deflate's here")
        self.fails_with(1002, frame(OP_TEXT, b"hello", rsv=4))


class Opcodes(Base):
    """Autobahn 4.x: reserved opcodes are 1002."""

    def test_4_1_reserved_data_opcodes(self):
        for op in range(3, 8):
            with self.subTest(op=op):
                self.fails_with(1002, frame(op, b"reserved"))

    def test_4_2_reserved_control_opcodes(self):
        for op in range(0xB, 0x10):
            with self.subTest(op=op):
                self.fails_with(1002, frame(op, b"reserved"))

    def test_4_3_reserved_opcode_after_a_good_message(self):
        c = self.conn()
        c.send_message(OP_TEXT, "good")
        c.send(frame(5, b""))
        c.expect_echo(OP_TEXT, "good")
        c.expect_close(1002)


class Fragmentation(Base):
    """Autobahn 5.x."""

    def test_5_1_fragmented_ping_is_1002(self):
        self.fails_with(1002, frame(OP_PING, b"frag", fin=False) + frame(OP_CONT, b"ment"))

    def test_5_2_fragmented_pong_is_1002(self):
        self.fails_with(1002, frame(OP_PONG, b"frag", fin=False) + frame(OP_CONT, b"ment"))

    def test_5_3_text_in_two_fragments(self):
        c = self.conn()
        c.send_message(OP_TEXT, "fragment1fragment2", fragments=2)
        c.expect_echo(OP_TEXT, "fragment1fragment2")

    def test_5_4_ping_between_fragments(self):
        c = self.conn()
        body = b"fragment1fragment2"
        if c.deflate:
            body = c.compress(body)
        half = len(body) // 2
        rsv = 4 if c.deflate else 0
        c.send(frame(OP_TEXT, body[:half], fin=False, rsv=rsv) + frame(OP_PING, b"ping")
               + frame(OP_CONT, body[half:]))
        self.assertEqual(c.read_message()[:2], (OP_PONG, b"ping"))
        c.expect_echo(OP_TEXT, "fragment1fragment2")

    def test_5_5_one_byte_fragments_with_pings(self):
        c = self.conn()
        msg = b"one byte at a time"
        body = c.compress(msg) if c.deflate else msg
        out = b""
        for i in range(len(body)):
            out += frame(OP_TEXT if i == 0 else OP_CONT, body[i:i + 1],
                         fin=i == len(body) - 1, rsv=4 if c.deflate and i == 0 else 0)
            out += frame(OP_PING, str(i))
        for i in range(0, len(out), 3):
            c.send(out[i:i + 3])
        # Each pong in order; the echo comes once the last fragment is in,
        # so before the last pong.
        got = [c.read_message()[:2] for _ in range(len(body) + 1)]
        self.assertEqual([g for g in got if g[0] == OP_PONG],
                         [(OP_PONG, str(i).encode()) for i in range(len(body))])
        self.assertEqual(got[-2], (OP_TEXT, msg))

    def test_5_6_continuation_without_a_message(self):
        for fin in (True, False):
            with self.subTest(fin=fin):
                self.fails_with(1002, frame(OP_CONT, b"orphan", fin=fin))

    def test_5_7_continuation_after_a_whole_message(self):
        c = self.conn()
        c.send_message(OP_TEXT, "whole")
        c.send(frame(OP_CONT, b"late"))
        c.expect_echo(OP_TEXT, "whole")
        c.expect_close(1002)

    def test_5_8_new_message_inside_a_fragmented_one(self):
        for op in (OP_TEXT, OP_BINARY):
            with self.subTest(op=op):
                self.fails_with(1002, frame(OP_TEXT, b"start", fin=False) + frame(op, b"x"))

    def test_5_9_empty_fragments(self):
        c = self.conn()
        c.send(frame(OP_TEXT, b"", fin=False) + frame(OP_CONT, b"", fin=False)
               + frame(OP_CONT, b""))
        c.expect_echo(OP_TEXT, b"")
        c.send_message(OP_BINARY, b"abc", fragments=5)
        c.expect_echo(OP_BINARY, b"abc")

    def test_5_10_many_fragments_large(self):
        c = self.conn()
        msg = os.urandom(150 * 1024)
        c.send_message(OP_BINARY, msg, fragments=97)
        c.expect_echo(OP_BINARY, msg)


# Invalid UTF-8 (RFC 3629), each with the offset of the first byte that makes
# it impossible; valid prefixes before it must not fail the connection.
INVALID_UTF8 = [
    (b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited", 12),  # surrogate
    (b"\xc0\xaf", 0),            # overlong '/'
    (b"\xe0\x80\xaf", 1),        # overlong 3-byte
    (b"\xf0\x80\x80\xaf", 1),    # overlong 4-byte
    (b"\xf4\x90\x80\x80", 1),    # above U+10FFFF
    (b"\xf5\x80\x80\x80", 0),    # F5 never
    (b"\xff", 0),
    (b"\xfe", 0),
    (b"\x80", 0),                # lone continuation
    (b"\xc2\x41", 1),            # lead without continuation
    (b"\xed\xbf\xbf", 1),        # U+DFFF
    (b"Hello-\xc2\xb5@\xc3\x9f\xc3\xb6\xc3\xa4\xc3\xbc\xc3\xa0\xc3\xa1-UTF-8!!\xf8", 29),
]

VALID_UTF8 = [
    "Hello-µ@ßöäüàá-UTF-8!!",
    "κόσμε",
    "\u0080\u07ff\u0800\uffff\U00010000\U0010ffff",
    "\ud7ff\ue000\ufffd",
]


class Utf8(Base):
    """Autobahn 6.x: text must be UTF-8, checked fail-fast."""

    def test_6_1_valid_text(self):
        c = self.conn()
        for s in VALID_UTF8:
            c.send_message(OP_TEXT, s)
            c.expect_echo(OP_TEXT, s)

    def test_6_2_valid_text_split_inside_code_points(self):
        # Every split position, including inside multi-byte sequences.
        c = self.conn()
        data = "\U0010ffff κόσμε €".encode()
        for cut in range(1, len(data)):
            with self.subTest(cut=cut):
                c.send(frame(OP_TEXT, data[:cut], fin=False) + frame(OP_CONT, data[cut:]))
                c.expect_echo(OP_TEXT, data)

    def test_6_3_invalid_text_whole(self):
        for data, _bad in INVALID_UTF8:
            with self.subTest(data=data):
                c = self.conn()
                c.send_message(OP_TEXT, data)
                c.expect_close(1007)

    def test_6_4_invalid_text_byte_per_fragment(self):
        for data, _bad in INVALID_UTF8:
            with self.subTest(data=data):
                c = self.conn()
                out = b""
                for i in range(len(data)):
                    out += frame(OP_TEXT if i == 0 else OP_CONT, data[i:i + 1],
                                 fin=i == len(data) - 1)
                c.send(out)
                c.expect_close(1007)

    def test_6_5_fail_fast_in_a_fragment(self):
        # The message's end is never sent: 1007 must come after the fragment
        # that holds the first impossible byte.
        for data, bad in INVALID_UTF8:
            with self.subTest(data=data):
                c = self.conn()
                c.send(frame(OP_TEXT, data[:bad + 1], fin=False))
                c.expect_close(1007)

    def test_6_6_fail_fast_inside_one_frame(self):
        # A single frame announces 1000 more bytes than are sent: the server
        # must fail on the bytes it has, without waiting for the frame's end.
        for data, bad in INVALID_UTF8:
            with self.subTest(data=data):
                c = self.conn()
                payload = data[:bad + 1]
                mask = os.urandom(4)
                full = frame(OP_TEXT, payload + b"a" * 1000, mask=mask)
                c.send(full[:len(full) - 1000])
                c.expect_close(1007)

    def test_6_7_fail_fast_across_a_split_code_point(self):
        # F4 starts a valid 4-byte sequence; 90 after it passes U+10FFFF.
        c = self.conn()
        c.send(frame(OP_TEXT, b"ok \xf4", fin=False) + frame(OP_CONT, b"\x90", fin=False))
        c.expect_close(1007)

    def test_6_8_truncated_code_point_at_message_end(self):
        c = self.conn()
        c.send_message(OP_TEXT, b"ends inside \xe2\x82")
        c.expect_close(1007)

    def test_6_9_binary_is_not_checked(self):
        c = self.conn()
        c.send_message(OP_BINARY, b"\xff\xfe\xc0\xaf")
        c.expect_echo(OP_BINARY, b"\xff\xfe\xc0\xaf")

    def test_6_10_compressed_invalid_text_fails_fast(self):
        if self.OFFER is None:
            self.skipTest("needs permessage-deflate")
        c = self.conn()
        body = c.compress(b"valid start \xff" + os.urandom(4000).hex().encode())
        c.send(frame(OP_TEXT, body[: len(body) // 2], fin=False, rsv=4))
        c.expect_close(1007)


VALID_CLOSE_CODES = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013,
                     1014, 3000, 3999, 4000, 4999]
INVALID_CLOSE_CODES = [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000,
                       65535]


class Closing(Base):
    """Autobahn 7.x."""

    def test_7_1_close_without_payload(self):
        c = self.conn()
        c.send(frame(OP_CLOSE))
        op, data, _ = c.read_message()
        self.assertEqual((op, data), (OP_CLOSE, b""))
        self.assertTrue(c.raw.at_eof(), "server did not close TCP after the handshake")

    def test_7_2_valid_codes_are_echoed(self):
        for code in VALID_CLOSE_CODES:
            with self.subTest(code=code):
                c = self.conn()
                c.send(frame(OP_CLOSE, struct.pack("!H", code) + b"bye"))
                c.expect_close(code)

    def test_7_3_invalid_codes_are_1002(self):
        for code in INVALID_CLOSE_CODES:
            with self.subTest(code=code):
                self.fails_with(1002, frame(OP_CLOSE, struct.pack("!H", code)))

    def test_7_4_one_byte_payload_is_1002(self):
        self.fails_with(1002, frame(OP_CLOSE, b"\x03"))

    def test_7_5_reason_of_123_bytes(self):
        c = self.conn()
        c.send(frame(OP_CLOSE, struct.pack("!H", 1000) + b"r" * 123))
        c.expect_close(1000)

    def test_7_5b_close_payload_of_126_bytes_is_1002(self):
        self.fails_with(1002, frame(OP_CLOSE, struct.pack("!H", 1000) + b"r" * 124))

    def test_7_5c_second_close_is_ignored(self):
        c = self.conn()
        c.send(frame(OP_CLOSE, struct.pack("!H", 1000)) + frame(OP_CLOSE, struct.pack("!H", 1001)))
        c.expect_close(1000)

    def test_7_6_invalid_utf8_reason_is_1007(self):
        self.fails_with(1007, frame(OP_CLOSE, struct.pack("!H", 1000) + b"\xce\xba\xed\xa0\x80"))

    def test_7_7_nothing_after_close_is_processed(self):
        c = self.conn()
        c.send(frame(OP_CLOSE, struct.pack("!H", 1000)) + frame(OP_TEXT, b"late")
               + frame(OP_PING, b"late"))
        op, data, _ = c.read_message()
        self.assertEqual((op, data[:2]), (OP_CLOSE, struct.pack("!H", 1000)))
        self.assertTrue(c.raw.at_eof())

    def test_7_8_close_during_a_fragmented_message(self):
        c = self.conn()
        c.send(frame(OP_TEXT, b"half", fin=False) + frame(OP_CLOSE, struct.pack("!H", 1000)))
        c.expect_close(1000)

    def test_7_9_server_closes_tcp_first(self):
        # The client never closes its socket: the server's FIN must arrive.
        c = self.conn()
        c.send(frame(OP_CLOSE, struct.pack("!H", 1000)))
        op, _data, _ = c.read_message()
        self.assertEqual(op, OP_CLOSE)
        c.raw.sock.settimeout(15)
        self.assertEqual(c.raw.sock.recv(1), b"", "want the server's FIN")

    def test_7_10_close_after_messages_in_flight(self):
        c = self.conn()
        for i in range(5):
            c.send_message(OP_TEXT, f"m{i}" * 50)
        c.send(frame(OP_CLOSE, struct.pack("!H", 1000)))
        for i in range(5):
            c.expect_echo(OP_TEXT, f"m{i}" * 50)
        c.expect_close(1000)


class Limits(Base):
    """Autobahn 9.x-style limits: max_message_size is 256 KiB here."""

    def test_9_1_frame_over_the_limit_is_1009_before_its_payload(self):
        # Only the header is sent: the server must not wait for the payload.
        c = self.conn()
        c.send(frame(OP_BINARY, b"", length=MAX_MESSAGE + 1))
        c.expect_close(1009)

    def test_9_2_fragments_over_the_limit(self):
        c = self.conn()
        half = MAX_MESSAGE // 2 + 1
        c.send(frame(OP_BINARY, b"a" * half, fin=False))
        c.send(frame(OP_CONT, b"", length=half))
        c.expect_close(1009)

    def test_9_3_exactly_the_limit(self):
        c = self.conn()
        msg = os.urandom(MAX_MESSAGE)
        c.send_message(OP_BINARY, msg, compress=False)
        c.expect_echo(OP_BINARY, msg)


class DeflateMixin:
    OFFER = "permessage-deflate; client_max_window_bits"
    PATH = "/z"


class DeflateFraming(DeflateMixin, Framing):
    pass


class DeflatePingPong(DeflateMixin, PingPong):
    pass


class DeflateReservedBits(DeflateMixin, ReservedBits):
    pass


class DeflateOpcodes(DeflateMixin, Opcodes):
    pass


class DeflateFragmentation(DeflateMixin, Fragmentation):
    pass


class DeflateUtf8(DeflateMixin, Utf8):
    pass


class DeflateClosing(DeflateMixin, Closing):
    pass


class DeflateLimits(DeflateMixin, Limits):
    pass


# Offer -> the response the server must give (None: declined).
NEGOTIATION = [
    ("permessage-deflate", "permessage-deflate"),
    ("permessage-deflate; client_max_window_bits", "permessage-deflate"),
    ("permessage-deflate; client_max_window_bits=10", "permessage-deflate"),
    ('permessage-deflate; client_max_window_bits="12"', "permessage-deflate"),
    ("permessage-deflate; server_no_context_takeover",
     "permessage-deflate; server_no_context_takeover"),
    ("permessage-deflate; client_no_context_takeover",
     "permessage-deflate; client_no_context_takeover"),
    ("permessage-deflate; server_max_window_bits=10",
     "permessage-deflate; server_max_window_bits=10"),
    ("permessage-deflate;server_max_window_bits=9;server_no_context_takeover",
     "permessage-deflate; server_no_context_takeover; server_max_window_bits=9"),
    ("PerMessage-Deflate", "permessage-deflate"),
    ("x-webkit-deflate-frame, permessage-deflate", "permessage-deflate"),
    ("permessage-deflate; server_max_window_bits=8", None),
    ("permessage-deflate; server_max_window_bits=8, permessage-deflate",
     "permessage-deflate"),
    ("permessage-deflate; unknown_param", None),
    ("permessage-deflate; unknown_param, permessage-deflate; client_no_context_takeover",
     "permessage-deflate; client_no_context_takeover"),
    ("permessage-deflate; server_no_context_takeover; server_no_context_takeover", None),
    ("permessage-deflate; server_max_window_bits", None),
    ("permessage-deflate; server_max_window_bits=16", None),
    ("permessage-deflate; server_max_window_bits=09", None),
    ("permessage-deflate; client_max_window_bits=7", None),
    ("permessage-deflate; client_no_context_takeover=1", None),
    ("permessage-deflate; server_max_window_bits=10; server_max_window_bits=11", None),
    ("permessage-deflate; =x", None),           # malformed: declined, still 101
    ("permessage-deflate; a=\"unterminated", None),
    ("x-other", None),
]


class DeflateNegotiation(Base):
    """RFC 7692 §5, §7.1: the response to each offer."""

    def test_10_1_offers(self):
        for offer, want in NEGOTIATION:
            with self.subTest(offer=offer):
                c = Conn(self.port, "/z", offer)
                try:
                    self.assertEqual(c.ext, want)
                    # The connection works either way.
                    c.send_message(OP_TEXT, "negotiated " * 20)
                    c.expect_echo(OP_TEXT, "negotiated " * 20)
                finally:
                    c.close()

    def test_10_2_offer_on_two_header_lines(self):
        c = RawClient(self.port)
        self.addCleanup(c.close)
        c.send(upgrade_request("/z", extra=[
            ("Sec-WebSocket-Extensions", "permessage-deflate; bogus"),
            ("Sec-WebSocket-Extensions", "permessage-deflate; server_no_context_takeover")]))
        resp = c.read_response()
        self.assertEqual(resp.status, 101)
        self.assertEqual(resp.header("Sec-WebSocket-Extensions"),
                         "permessage-deflate; server_no_context_takeover")

    def test_10_3_route_without_deflate_never_answers(self):
        c = Conn(self.port, "/echo", "permessage-deflate")
        self.addCleanup(c.close)
        self.assertIsNone(c.ext)
        # RSV1 is then a protocol error.
        c.send(frame(OP_TEXT, zlib.compress(b"x")[2:], rsv=4))
        c.expect_close(1002)


class Deflate(Base):
    """RFC 7692 §6-§8: compressed messages both ways."""
    OFFER = "permessage-deflate; client_max_window_bits"
    PATH = "/z"

    def test_12_1_context_takeover_both_ways(self):
        c = self.conn()
        self.assertFalse(c.server_nct)
        text = "The quick brown fox jumps over the lazy dog. " * 20
        wire = []
        for _ in range(10):
            body = c.compress(text.encode())
            wire.append(len(body))
            c.send(frame(OP_TEXT, body, rsv=4))
            # Read with one inflater for all: the server kept its context.
            self.assertTrue(c.expect_echo(OP_TEXT, text), "echo was not compressed")
        # Later messages refer back to earlier ones, so they are tiny; the
        # server could only read them by keeping its inflater's window.
        self.assertLess(wire[-1], wire[0] // 4)

    def test_12_2_server_no_context_takeover(self):
        c = self.conn("permessage-deflate; server_no_context_takeover")
        self.assertTrue(c.server_nct)
        for i in range(5):
            msg = f"same text every time {i % 2} " * 30
            c.send_message(OP_TEXT, msg)
            c.expect_echo(OP_TEXT, msg)  # read with a fresh inflater each time

    def test_12_3_client_no_context_takeover(self):
        c = self.conn("permessage-deflate; client_no_context_takeover")
        self.assertTrue(c.client_nct)
        for i in range(5):
            msg = os.urandom(50).hex() * 10
            c.send_message(OP_TEXT, msg)
            c.expect_echo(OP_TEXT, msg)

    def test_12_4_small_messages_go_out_uncompressed(self):
        c = self.conn()
        c.send_message(OP_TEXT, "x" * (THRESHOLD - 1))
        self.assertFalse(c.expect_echo(OP_TEXT, "x" * (THRESHOLD - 1)))
        c.send_message(OP_TEXT, "x" * THRESHOLD)
        self.assertTrue(c.expect_echo(OP_TEXT, "x" * THRESHOLD))

    def test_12_5_uncompressed_message_on_a_deflate_connection(self):
        c = self.conn()
        c.send_message(OP_BINARY, b"plain" * 100, compress=False)
        c.expect_echo(OP_BINARY, b"plain" * 100)
        c.send_message(OP_BINARY, b"zipped" * 100)
        c.expect_echo(OP_BINARY, b"zipped" * 100)

    def test_12_6_fragmented_compressed_message(self):
        c = self.conn()
        msg = os.urandom(20000) * 3
        c.send_message(OP_BINARY, msg, fragments=13)
        c.expect_echo(OP_BINARY, msg)

    def test_12_7_server_window_bits_9(self):
        # Distances over 512 bytes would break an inflater with a 9-bit window.
        c = self.conn("permessage-deflate; server_max_window_bits=9")
        self.assertEqual(c.server_bits, 9)
        block = os.urandom(3000)
        msg = block * 20
        c.send_message(OP_BINARY, msg)
        c.expect_echo(OP_BINARY, msg)

    def test_12_8_client_small_window(self):
        c = self.conn("permessage-deflate; client_max_window_bits=9", window=9)
        msg = (os.urandom(300) * 10) * 5
        c.send_message(OP_BINARY, msg)
        c.expect_echo(OP_BINARY, msg)

    def test_12_9_empty_compressed_message(self):
        c = self.conn()
        c.send(frame(OP_TEXT, b"\x00", rsv=4))
        c.expect_echo(OP_TEXT, b"")
        c.send(frame(OP_BINARY, b"", rsv=4))  # no bytes at all: also empty
        c.expect_echo(OP_BINARY, b"")

    def test_12_10_bfinal_block(self):
        # RFC 7692 §7.2.3.4: a sender may end each message's stream with BFINAL.
        c = self.conn()
        for i in range(3):
            msg = f"final block {i} ".encode() * 40
            z = zlib.compressobj(6, zlib.DEFLATED, -15)
            body = z.compress(msg) + z.flush(zlib.Z_FINISH)
            c.send(frame(OP_TEXT, body, rsv=4))
            c.expect_echo(OP_TEXT, msg)

    def test_12_11_decompression_bomb_is_1009(self):
        c = self.conn()
        z = zlib.compressobj(9, zlib.DEFLATED, -15)
        body = z.compress(b"\0" * (64 * 1024 * 1024)) + z.flush(zlib.Z_SYNC_FLUSH)
        body = body[:-4]
        self.assertLess(len(body), MAX_MESSAGE)
        c.send(frame(OP_BINARY, body, rsv=4))
        c.expect_close(1009)

    def test_12_12_inflated_just_over_the_limit(self):
        c = self.conn()
        c.send_message(OP_BINARY, b"\0" * (MAX_MESSAGE + 1))
        c.expect_close(1009)
        c = self.conn()
        c.send_message(OP_BINARY, b"\1" * MAX_MESSAGE)
        c.expect_echo(OP_BINARY, b"\1" * MAX_MESSAGE)

    def test_12_13_invalid_deflate_data_is_1007(self):
        c = self.conn()
        c.send(frame(OP_BINARY, b"\xff\xff\xff\xff garbage", rsv=4))
        c.expect_close(1007)

    def test_12_15_compressed_frame_over_the_wire_limit(self):
        # A compressed frame longer than max_message_size plus the stored
        # blocks' overhead cannot inflate to an acceptable message: 1009 on
        # the header alone.
        c = self.conn()
        c.send(frame(OP_BINARY, b"", rsv=4, length=MAX_MESSAGE + MAX_MESSAGE // 512))
        c.expect_close(1009)

    def test_12_16_closing_log_line(self):
        # Each connection's last line: its code, counts, deflate and the
        # slow-reader counters the tests and operators read.
        c = self.conn()
        for _ in range(3):
            c.send_message(OP_TEXT, "counted " * 20)
            c.expect_echo(OP_TEXT, "counted " * 20)
        c.send(frame(OP_CLOSE, struct.pack("!H", 4321)))
        c.expect_close(4321)
        self.gw.wait_for_log(r"ws_closed code=4321 route=deflate conn=\d+ msgs_in=3 msgs_out=3 "
                             r"deflate=on slow_reader_drops=0 route_slow_reader_drops=0 "
                             r"route_slow_reader_closes=0")

    def test_12_14_incompressible_message_at_the_limit(self):
        c = self.conn()
        msg = os.urandom(MAX_MESSAGE)
        c.send_message(OP_BINARY, msg)  # compressed form is a little larger
        c.expect_echo(OP_BINARY, msg)


KEEPALIVE_CONFIG = """\
listeners:
  - address: 127.0.0.1:0
workers: 1
limits: { idle_timeout: 1500ms }
routes:
  - { name: ka, path: /echo, handler: echo, ping_interval: 200ms }
"""


class Keepalive(GatewayTestCase):
    """ping_interval and idle_timeout: silence (no frame at all) closes."""
    CONFIG = KEEPALIVE_CONFIG

    def test_pongs_keep_the_connection_open(self):
        c = Conn(self.port, "/echo")
        self.addCleanup(c.close)
        pings = 0
        deadline = time.monotonic() + 4.5  # three idle timeouts
        while time.monotonic() < deadline:
            op, data, _ = c.read_message()
            self.assertEqual(op, OP_PING, "only pings come while we are silent")
            pings += 1
            c.send(frame(OP_PONG, data))
        self.assertGreater(pings, 2)
        c.send_message(OP_TEXT, "still open")
        while True:
            op, data, _ = c.read_message()
            if op != OP_PING:
                break
        self.assertEqual((op, data), (OP_TEXT, b"still open"))

    def test_silent_peer_is_closed_with_1001(self):
        c = Conn(self.port, "/echo")
        self.addCleanup(c.close)
        pings = 0
        while True:
            op, data, _ = c.read_message()
            if op == OP_CLOSE:
                break
            self.assertEqual(op, OP_PING)
            pings += 1
        self.assertEqual(data, struct.pack("!H", 1001) + b"idle timeout")
        self.assertGreater(pings, 0)
        c.send(frame(OP_CLOSE, struct.pack("!H", 1001)))
        self.assertTrue(c.raw.at_eof())
        self.gw.wait_for_log(r"ws_idle timeout_ms=1500 route=ka")


if __name__ == "__main__":
    unittest.main()
