"""Fuzz target for the HTTP request parser (atheris, or a plain random loop).

    python tests/fuzz/fuzz_request_parser.py -max_total_time=60   # atheris (libFuzzer flags)
    python tests/fuzz/fuzz_request_parser.py --plain 60            # no atheris: random inputs

The input's first byte chooses where the rest is cut into pieces (so split
heads, split chunk lines and split CRLFs are reached); the parser is fed the
pieces then EOF. Anything but ProtocolError, an unbounded event count, or a
verdict that differs from feeding the same bytes whole is a finding.
`make fuzz` runs this for a bounded time; tests/unit/test_fuzz_target.py runs
the plain loop briefly as part of the unit tests.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from gproxy.errors import ProtocolError  # noqa: E402
from gproxy.protocol.http import NEED_DATA, ConnectionClosed, Data, RequestHead, RequestParser  # noqa: E402

EVENTS_PER_BYTE = 2  # a parser may not yield more events than this per byte fed (plus slack)
EVENTS_SLACK = 8
SEEDS = [
    b"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello",
    b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\nT: v\r\n\r\n",
    b"GET http://h/ HTTP/1.0\r\nHost: h\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
]


def _events(pieces: list[bytes]) -> tuple[list, int | None]:
    parser = RequestParser()
    budget = EVENTS_PER_BYTE * sum(map(len, pieces)) + EVENTS_SLACK
    out: list = []
    try:
        for piece in pieces + [b""]:
            parser.receive_data(piece)
            while (event := parser.next_event()) is not NEED_DATA:
                budget -= 1
                if budget < 0:
                    raise AssertionError("parser yields events without consuming bytes")
                if isinstance(event, RequestHead):
                    out.append(event.raw)
                elif isinstance(event, Data):
                    if out and isinstance(out[-1], bytearray):
                        out[-1] += event.data
                    else:
                        out.append(bytearray(event.data))
                else:
                    out.append(event)
                    if event is ConnectionClosed:
                        return out, None
    except ProtocolError as exc:
        return out, exc.status
    return out, None


def one_input(data: bytes) -> None:
    """The fuzz entry point: raises only on a finding."""
    if not data:
        return
    step = data[0] % 17 + 1
    body = data[1:]
    pieces = [body[i : i + step] for i in range(0, len(body), step)]
    whole = _events([body] if body else [])
    split = _events(pieces)
    if whole != split:
        raise AssertionError(f"verdict depends on the split: {whole!r} != {split!r}")


def _mutate(rng: random.Random, data: bytes) -> bytes:
    data = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(4)
        pos = rng.randint(0, len(data))
        if op == 0 and data:
            del data[pos : pos + rng.randint(1, 4)]
        elif op == 1:
            data[pos:pos] = rng.choice([b"\r", b"\n", b"\x00", b" ", b":", b";", b"0", b"\r\n", bytes([rng.randrange(256)])])
        elif op == 2:
            data[pos:pos] = rng.choice(SEEDS)[: rng.randint(0, 40)]
        elif data:
            data[min(pos, len(data) - 1)] = rng.randrange(256)
    return bytes(data)


def plain_loop(seconds: float, seed: int = 0, max_runs: int | None = None) -> int:
    """Random mutations of the seeds for `seconds` (or `max_runs`); returns runs done."""
    rng = random.Random(seed)
    deadline = time.monotonic() + seconds
    runs = 0
    while time.monotonic() < deadline and (max_runs is None or runs < max_runs):
        one_input(bytes([rng.randrange(256)]) + _mutate(rng, rng.choice(SEEDS)))
        runs += 1
    return runs


def main() -> None:
    if sys.argv[1:2] == ["--plain"]:
        seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 60.0
        print(f"plain random loop: {plain_loop(seconds)} inputs, no finding")
        return
    try:
        import atheris
    except ImportError:
        seconds = next((float(a.split("=", 1)[1]) for a in sys.argv if a.startswith("-max_total_time=")), 60.0)
        print("atheris is not installed: falling back to the plain random loop")
        print(f"plain random loop: {plain_loop(seconds)} inputs, no finding")
        return
    # Coverage feedback: instrument the codec's bytecode (already imported).
    atheris.instrument_all()
    args = list(sys.argv)
    corpus = [a for a in args[1:] if not a.startswith("-")]
    for directory in corpus[:1]:  # seed an empty corpus directory with valid requests
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        if not any(path.iterdir()):
            for i, seed in enumerate(SEEDS):
                (path / f"seed{i}").write_bytes(b"\x01" + seed)
    atheris.Setup(args, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
