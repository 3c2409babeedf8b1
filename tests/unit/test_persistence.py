"""Cookie persistence rules, HAProxy's semantics (reference/haproxy.md 2.8)."""

from gproxy.config.model import CookieConfig
from gproxy.persistence import insert_cookie_value, parse_request_cookies, rewrite_set_cookie

NAME = b"JSESSIONID"


def test_prefix_request_routes_and_strips_prefix():
    conf = CookieConfig(name="JSESSIONID", mode="prefix")
    found = parse_request_cookies(conf, NAME, [b"JSESSIONID=s3~abc; foo=1"])
    assert found.server_cookie == b"s3"
    assert found.rewritten == [b"JSESSIONID=abc; foo=1"]


def test_prefix_request_without_tilde_is_passed_unchanged():
    conf = CookieConfig(name="JSESSIONID", mode="prefix")
    found = parse_request_cookies(conf, NAME, [b"foo=1; JSESSIONID=abc"])
    assert found.server_cookie is None
    assert found.rewritten is None


def test_prefix_cookie_in_second_header_only_that_header_rewritten():
    conf = CookieConfig(name="JSESSIONID", mode="prefix")
    found = parse_request_cookies(conf, NAME, [b"a=1", b"JSESSIONID=s1~z"])
    assert found.server_cookie == b"s1"
    assert found.rewritten == [b"a=1", b"JSESSIONID=z"]


def test_similar_cookie_name_is_not_ours():
    conf = CookieConfig(name="JSESSIONID", mode="prefix")
    found = parse_request_cookies(conf, NAME, [b"XJSESSIONID=s1~z"])
    assert found.server_cookie is None


def test_insert_indirect_removes_cookie_and_empty_header():
    conf = CookieConfig(name="SRV", mode="insert", indirect=True)
    found = parse_request_cookies(conf, b"SRV", [b"SRV=b; other=1"])
    assert found.server_cookie == b"b"
    assert found.rewritten == [b"other=1"]
    found = parse_request_cookies(conf, b"SRV", [b"SRV=b"])
    assert found.rewritten == []


def test_insert_direct_and_rewrite_forward_unchanged():
    for mode in ("insert", "rewrite"):
        conf = CookieConfig(name="SRV", mode=mode)
        found = parse_request_cookies(conf, b"SRV", [b"SRV=a"])
        assert found.server_cookie == b"a"
        assert found.rewritten is None


def test_prefix_response_rewrite():
    conf = CookieConfig(name="JSESSIONID", mode="prefix")
    assert rewrite_set_cookie(conf, NAME, b"JSESSIONID=abc; Path=/", b"s3") == b"JSESSIONID=s3~abc; Path=/"
    assert rewrite_set_cookie(conf, NAME, b"JSESSIONID=abc", b"s3") == b"JSESSIONID=s3~abc"
    assert rewrite_set_cookie(conf, NAME, b"other=1; Path=/", b"s3") is None


def test_rewrite_mode_replaces_value():
    conf = CookieConfig(name="JSESSIONID", mode="rewrite")
    assert rewrite_set_cookie(conf, NAME, b"JSESSIONID=abc; Path=/", b"a") == b"JSESSIONID=a; Path=/"


def test_insert_value_attributes_and_expired_for_cookieless_server():
    conf = CookieConfig(name="SRV", mode="insert", httponly=True, secure=True, domain=("example.org",))
    assert insert_cookie_value(conf, b"SRV", b"a") == b"SRV=a; path=/; domain=example.org; HttpOnly; Secure"
    assert insert_cookie_value(conf, b"SRV", None).startswith(b"SRV=; Expires=Thu, 01-Jan-1970")
