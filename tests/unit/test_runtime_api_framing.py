"""CLI framing (sans-IO): lines, `;`, escapes, prompt mode, payloads, limits."""

from __future__ import annotations

import random

import pytest

from gproxy.errors import IllegalTransition
from gproxy.runtime_api.framing import CLOSE, MAX_ARGS, NEED_DATA, CliFramer, Command, split_words
from runtime_api_support import converse, golden_compare, golden_state, substitute_ports


def _commands(data: bytes) -> list[Command | bytes]:
    """Every event for `data`, answering each command with its first word."""
    framer = CliFramer()
    framer.receive_data(data)
    events = []
    while True:
        event = framer.next_event()
        if event in (CLOSE, NEED_DATA):
            events.append(event)
            return events
        events.append(event)
        if isinstance(event, Command):
            framer.reply(event.words[0] if event.words else "")


def test_one_line_is_one_command_then_close():
    framer = CliFramer()
    framer.receive_data(b"show stat\n")
    event = framer.next_event()
    assert event == Command(("show", "stat"), None, "show stat")
    assert framer.reply("out\n") == b"out\n\n"
    assert framer.next_event() is CLOSE
    assert framer.closed


def test_semicolons_split_commands_and_backslash_escapes_them():
    events = _commands(b"get weight a/b;get weight a/c\\;d; show  info\n")
    assert [e.words for e in events if isinstance(e, Command)] == [
        ("get", "weight", "a/b"), ("get", "weight", "a/c;d"), ("show", "info")]
    assert events[-1] is CLOSE


def test_crlf_and_blanks():
    events = _commands(b"  show \t cli   level \r\n")
    assert events[0].words == ("show", "cli", "level")


def test_split_words_unescapes_like_haproxy():
    assert split_words(r"a\ b c\\d e\;f") == ["a b", "c\\d", "e;f"]
    assert split_words("  \t ") == []
    assert len(split_words(" ".join(["w"] * (MAX_ARGS + 10)))) == MAX_ARGS


def test_pipelined_lines_all_run_before_close():
    events = _commands(b"show info\nshow stat\n")
    assert [e.words[1] for e in events if isinstance(e, Command)] == ["info", "stat"]


def test_a_line_arriving_after_the_answer_is_too_late():
    framer = CliFramer()
    framer.receive_data(b"show info\n")
    framer.next_event()
    framer.reply("x\n")
    assert framer.next_event() is CLOSE  # nothing else was buffered: non-interactive mode ends
    framer.receive_data(b"show stat\n")
    assert framer.next_event() is CLOSE


def test_incomplete_line_then_eof_runs_nothing():
    framer = CliFramer()
    framer.receive_data(b"show stat")
    assert framer.next_event() is NEED_DATA
    framer.receive_data(b"")
    assert framer.next_event() is CLOSE


def test_escaped_newline_does_not_end_the_line():
    framer = CliFramer()
    framer.receive_data(b"show stat\\\n")
    assert framer.next_event() is NEED_DATA


def test_a_request_longer_than_the_limit_closes():
    framer = CliFramer(max_request=64)
    framer.receive_data(b"x" * 63)
    assert framer.next_event() is NEED_DATA
    framer.receive_data(b"x" * 10)
    assert framer.next_event() is CLOSE


def test_one_mebibyte_without_newline_is_refused_early():
    framer = CliFramer()
    for _ in range(2):
        framer.receive_data(b"a" * 16384)
    assert framer.next_event() is CLOSE


def test_reply_out_of_turn_is_illegal():
    framer = CliFramer()
    with pytest.raises(IllegalTransition):
        framer.reply("x")
    framer.receive_data(b"show info\n")
    framer.next_event()
    with pytest.raises(IllegalTransition):
        framer.next_event()


def test_prompt_mode_keeps_the_connection_and_prints_the_prompt():
    framer = CliFramer()
    framer.receive_data(b"prompt\nshow info\n")
    assert framer.next_event().words == ("prompt",)
    assert framer.toggle_prompt() == b"\n> "
    assert framer.next_event().words == ("show", "info")
    assert framer.reply("x\n") == b"x\n\n> "
    assert framer.next_event() is NEED_DATA  # interactive: wait for more
    framer.receive_data(b"prompt\n")
    framer.next_event()
    assert framer.toggle_prompt() == b"\n"
    assert framer.next_event() is CLOSE


def test_payload_lines_are_gathered_until_an_empty_line():
    framer = CliFramer()
    framer.receive_data(b"add map m <<\nk1 v1\nk2 v2\n\n")
    assert framer.next_event() == b""  # nothing printed while the payload comes, non-interactive
    assert framer.next_event() == b""
    assert framer.next_event() == b""
    command = framer.next_event()
    assert command.words == ("add", "map", "m") and command.payload == "k1 v1\nk2 v2"
    framer.reply("")
    assert framer.next_event() is CLOSE


def test_payload_prompts_plus_in_interactive_mode():
    framer = CliFramer()
    framer.prompt = True
    framer.receive_data(b"cmd <<\nline\n")
    assert framer.next_event() == b"+ "
    assert framer.next_event() == b"+ "
    assert framer.next_event() is NEED_DATA


def test_payload_semicolons_are_data():
    framer = CliFramer()
    framer.receive_data(b"cmd <<\na;b\n\n")
    framer.next_event()
    framer.next_event()
    assert framer.next_event().payload == "a;b"


def test_eof_inside_a_payload_runs_nothing():
    framer = CliFramer()
    framer.receive_data(b"cmd <<\nline\n")
    framer.receive_data(b"")
    events = [framer.next_event() for _ in range(3)]
    assert events[-1] is CLOSE and not any(isinstance(e, Command) for e in events)


@pytest.mark.parametrize("seed", range(20))
def test_interactive_input_in_random_chunks_gives_the_same_answer(seed):
    state = golden_state()
    data = b"prompt\nget weight app/web1\nshow cli level; get weight #2/#2\nbogus\nquit\n"
    whole, closed = converse(state, data)
    rng = random.Random(seed)
    chunks = [rng.randint(1, 7) for _ in range(len(data))]
    assert converse(state, data, chunks=chunks) == (whole, closed)
    assert closed and whole.startswith(b"\n> 10 (initial 10)\n\n> admin\n\n> 20 (initial 20)\n\n> Unknown")


@pytest.mark.parametrize("seed", range(10))
def test_one_line_in_random_chunks_gives_the_same_answer(seed):
    state = golden_state()
    data = b"get weight app/web1;show cli level\r\n"
    rng = random.Random(seed)
    chunks = [rng.randint(1, 5) for _ in range(len(data))]
    assert converse(state, data, chunks=chunks) == converse(state, data)


FRAMING_STEPS = [
    "two commands with ;", "two lines in one write", "crlf", "spaces and tabs", "escaped semicolon",
    "incomplete line then EOF", "prompt", "prompt two commands", "prompt toggled off", "prompt quit", "quit",
    "payload in prompt mode", "payload", "lower to user", "lower to operator", "operator from user",
]


@pytest.mark.parametrize("name", FRAMING_STEPS)
def test_framing_bytes_match_haproxy(name):
    step = golden_compare.steps_by_name()[name]
    state = golden_state()
    data = substitute_ports(step["send"]).encode("latin-1")
    answer, closed = converse(state, data, level=step["socket"], eof=step["read"] == "shut")
    marker = "<EOF>" if closed else "<TIMEOUT>"
    assert answer.decode("latin-1") + marker == step["answer"]
