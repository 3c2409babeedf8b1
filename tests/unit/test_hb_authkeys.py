"""The authkeys file (heartbeat/authkeys.py): format, permissions, rotation."""

from __future__ import annotations

import doctest
import os

import pytest

import heartbeat.authkeys
from heartbeat.authkeys import AuthKeys, load_authkeys, parse_authkeys
from heartbeat.errors import ConfigError
from heartbeat.protocol import Message, decode, encode


def write(tmp_path, text: str, mode: int = 0o600) -> str:
    path = tmp_path / "authkey"
    path.write_text(text)
    os.chmod(path, mode)
    return str(path)


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_authkeys(text, "k")
    return info.value.lines()


def test_the_module_docstring_examples_hold():
    assert doctest.testmod(heartbeat.authkeys).failed == 0


def test_a_full_file_with_comments_and_rotation(tmp_path):
    path = write(tmp_path, "# cluster keys\n\nauth 2   # sign with the new key\n"
                           "1 sha256 old#secret\n  2 SHA256 new-secret # rotated in May\n")
    keys = load_authkeys(path)
    assert keys.sign_id == 2 and keys.sign_key == b"new-secret"
    assert keys.keys == {1: b"old#secret", 2: b"new-secret"}  # '#' inside a secret is kept


def test_without_auth_the_first_key_signs():
    assert parse_authkeys("3 sha256 c\n1 sha256 a\n").sign_id == 3


def test_secrets_do_not_show_in_repr():
    assert "hunter2" not in repr(parse_authkeys("1 sha256 hunter2"))


def test_rotation_sign_with_2_accept_1_and_2():
    old_node = parse_authkeys("auth 1\n1 sha256 old\n")
    mid = parse_authkeys("auth 1\n1 sha256 old\n2 sha256 new\n")
    new_node = parse_authkeys("auth 2\n1 sha256 old\n2 sha256 new\n")
    message = Message("hb", "n1", "c", 1, 1, {})
    from_old = encode(message, old_node.sign_id, old_node.sign_key)
    from_new = encode(message, new_node.sign_id, new_node.sign_key)
    assert from_old[4] == 1 and from_new[4] == 2
    for datagram in (from_old, from_new):
        assert decode(datagram, new_node.keys) == message
        assert decode(datagram, mid.keys) == message


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620, 0o602, 0o660, 0o601])
def test_group_or_other_access_is_refused(tmp_path, mode):
    path = write(tmp_path, "1 sha256 s\n", mode)
    with pytest.raises(ConfigError) as info:
        load_authkeys(path)
    (line,) = info.value.lines()
    assert f"mode {mode:04o}" in line and "0600" in line and path in line


@pytest.mark.parametrize("mode", [0o600, 0o400, 0o700])
def test_owner_only_modes_are_accepted(tmp_path, mode):
    assert load_authkeys(write(tmp_path, "1 sha256 s\n", mode)).keys == {1: b"s"}


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_authkeys(str(tmp_path / "nope"))
    assert "no such file" in str(info.value)


def test_a_directory_is_not_a_key_file(tmp_path):
    os.chmod(tmp_path, 0o700)
    with pytest.raises(ConfigError, match="not a regular file"):
        load_authkeys(str(tmp_path))


def test_binary_garbage(tmp_path):
    path = tmp_path / "authkey"
    path.write_bytes(b"1 sha256 \xff\xfe\n")
    os.chmod(path, 0o600)
    with pytest.raises(ConfigError, match="UTF-8"):
        load_authkeys(str(path))


def test_no_key():
    assert problems("# only comments\nauth 1\n") == ["k: no key: add a line 'N sha256 SECRET'"]
    assert problems("") == ["k: no key: add a line 'N sha256 SECRET'"]
    assert problems("# just a comment\n\n") == ["k: no key: add a line 'N sha256 SECRET'"]


def test_auth_naming_an_undeclared_key():
    assert problems("auth 3\n1 sha256 a\n2 sha256 b\n") == [
        "k:1: 'auth 3' names a key that is not declared (declared: 1, 2)"]


@pytest.mark.parametrize("method", ["sha1", "md5", "crc"])
def test_heartbeats_other_methods_are_refused_clearly(method):
    (line,) = problems(f"1 {method} secret\n")
    assert line == f"k:1: key 1: method '{method}' is not supported, only HMAC-SHA256 ('1 sha256 SECRET')"


def test_every_bad_line_is_reported_once_with_its_number():
    lines = problems("auth x\n16 sha256 a\n1 sha256\n1 sha256 a b\n2 sha256 ok\n2 sha256 again\nauth 2\nauth 2\n"
                     "-1 sha256 a\nfoo\n")
    assert [line.split(":")[1] for line in lines] == ["1", "2", "3", "4", "6", "8", "9", "10"]
    assert "expected 'auth N'" in lines[0]
    assert "'16'" in lines[1]  # ids stop at 15
    assert "expected one secret" in lines[3]
    assert "declared twice" in lines[4]
    assert "second 'auth' line (the first is line 7)" in lines[5]


def test_a_missing_method_is_named():
    assert problems("1\n") == ["k:1: key 1: method 'none' is not supported, only HMAC-SHA256 ('1 sha256 SECRET')"]


def test_authkeys_value_checks_its_signing_key():
    with pytest.raises(ValueError):
        AuthKeys(2, {1: b"a"})
