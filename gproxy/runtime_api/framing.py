"""HAProxy 2.6's CLI framing on the stats socket, sans-IO: bytes in, commands
and answer bytes out. No socket, no clock: the gevent server (server.py)
feeds what it reads and writes what this returns.

Theory of operation
-------------------
The client sends lines. A line ends at `\\n` or at an unescaped `;` (a
backslash escapes the next byte, `\\;` is a literal semicolon), a trailing
`\\r` is dropped. Each line is one command; `next_event()` returns it as a
`Command` (its words, already split and unescaped as HAProxy does, and an
optional payload). The caller runs it and passes the output to `reply()`,
which returns the bytes to send: the output, then an empty line (`\\n`), or
`\\n> ` in interactive mode.

* Non-interactive (default): after an answer, if nothing more is buffered
  the connection closes (`CLOSE`). Several lines sent in one write are all
  answered; a line sent after the close is lost, as with HAProxy. Unlike
  HAProxy, the rest of a line cut by `;` is always waited for, even if it
  arrives in a later segment (HAProxy would close if it was not there yet).
* `prompt` toggles interactive mode: the connection stays open and `> `
  follows each answer. `quit` closes at once, printing nothing.
* A line ending with `<<` starts a payload: the following lines, up to an
  empty line, are handed to the command (interactive mode prompts `+ `).
* A request longer than `max_request` bytes without its end, or an EOF in
  the middle of a line, closes the connection without running anything.

`CliFramer` is an explicit state machine (`_Mode`) behind `next_event()`;
`reply()` out of turn raises `IllegalTransition`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from gproxy.errors import IllegalTransition

MAX_REQUEST = 16384  # HAProxy's tune.bufsize: a longer line (or payload) closes the connection
MAX_ARGS = 64  # HAProxy's MAX_CLI_ARGS: further words are ignored
PAYLOAD_MARK = "<<"
PROMPT = "> "
PAYLOAD_PROMPT = "+ "
ENCODING = "latin-1"  # bytes map 1:1 to str, so nothing is ever lost or rejected


@dataclass(frozen=True)
class Command:
    """One command to run. `words` are unescaped (empty for an empty line);
    `payload` is the text after a `<<` line, lines joined by `\\n`."""

    words: tuple[str, ...]
    payload: str | None = None
    line: str = ""  # the raw line, for logs


class _Sentinel:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


NEED_DATA = _Sentinel("NEED_DATA")  # feed more bytes with receive_data()
CLOSE = _Sentinel("CLOSE")  # close the connection (after sending what was returned)


class _Mode(Enum):
    READING = "reading a command line"
    PAYLOAD = "gathering a payload"
    RUNNING = "waiting for the caller's reply"
    CLOSED = "closed"


def split_words(line: str) -> list[str]:
    """HAProxy's cli_parse_request word splitting: words separated by spaces
    and tabs; a backslash escapes the next character (`\\\\` is a backslash)."""
    words: list[str] = []
    i, end = 0, len(line)
    while i < end and len(words) < MAX_ARGS:
        while i < end and line[i] in " \t":
            i += 1
        if i >= end:
            break
        word: list[str] = []
        while i < end and line[i] not in " \t":
            char = line[i]
            if char == "\\":
                i += 1
                if i < end:
                    word.append(line[i])
                i += 1
                continue
            word.append(char)
            i += 1
        words.append("".join(word))
    return words


class CliFramer:
    """One CLI connection's framing state."""

    def __init__(self, max_request: int = MAX_REQUEST) -> None:
        self.max_request = max_request
        self.prompt = False
        self._buffer = bytearray()
        self._eof = False
        self._mode = _Mode.READING
        self._payload_head: str | None = None
        self._payload_lines: list[str] = []
        self._payload_size = 0
        self._answered = False  # a reply was sent since the last line was taken
        self._mid_line = False  # the last command ended at a `;`: the rest of its line is still due

    # -- input

    def receive_data(self, data: bytes) -> None:
        """Buffer bytes from the client; b"" means the client closed its side."""
        if not data:
            self._eof = True
        else:
            self._buffer += data

    @property
    def closed(self) -> bool:
        return self._mode is _Mode.CLOSED

    # -- events

    def next_event(self) -> "Command | bytes | _Sentinel":
        """The next thing to do: a `Command` to run (then call `reply()`),
        bytes to send (a prompt), `NEED_DATA` or `CLOSE`."""
        if self._mode is _Mode.CLOSED:
            return CLOSE
        if self._mode is _Mode.RUNNING:
            raise IllegalTransition("next_event() called before reply() for the running command")
        if self._answered:
            self._answered = False
            # HAProxy closes a non-interactive connection once an answer is
            # out and nothing more was received (pipelined lines still run).
            if not self.prompt and self._mode is _Mode.READING and not self._buffer and not self._mid_line:
                return self._close()
        line = self._take_line()
        if line is None:
            if self._eof or len(self._buffer) >= self.max_request:
                return self._close()
            return NEED_DATA
        if self._mode is _Mode.PAYLOAD:
            return self._payload_line(line)
        if line.endswith(PAYLOAD_MARK):
            self._mode = _Mode.PAYLOAD
            self._payload_head = line
            self._payload_lines = []
            self._payload_size = len(line)
            return self._prompt_after_line()
        return self._command(line, None)

    def reply(self, output: str) -> bytes:
        """The bytes answering the running command: its output, then the
        end-of-answer mark (an empty line, or the interactive prompt)."""
        if self._mode is not _Mode.RUNNING:
            raise IllegalTransition(f"reply() called while {self._mode.value}")
        self._mode = _Mode.READING
        self._answered = True
        end = "\n" + PROMPT if self.prompt else "\n"
        return (output + end).encode(ENCODING, "replace")

    def toggle_prompt(self) -> bytes:
        """Run `prompt` (the running command): toggle interactive mode."""
        self.prompt = not self.prompt
        return self.reply("")

    def quit(self) -> "_Sentinel":
        """Run `quit` (the running command): close without printing."""
        if self._mode is not _Mode.RUNNING:
            raise IllegalTransition(f"quit() called while {self._mode.value}")
        return self._close()

    # -- internals

    def _close(self) -> "_Sentinel":
        self._mode = _Mode.CLOSED
        self._buffer.clear()
        return CLOSE

    def _command(self, line: str, payload: str | None) -> Command:
        self._mode = _Mode.RUNNING
        words = split_words(line)
        if payload is not None:
            if words and words[-1] == PAYLOAD_MARK:
                words.pop()
            else:
                # `cmd<<` (no space): HAProxy reads the payload as more words.
                words += split_words(payload.replace("\n", " "))
                payload = None
        return Command(tuple(words[:MAX_ARGS]), payload, line)

    def _payload_line(self, line: str) -> "Command | bytes":
        if line:
            self._payload_lines.append(line)
            self._payload_size += len(line) + 1
            if self._payload_size > self.max_request:
                return self._close()
            return self._prompt_after_line()
        head, self._payload_head = self._payload_head or "", None
        payload = "\n".join(self._payload_lines)
        self._payload_lines = []
        return self._command(head, payload)

    def _prompt_after_line(self) -> bytes:
        # Interactive mode shows "+ " while a payload is being typed; the
        # non-interactive mode prints nothing until the payload ends.
        return PAYLOAD_PROMPT.encode() if self.prompt else b""

    def _take_line(self) -> str | None:
        """Cut the next line off the buffer: up to `\\n`, or an unescaped `;`
        outside payloads. None if no complete line is buffered."""
        buf = self._buffer
        limit = min(len(buf), self.max_request)
        i = 0
        in_payload = self._mode is _Mode.PAYLOAD
        while i < limit:
            byte = buf[i]
            if byte == 0x5C and not in_payload:  # backslash: skip the escaped byte
                i += 2
                continue
            if byte == 0x0A or (byte == 0x3B and not in_payload):
                self._mid_line = byte == 0x3B
                raw = bytes(buf[:i])
                del buf[:i + 1]
                if raw.endswith(b"\r"):
                    raw = raw[:-1]
                return raw.decode(ENCODING)
            i += 1
        return None
