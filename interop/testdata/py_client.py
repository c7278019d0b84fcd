#!/usr/bin/env python3
"""A WebSocket client on Python's websockets library, for wsactor's interop
test (python_test.go): it connects to the echo server at the URL given as
its argument (with --deflate: expecting permessage-deflate to be
accepted), echoes text and binary messages of several sizes, pings and
waits for the pong, and closes with 4001 "py-done".

It prints one JSON object per line, one per check:
    {"check": NAME, "ok": true|false, ...details}
and exits 0 when every check passed, 1 otherwise.

It uses the asyncio client, websockets.connect, which every version since
Debian bookworm's 10.4 has (websockets.sync arrived only in 11.0).
"""

import asyncio
import json
import sys

import websockets

SIZES = [0, 1, 125, 126, 65536, 1 << 20]
CLOSE_CODE = 4001
CLOSE_REASON = "py-done"
TIMEOUT = 20  # seconds: turns a hang into a failure, never waited for


def report(check, ok, **details):
    print(json.dumps({"check": check, "ok": ok, **details}), flush=True)
    return ok


def text_payload(n, seed):
    """n characters of printable ASCII (so n bytes) that vary with the offset."""
    return "".join(chr(32 + (i * 7 + seed) % 95) for i in range(n))


def binary_payload(n, seed):
    """n bytes covering every byte value, varying with the offset."""
    return bytes((i * 31 + (i >> 8) + seed) & 0xFF for i in range(n))


async def echo(ws, check, msg):
    await ws.send(msg)
    got = await asyncio.wait_for(ws.recv(), TIMEOUT)
    if type(got) is not type(msg):
        return report(check, False, error="echo has type %s, sent %s" % (type(got).__name__, type(msg).__name__))
    if got != msg:
        return report(check, False, error="echo differs", sent=len(msg), received=len(got))
    return report(check, True, size=len(msg.encode() if isinstance(msg, str) else msg))


async def run(url, deflate):
    ok = report("version", True, websockets=websockets.__version__, python=sys.version.split()[0])
    # max_size=None: the 1 MiB echo is at the default limit of 1 MiB.
    # The client offers permessage-deflate, as it does by default; a
    # server configured without compression must decline it, one with
    # compression (--deflate) accept it.
    async with websockets.connect(url, max_size=None, close_timeout=TIMEOUT) as ws:
        exts = getattr(ws, "extensions", None)
        if exts is None:  # the asyncio implementation of websockets 14 and later
            exts = ws.protocol.extensions
        names = [e.name for e in exts]
        want = ["permessage-deflate"] if deflate else []
        ok &= report("handshake", names == want, extensions=names, want=want)
        for size in SIZES:
            ok &= await echo(ws, "echo-text-%dB" % size, text_payload(size, size))
        ok &= await echo(ws, "echo-text-utf8", "héllo wörld ✓ 😀 " * 1000)
        for size in SIZES:
            ok &= await echo(ws, "echo-binary-%dB" % size, binary_payload(size, size))

        pong = await ws.ping(b"py-ping")
        await asyncio.wait_for(pong, TIMEOUT)
        ok &= report("ping", True, payload="py-ping")

        await ws.close(code=CLOSE_CODE, reason=CLOSE_REASON)
        # close_code and close_reason are the server's close frame's.
        ok &= report(
            "close",
            ws.close_code == CLOSE_CODE,
            sent_code=CLOSE_CODE,
            sent_reason=CLOSE_REASON,
            code=ws.close_code,
            reason=ws.close_reason,
        )
    return ok


def main():
    args = sys.argv[1:]
    deflate = "--deflate" in args
    args = [a for a in args if a != "--deflate"]
    if len(args) != 1:
        print("usage: py_client.py [--deflate] ws://host:port/path", file=sys.stderr)
        return 2
    try:
        ok = asyncio.run(asyncio.wait_for(run(args[0], deflate), 2 * TIMEOUT))
    except Exception as e:  # report any failure as a check, then fail
        report("fatal", False, error="%s: %s" % (type(e).__name__, e))
        return 1
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
