"""The master <-> worker channels, sans-IO.

Two channels join the master to each worker it forks:

* a pipe the worker writes to (`beats`): one `READY` byte once its listeners
  accept, then a `BEAT` byte every `HEARTBEAT_INTERVAL` seconds. The master
  reads it in its select loop: silence means a hung worker, end-of-file a
  dead one.
* a socket pair (`control`) on which the master asks runtime-API commands
  (the worker answers at admin level): the master reads `show servers
  state` before replacing a worker. A request is one line; an answer is its
  length in decimal, a newline, then that many bytes, so answers may hold
  anything (the stats socket's own framing ends at an empty line, which an
  answer could contain).

Nothing here touches a socket or a clock.
"""

from __future__ import annotations

READY = b"R"
BEAT = b"."
HEARTBEAT_INTERVAL = 1.0  # seconds between two beats of a worker
MAX_REQUEST = 16384  # bytes of one request line (the stats socket's limit)
MAX_ANSWER = 64 * 1024 * 1024  # a longer announced answer is a broken channel
ENCODING = "latin-1"  # the runtime API's: bytes map 1:1 to text


class ChannelError(Exception):
    """The peer broke the framing: the channel must be closed."""


def encode_request(command: str) -> bytes:
    if "\n" in command or len(command) >= MAX_REQUEST:
        raise ValueError("a control request is one line shorter than MAX_REQUEST")
    return command.encode(ENCODING) + b"\n"


def encode_answer(text: str) -> bytes:
    data = text.encode(ENCODING, "replace")
    return b"%d\n" % len(data) + data


class RequestReader:
    """The worker's side: bytes in, request lines out."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[str]:
        """Buffer `data`; return the complete lines it finished."""
        self._buffer += data
        lines: list[str] = []
        while True:
            end = self._buffer.find(b"\n")
            if end < 0:
                break
            lines.append(self._buffer[:end].decode(ENCODING).rstrip("\r"))
            del self._buffer[:end + 1]
        if len(self._buffer) >= MAX_REQUEST:
            raise ChannelError(f"request line longer than {MAX_REQUEST} bytes")
        return lines


class AnswerReader:
    """The master's side: bytes in, one answer out (None until complete)."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._length: int | None = None

    def feed(self, data: bytes) -> str | None:
        self._buffer += data
        if self._length is None:
            end = self._buffer.find(b"\n")
            if end < 0:
                if len(self._buffer) > 20:
                    raise ChannelError("answer length line too long")
                return None
            text = bytes(self._buffer[:end])
            if not text.isdigit() or int(text) > MAX_ANSWER:
                raise ChannelError(f"bad answer length {text[:20]!r}")
            self._length = int(text)
            del self._buffer[:end + 1]
        if len(self._buffer) < self._length:
            return None
        if len(self._buffer) > self._length:
            raise ChannelError("more bytes than the announced answer")
        return self._buffer.decode(ENCODING)


def read_beats(data: bytes) -> tuple[bool, int]:
    """(a READY byte is in `data`, how many beats) for one read of the pipe."""
    return READY in data, data.count(BEAT)
