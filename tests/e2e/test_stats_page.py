"""The statistics page and the metrics on a real gproxy in front of real
backends: authentication, the page, `;csv` against `show stat`, the
Prometheus text parsed by Prometheus' own parser, the admin form, the
access log, and Debian's chromium loading the page, drawing it and pressing
a drain button.

Chromium is driven two ways. Its plain command line (`--dump-dom`,
`--screenshot`) loads the page with the credentials in the URL, as an
administrator's browser would. To press a button, the test speaks the
DevTools protocol over `--remote-debugging-pipe` (JSON messages separated
by NUL bytes on file descriptors 3 and 4): no websocket library, no TCP port,
and each step waits for the browser's own events (load finished) instead of
sleeping.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gproxy.runtime_api.client import send
from harness import REPO, free_port, http_get, http_request, wait_for

WAIT = 10.0  # seconds a condition may take (never a speed assertion)
BROWSER_TIMEOUT = 60.0  # a cold chromium start on a busy CI machine
URI = "/gproxy?stats"
USER, PASSWORD = "admin", "secret"
AUTH = {"Authorization": "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()}
FIRST_FD = 100  # pipe ends are moved above this before the shell puts them on 3 and 4
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--window-size=1280,900"]


class Site:
    """gproxy with the page and the metrics on its listen, two backends, an admin socket."""

    def __init__(self, proxy, port: int, socket_path: Path, backends):
        self.proxy = proxy
        self.port = port
        self.socket_path = socket_path
        self.backends = backends

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{URI}"

    def cli(self, line: str) -> str:
        return send(str(self.socket_path), line).decode("latin-1")

    def status(self, server: str) -> str:
        lines = self.cli("show stat").splitlines()
        names = lines[0][2:].split(",")
        for line in lines[1:]:
            row = dict(zip(names, line.split(",")))
            if row["pxname"] == "app" and row["svname"] == server:
                return row["status"]
        raise KeyError(server)


@pytest.fixture
def site(start_backend, start_gproxy, tmp_path, syslog):
    a, b = start_backend("a"), start_backend("b")
    port = free_port()
    socket_path = tmp_path / "admin.sock"
    config = {
        "global": {"maxconn": 200, "stats_socket": {"path": str(socket_path), "level": "admin"},
                   "log": [{"target": syslog.target}]},
        "defaults": {"mode": "http", "log": "global", "httplog": True,
                     "timeout": {"connect": "1s", "client": "5s", "server": "5s"}},
        "listen": {"app": {
            "bind": [f"127.0.0.1:{port}"],
            "stats": {"uri": URI, "auth": [f"{USER}:{PASSWORD}"], "admin": True, "refresh": "5s"},
            "prometheus": {"uri": "/metrics"},
            "httpchk": True,
            "server": [{"name": s.name, "address": s.address, "check": True, "inter": "200ms"} for s in (a, b)],
        }},
    }
    proxy = start_gproxy(config, [port])
    result = Site(proxy, port, socket_path, {"a": a, "b": b})
    wait_for(lambda: socket_path.exists(), "the stats socket")
    wait_for(lambda: result.status("a") == "UP" and result.status("b") == "UP", "both servers UP")
    return result


# ---- HTTP -------------------------------------------------------------------------------------------------

def test_401_without_credentials_then_the_page(site, syslog) -> None:
    status, headers, body = http_get(site.port, URI)
    assert status == 401 and headers["www-authenticate"] == ['Basic realm="gproxy Statistics"']
    status, _, _ = http_get(site.port, URI, headers={"Authorization": "Basic " + base64.b64encode(b"admin:x").decode()})
    assert status == 401
    status, headers, body = http_get(site.port, URI, headers=AUTH)
    assert status == 200 and headers["refresh"] == ["5"] and headers["cache-control"] == ["no-cache"]
    page = body.decode()
    assert "<title>Statistics Report for gproxy</title>" in page
    assert '<tr class="active_up" id="app/a">' in page and '<tr class="active_up" id="app/b">' in page
    assert "L7OK/200" in page
    line = syslog.wait_for(r"app app/<STATS> .* 200 .* LR-- ")
    assert f'"GET {URI} HTTP/1.1"' in line


def test_csv_is_the_show_stat_csv(site) -> None:
    status, headers, body = http_get(site.port, URI + ";csv;norefresh", headers=AUTH)
    assert status == 200 and headers["content-type"] == ["text/plain; charset=utf-8"]
    page_lines = body.decode().splitlines()
    cli_lines = site.cli("show stat").splitlines()
    assert page_lines[0] == cli_lines[0]  # the same header, field for field
    keys = [line.split(",")[:2] for line in page_lines[1:]]
    assert keys == [line.split(",")[:2] for line in cli_lines[1:] if line]
    assert keys == [["app", "FRONTEND"], ["app", "a"], ["app", "b"], ["app", "BACKEND"]]
    status_col = page_lines[0][2:].split(",").index("status")
    assert [line.split(",")[status_col] for line in page_lines[1:]] == ["OPEN", "UP", "UP", "UP"]


def test_metrics_parse_with_prometheus_parser(site) -> None:
    for _ in range(4):
        assert http_get(site.port, "/")[0] == 200
    status, headers, body = http_get(site.port, "/metrics")
    assert status == 200 and headers["content-type"] == ["text/plain; version=0.0.4"]
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    assert len(families) > 100
    up = {(s.labels["server"], s.labels["state"]): s.value for s in families["gproxy_server_status"].samples}
    assert up[("a", "UP")] == 1 and up[("b", "UP")] == 1 and up[("a", "DOWN")] == 0
    checks = {(s.labels["server"], s.labels["state"]): s.value
              for s in families["gproxy_server_check_status"].samples}
    assert checks[("a", "L7OK")] == 1
    totals = {s.labels["server"]: s.value for s in families["gproxy_server_sessions"].samples}
    assert totals["a"] + totals["b"] >= 4
    responses = {(s.labels.get("code")): s.value for s in families["gproxy_backend_http_responses"].samples}
    assert responses["2xx"] >= 4
    backend = {s.labels["state"]: s.value for s in families["gproxy_backend_status"].samples}
    assert backend == {"UP": 1.0, "DOWN": 0.0}


def test_admin_form_drains_a_server(site) -> None:
    form = b"b=app&s=b&action=drain"
    status, headers, _ = http_request(site.port, "POST", URI, headers={
        **AUTH, "Content-Type": "application/x-www-form-urlencoded"}, body=form)
    assert status == 303 and headers["location"] == [URI + ";st=DONE"]
    assert site.status("b") == "DRAIN"
    page = http_get(site.port, URI + ";st=DONE", headers=AUTH)[2].decode()
    assert '<tr class="active_draining" id="app/b">' in page and "Action processed successfully." in page
    served = [http_get(site.port, "/")[2].decode().strip() for _ in range(6)]
    assert served == ["hello from a"] * 6  # a drained server takes no new client
    unauthenticated = http_request(site.port, "POST", URI, body=b"b=app&s=a&action=maint")
    assert unauthenticated[0] == 401 and site.status("a") == "UP"
    http_request(site.port, "POST", URI, headers=AUTH, body=b"b=app&s=b&action=ready")
    assert site.status("b") == "UP"


# ---- a real browser -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def chromium() -> str:
    """Debian's chromium; installed by scripts/install-debian-deps.sh (as `make test` does) when missing."""
    binary = shutil.which("chromium")
    if binary is None and os.geteuid() == 0:
        subprocess.run(["bash", str(REPO / "scripts" / "install-debian-deps.sh")], check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=1200)
        binary = shutil.which("chromium")
    if binary is None:
        reason = "not root" if os.geteuid() != 0 else "scripts/install-debian-deps.sh could not install it"
        pytest.skip(f"Debian's chromium is absent and cannot be installed here ({reason})")
    return binary


def run_chromium(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                          timeout=BROWSER_TIMEOUT)


class DevTools:
    """Chromium driven over `--remote-debugging-pipe`: the browser reads
    NUL-terminated JSON commands on fd 3 and writes answers and events on fd 4."""

    def __init__(self, binary: str, profile: Path, log_path: Path):
        to_browser_r, to_browser_w = os.pipe()
        from_browser_r, from_browser_w = os.pipe()
        # Move the browser's ends out of the way of 3 and 4 first, so that
        # the shell's redirections cannot overwrite one with the other.
        command_fd = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD_CLOEXEC, FIRST_FD)
        answer_fd = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD_CLOEXEC, FIRST_FD)
        for fd in (to_browser_r, from_browser_w):
            os.close(fd)
        script = f'exec 3<&{command_fd} 4>&{answer_fd} {command_fd}<&- {answer_fd}>&-; exec "$@"'
        self.log = open(log_path, "wb")
        try:
            self.proc = subprocess.Popen(
                ["bash", "-c", script, "chromium", binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                 "--remote-debugging-pipe", "about:blank"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.log,
                pass_fds=(command_fd, answer_fd))
        finally:
            os.close(command_fd)
            os.close(answer_fd)
        self.commands, self.answers = to_browser_w, from_browser_r
        self.pending = b""
        self.backlog: list[dict] = []
        self.last_id = 0
        self.session: str | None = None

    def call(self, method: str, params: dict | None = None, page: bool = True) -> dict:
        self.last_id += 1
        message = {"id": self.last_id, "method": method, "params": params or {}}
        if page and self.session:
            message["sessionId"] = self.session
        os.write(self.commands, json.dumps(message).encode() + b"\0")
        answer = self.wait(lambda m, wanted=self.last_id: m.get("id") == wanted)
        if "error" in answer:
            raise AssertionError(f"{method}: {answer['error']}")
        return answer.get("result", {})

    def wait(self, matches, timeout: float = BROWSER_TIMEOUT) -> dict:
        """The first message (answer or event) for which `matches` is true."""
        for index, message in enumerate(self.backlog):
            if matches(message):
                return self.backlog.pop(index)
        deadline = time.monotonic() + timeout
        while True:
            while b"\0" in self.pending:
                raw, _, self.pending = self.pending.partition(b"\0")
                message = json.loads(raw)
                if matches(message):
                    return message
                self.backlog.append(message)
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("chromium did not answer in time")
            readable, _, _ = select.select([self.answers], [], [], left)
            if readable:
                data = os.read(self.answers, 1 << 20)
                if not data:
                    raise AssertionError("chromium closed its DevTools pipe")
                self.pending += data

    def open_page(self, headers: dict[str, str]) -> None:
        target = self.call("Target.createTarget", {"url": "about:blank"}, page=False)["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True},
                                 page=False)["sessionId"]
        self.call("Page.enable")
        self.call("Network.enable")
        self.call("Network.setExtraHTTPHeaders", {"headers": headers})

    def loaded(self) -> None:
        self.wait(lambda m: m.get("method") == "Page.loadEventFired" and m.get("sessionId") == self.session)

    def navigate(self, url: str) -> None:
        self.call("Page.navigate", {"url": url})
        self.loaded()

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, path: Path) -> None:
        path.write_bytes(base64.b64decode(self.call("Page.captureScreenshot", {"format": "png"})["data"]))

    def close(self) -> None:
        try:
            self.call("Browser.close", page=False)
        except (AssertionError, OSError):
            pass
        try:
            self.proc.wait(WAIT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(WAIT)
        for fd in (self.commands, self.answers):
            os.close(fd)
        self.log.close()


def test_chromium_draws_the_page(site, chromium, tmp_path) -> None:
    url = f"http://{USER}:{PASSWORD}@127.0.0.1:{site.port}{URI}"
    dom = run_chromium(chromium, tmp_path / "profile-dom", "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    text = dom.stdout.decode()
    assert '<tr class="active_up" id="app/a">' in text and '<tr class="active_up" id="app/b">' in text
    assert '<tr class="frontend">' in text and '<tr class="backend">' in text
    assert 'name="action"' in text and "Statistics Report for gproxy" in text
    shot = tmp_path / "stats.png"
    result = run_chromium(chromium, tmp_path / "profile-shot", f"--screenshot={shot}", url)
    assert result.returncode == 0, result.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000


def test_chromium_presses_drain(site, chromium, tmp_path) -> None:
    browser = DevTools(chromium, tmp_path / "profile-cdp", tmp_path / "chromium.log")
    try:
        browser.open_page(AUTH)
        browser.navigate(site.url + ";norefresh")
        assert browser.evaluate("document.getElementById('app/b').className") == "active_up"
        rows = browser.evaluate("Array.from(document.querySelectorAll('tr[id]')).map(r => r.id + ' ' + r.className)")
        assert rows == ["app/a active_up", "app/b active_up"]
        browser.screenshot(tmp_path / "before-drain.png")
        # What an administrator does: tick b, choose "Set state to DRAIN", press Apply.
        browser.evaluate("""(() => {
            const box = document.querySelector('input[name=s][value="b"]');
            box.click();
            const form = box.form;
            const select = form.querySelector('select[name=action]');
            select.value = 'drain';
            select.dispatchEvent(new Event('change'));
            form.querySelector('input[type=submit]').click();
        })()""")
        browser.loaded()  # the 303 answer's page
        assert browser.evaluate("location.href") == site.url + ";norefresh;st=DONE"
        assert browser.evaluate("document.getElementById('app/b').className") == "active_draining"
        assert browser.evaluate("document.getElementById('app/a').className") == "active_up"
        assert "Action processed successfully." in browser.evaluate(
            "document.getElementById('action-status').textContent")
        cells = browser.evaluate("Array.from(document.getElementById('app/b').cells).map(c => c.textContent)")
        assert any(cell.endswith("DRAIN") for cell in cells), cells
        browser.screenshot(tmp_path / "after-drain.png")
    finally:
        browser.close()
    assert site.status("b") == "DRAIN"
    assert (tmp_path / "after-drain.png").read_bytes()[:4] == b"\x89PNG"
