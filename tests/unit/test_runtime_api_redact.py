"""Credentials masked in captured requests (show errors)."""

from gproxy.runtime_api.redact import mask_credentials


def test_authorization_value_masked_byte_for_byte():
    data = b"GET / HTTP/1.1\r\nHost: x\r\nAuthorization: Basic YWRtaW46cw==\r\nBad\x01: y\r\n\r\n"
    masked = mask_credentials(data)
    assert len(masked) == len(data)
    assert b"YWRtaW46cw==" not in masked
    assert b"Authorization: " + b"*" * len(b"Basic YWRtaW46cw==") + b"\r\n" in masked
    assert masked.replace(b"*", b"") == data.replace(b"Basic YWRtaW46cw==", b"")


def test_proxy_authorization_any_case_and_blanks_and_bare_lf():
    data = b"GET / HTTP/1.1\nPROXY-AUTHORIZATION :\tsecret\nX-Authorization: keep\n"
    masked = mask_credentials(data)
    assert b"secret" not in masked
    assert b"X-Authorization: keep" in masked  # another header's name containing the word


def test_first_line_and_other_headers_untouched():
    data = b"Authorization: a\r\nCookie: Authorization: b\r\n"
    masked = mask_credentials(data)
    assert masked.startswith(b"Authorization: *\r\n")
    assert b"Cookie: Authorization: b" in masked


def test_no_credentials_no_change():
    data = b"GET /\x00 HTTP/1.1\r\nHost: x\r\n"
    assert mask_credentials(data) == data
