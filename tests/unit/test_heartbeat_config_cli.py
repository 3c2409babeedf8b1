"""`heartbeat check FILE` and the CLI skeleton: exit 0 with one summary line
on a valid file (warnings about the key file do not fail it), exit 1 with
every `path: reason` on an invalid one, never a traceback."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from heartbeat import cli
from heartbeat.cli import EXIT_OK, EXIT_USER_ERROR, build_parser, commands_of, main, socket_path

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT.parent / "shared" / "spec" / "esup-cluster.toml"
CONFIGS = Path(__file__).resolve().parent / "heartbeat_configs"


def spec_text() -> str:
    if SPEC.exists():
        return SPEC.read_text()
    # The docs carry the same example (test_heartbeat_config_docs checks they agree).
    from heartbeat.config.docs import render_markdown
    return render_markdown().split("```toml\n", 1)[1].split("```", 1)[0]


@pytest.fixture
def seed(tmp_path: Path) -> Path:
    """The seed's cluster with its key file in tmp_path (mode 0600)."""
    key = tmp_path / "authkey"
    key.write_text("1 sha256 0123456789abcdef\n")
    key.chmod(0o600)
    path = tmp_path / "esup-cluster.toml"
    path.write_text(spec_text().replace("/etc/heartbeat/authkey", str(key)))
    return path


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "heartbeat", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=60)


# --- the real command, as a process ------------------------------------------------------------


def test_check_valid_file(seed: Path) -> None:
    result = run("check", str(seed))
    assert result.returncode == 0, result.stderr
    assert result.stdout == (f"{seed}: configuration is valid "
                             '(cluster "esup-proxy": 2 nodes, 3 resources, 1 group, 1 constraint)\n')
    assert result.stderr == ""


def test_check_warns_about_the_key_file_but_succeeds(seed: Path) -> None:
    (seed.parent / "authkey").chmod(0o644)
    result = run("check", str(seed))
    assert result.returncode == 0
    assert result.stderr == (f'warning: cluster.auth_key_file: "{seed.parent / "authkey"}" is open to group or '
                             "others (mode 0644): use mode 0600, as Heartbeat requires for its keys\n")
    assert "configuration is valid" in result.stdout


def test_check_invalid_file_prints_every_problem() -> None:
    result = run("check", str(CONFIGS / "several_mistakes.toml"))
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 5
    assert lines[0] == 'cluster.keepalve: unknown key (did you mean "keepalive"?)'
    assert lines[-1] == 'constraint[0].node: no node named "esup-proxy1" (did you mean "esup-proxy-1"?)'
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("name, expected", [
    ("bad_syntax.toml", "invalid TOML: "),
    ("no-such-file.toml", "cannot read the file: No such file or directory"),
])
def test_check_unreadable_file(name: str, expected: str) -> None:
    path = CONFIGS / name
    result = run("check", str(path))
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith(f"{path}: ") and expected in line
    assert "Traceback" not in result.stderr


def test_usage_errors_exit_1_without_traceback() -> None:
    for args in ((), ("check",), ("frobnicate",), ("check", "a", "b")):
        result = run(*args)
        assert result.returncode == 1, args
        assert result.stderr.startswith("usage: heartbeat"), args
        assert "Traceback" not in result.stderr


def test_help_and_version() -> None:
    result = run("--help")
    assert result.returncode == 0 and "check" in result.stdout
    result = run("--version")
    assert result.returncode == 0 and result.stdout.startswith("heartbeat ")


# --- main() in process -------------------------------------------------------------------------


def test_main_quiet(seed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "-q", str(seed)]) == EXIT_OK
    assert capsys.readouterr().out == ""


def test_main_returns_instead_of_exiting(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == EXIT_USER_ERROR
    assert main(["--help"]) == EXIT_OK
    capsys.readouterr()


def test_commands_can_be_added(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def register(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
        parser = commands.add_parser("hello", help="say hello")
        parser.add_argument("name")
        cli.add_socket_options(parser)
        parser.set_defaults(handler=lambda args: print(f"hello {args.name} via {socket_path(args)}") or 3)

    monkeypatch.setattr(cli, "COMMANDS", [*cli.COMMANDS, register])
    assert main(["hello", "world", "-s", "/tmp/x.sock"]) == 3
    assert capsys.readouterr().out == "hello world via /tmp/x.sock\n"
    assert "hello" in commands_of(build_parser()).choices


def test_handler_errors_are_one_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from heartbeat.errors import HeartbeatError

    def fail(args: argparse.Namespace) -> int:
        raise HeartbeatError("cannot connect to /run/heartbeat/status.sock: No such file or directory")

    def register(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
        commands.add_parser("boom").set_defaults(handler=fail)

    monkeypatch.setattr(cli, "COMMANDS", [*cli.COMMANDS, register])
    assert main(["boom"]) == EXIT_USER_ERROR
    assert capsys.readouterr().err == "heartbeat: cannot connect to /run/heartbeat/status.sock: No such file or directory\n"


def test_socket_path(seed: Path) -> None:
    parser = argparse.ArgumentParser()
    cli.add_socket_options(parser)
    assert socket_path(parser.parse_args([])) == "/run/heartbeat/status.sock"
    assert socket_path(parser.parse_args(["-s", "/x.sock"])) == "/x.sock"
    assert socket_path(parser.parse_args(["-c", str(seed)])) == "/run/heartbeat/status.sock"
    with pytest.raises(SystemExit):
        parser.parse_args(["-s", "a", "-c", "b"])
