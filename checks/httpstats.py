"""Fetch the stats page's CSV over HTTP(S), as `check_gproxy -U URL` does.

HAProxy (and gproxy) print the same CSV as `show stat` when `;csv` is
appended to the stats URI. urllib is imported here only, so socket-based
runs do not pay for it.
"""

from __future__ import annotations

import base64

MAX_PAGE_BYTES = 16 * 1024 * 1024
CSV_SUFFIX = ";csv"


class StatsPageError(Exception):
    """The stats page could not be read; the message names the URL and the reason."""


def csv_url(url: str) -> str:
    """The URL with `;csv` appended unless it already asks for CSV."""
    return url if CSV_SUFFIX in url else url + CSV_SUFFIX


def fetch_csv(url: str, auth: str | None, timeout: float) -> str:
    """GET the CSV; `auth` is `user:password` for HTTP basic authentication."""
    import urllib.error
    import urllib.request

    target = csv_url(url)
    request = urllib.request.Request(target, headers={"User-Agent": "check_gproxy"})
    if auth:
        token = base64.b64encode(auth.encode("utf-8")).decode("ascii")
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (the admin's URL)
            body: bytes = response.read(MAX_PAGE_BYTES + 1)
    except urllib.error.HTTPError as exc:
        hint = " (check -a user:password)" if exc.code == 401 else ""
        raise StatsPageError(f"stats page {target}: HTTP {exc.code} {exc.reason}{hint}") from None
    except urllib.error.URLError as exc:
        raise StatsPageError(f"stats page {target}: {exc.reason}") from None
    except (OSError, ValueError) as exc:  # timeouts, resets, a malformed URL
        raise StatsPageError(f"stats page {target}: {exc or type(exc).__name__}") from None
    if len(body) > MAX_PAGE_BYTES:
        raise StatsPageError(f"stats page {target}: larger than {MAX_PAGE_BYTES} bytes")
    return body.decode("utf-8", "replace")
