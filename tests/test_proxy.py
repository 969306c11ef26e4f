"""The token proxy forwards a few calls with the caller's token and nothing else, and never leaks the token.

The fake upstream checks every request the proxy forwards, and every answer it gives, against
Replicate's published schema (tests/replicate_contract.py); it answers errors (401/404/422/5xx) and
redirects on demand, so the error paths a wrong token takes are exercised.
"""

from __future__ import annotations

import http.client
import json
import logging
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import sam2enc.web.proxy as proxy_module
from sam2enc.web.proxy import Proxy, serve
from tests import replicate_contract as contract

pytestmark = pytest.mark.server

TOKEN = "r8_secret_token_do_not_leak_42"


def prediction(pid: str) -> dict:
    return {
        "id": pid,
        "model": "me/sam2enc",
        "version": "v",
        "input": {},
        "output": None,
        "data_removed": False,
        "error": None,
        "status": "starting",
        "created_at": "2026-11-25T00:00:00Z",
        "urls": {
            "web": f"https://replicate.com/p/{pid}",
            "get": f"https://api.replicate.com/v1/predictions/{pid}",
            "cancel": f"https://api.replicate.com/v1/predictions/{pid}/cancel",
        },
    }


class Upstream:
    """A fake Replicate API that records what reaches it and checks it against the schema.

    ``/slow`` paths never answer in time, ``/redirect`` paths send the caller to ``redirect_to``,
    ``fail`` = (status, problem) answers the next API call with that error, ``/delivery/`` serves
    output files (``/delivery/token/`` ones only with ``Authorization: Bearer TOKEN``, like
    replicate.delivery when it wants the token), ``big`` makes every answer that many bytes long,
    ``hold`` holds a create's answer that many seconds (a sync-mode create)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict]] = []
        self.violations: list[str] = []
        self.redirect_to = ""
        self.fail: tuple[int, dict] | None = None
        self.big = 0
        self.hold = 0.0
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status: int, body: bytes, kind: str, check: bool = True, **headers: str) -> None:
                if check and contract.operation(self.command, self.path):
                    upstream.violations += contract.check_response(
                        self.command, self.path, status, kind, body
                    )
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def _answer(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                upstream.requests.append((self.command, self.path, dict(self.headers)))
                if self.path.startswith("/delivery/"):
                    return self._delivery()
                upstream.violations += contract.check_request(self.command, self.path, self.headers, body)
                if "slow" in self.path:
                    time.sleep(1.5)
                if self.path == "/v1/predictions" and self.command == "POST":
                    time.sleep(upstream.hold)
                if "redirect" in self.path:  # off the schema on purpose: the proxy must not follow it
                    return self._send(302, b"", "text/plain", check=False, Location=upstream.redirect_to)
                if upstream.fail is not None:
                    (status, problem), upstream.fail = upstream.fail, None
                    return self._send(status, json.dumps(problem).encode(), "application/problem+json")
                path = self.path.removeprefix("/v1")
                if path.startswith("/models/"):
                    answer = {"owner": "me", "name": "sam2enc", "latest_version": {"id": "v"}}
                elif path == "/files":
                    answer = {
                        "id": "f",
                        "urls": {"get": "https://api.replicate.com/v1/files/f"},
                        "content_type": "image/jpeg",
                        "size": 4,
                        "checksums": {"sha256": "0" * 64},
                        "metadata": {},
                        "created_at": "2026-11-25T00:00:00Z",
                        "expires_at": "2026-11-26T00:00:00Z",
                    }
                else:
                    answer = prediction(path.split("/")[2] if path.count("/") > 1 else "abc")
                answer["path"] = self.path
                status = 201 if self.command == "POST" and not path.endswith("/cancel") else 200
                payload = json.dumps(answer).encode()
                if upstream.big:
                    payload = json.dumps({**answer, "logs": "x" * upstream.big}).encode()
                self._send(status, payload, "application/json")

            def _delivery(self):
                if "/token/" in self.path and self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    body = json.dumps({"detail": "this file needs your API token", "status": 401})
                    return self._send(401, body.encode(), "application/problem+json")
                if "redirect" in self.path:
                    return self._send(302, b"", "text/plain", Location=upstream.redirect_to)
                self._send(200, b"file:" + self.path.encode(), "application/octet-stream")

            do_GET = do_POST = _answer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def upstream():
    up = Upstream()
    yield up
    up.server.shutdown()


@pytest.fixture(autouse=True)
def requests_follow_the_schema(request):
    """Every request the proxy forwarded in a test, and every fake answer, must fit Replicate's schema."""
    yield
    if "upstream" in request.fixturenames:
        up = request.getfixturevalue("upstream")
        found, up.violations[:], up.fail, up.big, up.hold = list(up.violations), [], None, 0, 0.0
        assert found == []


@pytest.fixture(scope="module")
def proxy_server(upstream, models_dir):
    server = serve("127.0.0.1", 0, f"{upstream.url}/v1", models_dir)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


@pytest.fixture(scope="module")
def proxy(proxy_server):
    return f"http://127.0.0.1:{proxy_server.server_address[1]}"


def call(url: str, method: str = "GET", body: bytes | None = None, token: str | None = TOKEN):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(url, body, headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def test_the_pages_probe_is_answered_here_with_200_and_reaches_nothing(proxy, upstream):
    """GET /api/: the page's same-origin probe; a 200 (a 403 was a console error on every page load)."""
    before = len(upstream.requests)
    status, _, body = call(f"{proxy}/api/")
    assert (status, json.loads(body)) == (200, {"source": "proxy", "proxy": "sam2enc"})
    assert len(upstream.requests) == before


def test_token_reaches_upstream_unchanged_and_is_never_echoed_or_logged(proxy, upstream, caplog):
    with caplog.at_level(logging.INFO, logger="sam2enc.web"):
        status, headers, body = call(f"{proxy}/api/predictions", "POST", b'{"version": "v", "input": {}}')
        status_get, headers_get, body_get = call(f"{proxy}/api/predictions/abc")
    assert (status, status_get) == (201, 200)
    forwarded = [r for r in upstream.requests if r[1] in ("/v1/predictions", "/v1/predictions/abc")]
    assert [r[0] for r in forwarded] == ["POST", "GET"]
    assert all(r[2]["Authorization"] == f"Bearer {TOKEN}" for r in forwarded)
    for text in (body, body_get, json.dumps(headers).encode(), json.dumps(headers_get).encode()):
        assert TOKEN.encode() not in text
    assert caplog.records and TOKEN not in caplog.text


@pytest.mark.parametrize(
    "method, path, status",
    [
        ("GET", "/api/predictions", 404),
        ("DELETE", "/api/predictions/abc", 405),
        ("PUT", "/api/predictions", 405),
        ("GET", "/api/predictions/abc/cancel", 404),
        ("DELETE", "/api/predictions/abc/cancel", 405),
        ("PUT", "/api/models/me/sam2enc", 405),
        ("GET", "/api/models/me", 404),
        ("GET", "/api/models/me/sam2enc/versions", 404),
        ("POST", "/api/models/me/sam2enc/predictions", 404),
        ("GET", "/v1/account", 404),
        ("GET", "/api/models", 404),
        ("GET", "/static/../../predict.py", 404),
        ("GET", "/models/random_tiny.pt", 404),
        ("GET", "/api/files?url=http://example.com/x", 403),
        ("GET", "/api/files?url=file:///etc/passwd", 403),
    ],
)
def test_everything_else_is_refused(proxy, upstream, method, path, status):
    before = len(upstream.requests)
    assert call(f"{proxy}{path}", method, b"{}" if method in ("POST", "PUT") else None)[0] == status
    assert len(upstream.requests) == before, "nothing may reach the upstream"


def test_oversized_bodies_are_refused_as_the_proxys_own_limit(proxy, upstream, monkeypatch):
    assert proxy_module.MAX_BODY >= 100_000_000, "a photo Replicate's files API accepts (< 100 MB) must pass"
    monkeypatch.setattr(proxy_module, "MAX_BODY", 1000)
    before = len(upstream.requests)
    status, headers, body = call(f"{proxy}/api/predictions", "POST", b"x" * 5000)
    assert (status, headers["Content-Type"]) == (413, "application/problem+json")
    problem = json.loads(body)
    assert problem["source"] == "proxy" and "local proxy's 0 MB limit" in problem["detail"]
    assert len(upstream.requests) == before


def test_upstream_time_is_bounded(proxy, monkeypatch):
    monkeypatch.setattr(proxy_module, "UPSTREAM_TIMEOUT", 0.3)
    status, _, body = call(f"{proxy}/api/predictions/slow")
    assert status == 504 and b"did not answer in time" in body


def test_serves_the_app_the_decoder_and_onnxruntime_web(proxy):
    assert b"<html" in call(f"{proxy}/", token=None)[2].lower()
    status, headers, payload = call(f"{proxy}/models/decoder.onnx", token=None)
    assert status == 200 and len(payload) > 1_000_000
    status, headers, _ = call(f"{proxy}/vendor/ort/ort.all.min.mjs", token=None)
    assert status == 200 and headers["Content-Type"] == "text/javascript"


@pytest.mark.parametrize(
    "header, status",
    [("Content-Length: -1", 400), ("Content-Length: 1e3", 400), ("Transfer-Encoding: chunked", 411)],
)
def test_malformed_bodies_are_refused_and_the_connection_closed(proxy, upstream, header, status):
    before = len(upstream.requests)
    response = raw_post(proxy, header)
    assert (response.status, response.getheader("Connection")) == (status, "close")
    assert TOKEN.encode() not in response.read()
    assert len(upstream.requests) == before


def raw_post(url: str, header: str) -> http.client.HTTPResponse:
    """POST /api/predictions with the token, a body header of our choosing and a short chunked body."""
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    connection.putrequest("POST", "/api/predictions", skip_accept_encoding=True)
    connection.putheader(*header.split(": "))
    connection.putheader("Authorization", f"Bearer {TOKEN}")
    connection.endheaders(b"2\r\n{}\r\n0\r\n\r\n")
    return connection.getresponse()


def test_redirects_lead_nowhere_else(proxy, upstream):
    """An output-file host must not become a way to reach other hosts, nor the API a way to move the
    token: downloads follow redirects only to hosts they may fetch directly, API calls follow none."""
    other = Upstream()  # same address, another port: another origin, which the proxy must not reach
    try:
        assert call(f"{proxy}/api/files?url={urllib.parse.quote(other.url + '/x')}", token=None)[0] == 403
        upstream.redirect_to = f"{other.url}/internal"
        hop = urllib.parse.quote(f"{upstream.url}/delivery/redirect/embedding.bin")
        status, _, body = call(f"{proxy}/api/files?url={hop}", token=None)
        assert status == 502 and b"redirected" in body
        upstream.redirect_to = f"{upstream.url}/v1/predictions/abc"  # an allowed host, yet not with a token
        status, _, body = call(f"{proxy}/api/predictions/redirect")
        assert status == 502 and TOKEN.encode() not in body
        assert other.requests == []
        assert [r[1] for r in upstream.requests[-2:]] == [
            "/delivery/redirect/embedding.bin",
            "/v1/predictions/redirect",
        ]
    finally:
        other.server.shutdown()


def test_the_server_process_never_prints_the_token(upstream, models_dir):
    """What `python -m sam2enc.web serve` writes to its terminal, error paths included."""
    command = [
        sys.executable,
        "-m",
        "sam2enc.web",
        "serve",
        "--port",
        "0",
        "--no-demo",
        "--cancel-after",
        "42",
    ]
    command += ["--upstream", f"{upstream.url}/v1", "--models-dir", str(models_dir)]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = process.stdout.readline().split()[4].rstrip("/")
        assert call(f"{url}/api/predictions", "POST", b'{"version": "v", "input": {}}')[0] == 201
        assert upstream.requests[-1][2]["Cancel-After"] == "42s"
        assert call(f"{url}/api/predictions/abc?token={TOKEN}")[0] == 200
        for status in (401, 422, 500):  # error answers: the path a wrong token takes
            upstream.fail = (status, {"detail": "no", "status": status})
            assert call(f"{url}/api/predictions/abc")[0] == status
        upstream.fail = (401, {"detail": "no", "status": 401})
        assert call(f"{url}/api/predictions", "POST", b'{"version": "v", "input": {}}')[0] == 401
        assert call(f"{url}/api/files?url={upstream.url}/delivery/token/embedding.bin")[0] == 200
        assert call(f"{url}/api/files?url={upstream.url}/delivery/token/x", token="wrong")[0] == 401
        assert call(f"{url}/api/predictions/slow/../x")[0] == 404
        assert call(f"{url}/api/files?url=https://example.com/{TOKEN}")[0] == 403
        assert raw_post(url, f"Content-Length: {proxy_module.MAX_BODY + 1}").status == 413
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=10)
    assert "POST /api/predictions 201" in stderr and "GET /api/files 403" in stderr, stderr
    assert TOKEN not in stderr


def test_the_photo_upload_is_forwarded_as_multipart_with_the_token(proxy, upstream):
    kind = "multipart/form-data; boundary=xyz"
    part = b'Content-Disposition: form-data; name="content"; filename="a.jpg"\r\n\r\nJPEG'
    body = b"--xyz\r\n" + part + b"\r\n--xyz--\r\n"
    request = urllib.request.Request(
        f"{proxy}/api/files", body, {"Authorization": f"Bearer {TOKEN}", "Content-Type": kind}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 201 and TOKEN.encode() not in response.read()
    method, path, headers = upstream.requests[-1]
    assert (method, path, headers["Content-Type"]) == ("POST", "/v1/files", kind)
    assert headers["Authorization"] == f"Bearer {TOKEN}"
    before = len(upstream.requests)
    assert call(f"{proxy}/api/files", "POST", b'{"a": 1}')[0] == 415
    assert len(upstream.requests) == before


def test_cancel_and_model_lookup_are_forwarded_with_the_token(proxy, upstream):
    status, _, body = call(f"{proxy}/api/predictions/abc/cancel", "POST", b"")
    assert status == 200 and json.loads(body)["path"] == "/v1/predictions/abc/cancel"
    status, _, body = call(f"{proxy}/api/models/me/sam2enc")
    assert status == 200 and json.loads(body)["latest_version"]["id"] == "v"
    forwarded = upstream.requests[-2:]
    assert [(m, p) for m, p, _ in forwarded] == [
        ("POST", "/v1/predictions/abc/cancel"),
        ("GET", "/v1/models/me/sam2enc"),
    ]
    assert all(h["Authorization"] == f"Bearer {TOKEN}" for _, _, h in forwarded)


@pytest.mark.parametrize("cancel_after, header", [(None, "600s"), (30, "30s"), (0, None)])
def test_predictions_are_created_with_a_deadline(upstream, models_dir, cancel_after, header):
    kwargs = {} if cancel_after is None else {"cancel_after": cancel_after}
    server = serve("127.0.0.1", 0, f"{upstream.url}/v1", models_dir, **kwargs)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        assert call(f"{url}/api/predictions", "POST", b'{"version": "v", "input": {}}')[0] == 201
    finally:
        server.shutdown()
    assert upstream.requests[-1][2].get("Cancel-After") == header


def send(url: str, method: str, body: bytes | None, **headers: str) -> int:
    sent = {"Authorization": f"Bearer {TOKEN}", **headers}
    request = urllib.request.Request(url, body, sent, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.mark.parametrize(
    "prefer, forwarded",
    [
        ("wait=5", "wait=5"),
        (" wait=60 ", "wait=60"),
        ("wait", None),
        ("wait=0", None),
        ("wait=61", None),
        ("wait=05", None),
        ("wait=5, respond-async", None),
        ("respond-async", None),
    ],
)
def test_a_well_formed_prefer_wait_is_forwarded_on_create_only(proxy, upstream, prefer, forwarded):
    create = b'{"version": "v", "input": {}}'
    assert send(f"{proxy}/api/predictions", "POST", create, Prefer=prefer) == 201
    assert upstream.requests[-1][2].get("Prefer") == forwarded
    assert send(f"{proxy}/api/predictions/abc", "GET", None, Prefer=prefer) == 200
    assert send(f"{proxy}/api/predictions/abc/cancel", "POST", b"", Prefer=prefer) == 200
    assert send(f"{proxy}/api/models/me/sam2enc", "GET", None, Prefer=prefer) == 200
    assert all("Prefer" not in headers for _, _, headers in upstream.requests[-3:])


def test_a_sync_create_may_take_its_window_longer(proxy, upstream, monkeypatch):
    monkeypatch.setattr(proxy_module, "UPSTREAM_TIMEOUT", 0.3)
    upstream.hold = 0.8
    create = b'{"version": "v", "input": {}}'
    assert send(f"{proxy}/api/predictions", "POST", create, Prefer="wait=1") == 201
    assert send(f"{proxy}/api/predictions", "POST", create) == 504


@pytest.mark.parametrize("status", [401, 404, 422, 429, 500, 503])
@pytest.mark.parametrize("path, method", [("/api/predictions", "POST"), ("/api/predictions/abc", "GET")])
def test_upstream_errors_pass_through_unchanged_and_never_leak_the_token(
    proxy, upstream, caplog, status, path, method
):
    """Replicate's problem+json errors reach the page as they came, told apart from the proxy's own."""
    problem = {"title": "Unauthenticated", "detail": "You did not pass a valid token", "status": status}
    upstream.fail = (status, problem)
    with caplog.at_level(logging.DEBUG):
        got, headers, body = call(
            f"{proxy}{path}", method, b'{"version": "v", "input": {}}' if method == "POST" else None
        )
    assert (got, headers["Content-Type"], json.loads(body)) == (status, "application/problem+json", problem)
    assert TOKEN not in caplog.text and TOKEN not in json.dumps([r.args for r in caplog.records], default=str)
    assert f"{method} {path} {status}" in caplog.text


ALLOWED = ["https://replicate.delivery/x/embedding.bin", "https://pbxt.replicate.delivery/x/embedding.bin"]
REFUSED = [
    "https://evilreplicate.delivery/x/embedding.bin",
    "https://replicate.delivery.evil.com/x/embedding.bin",
    "http://replicate.delivery/x/embedding.bin",
    "https://example.com/x/embedding.bin",
]


@pytest.mark.parametrize("url", ALLOWED)
def test_replicate_delivery_is_allowed_with_the_token(proxy_server, url):
    assert proxy_server.file_host_allowed(url) and proxy_server.token_allowed(url)


@pytest.mark.parametrize("url", REFUSED)
def test_other_hosts_are_refused_before_connecting(proxy, proxy_server, url, monkeypatch):
    """No network: a refused host never reaches the opener."""
    relayed = []
    monkeypatch.setattr(proxy_module.Handler, "_relay", lambda self, *a, **k: relayed.append(a))
    status, _, body = call(f"{proxy}/api/files?url={urllib.parse.quote(url)}")
    assert status == 403 and json.loads(body)["source"] == "proxy" and TOKEN.encode() not in body
    assert relayed == [] and not proxy_server.token_allowed(url)


def test_plain_http_carries_the_token_only_to_a_loopback_upstream(models_dir):
    remote = Proxy(("127.0.0.1", 0), "http://10.1.2.3:8080/v1", models_dir)
    try:
        assert remote.file_host_allowed("http://10.1.2.3:8080/delivery/x")
        assert not remote.token_allowed("http://10.1.2.3:8080/delivery/x")
    finally:
        remote.server_close()


def test_output_files_that_want_the_token_get_it_once(proxy, upstream):
    url = urllib.parse.quote(f"{upstream.url}/delivery/token/embedding.bin")
    before = len(upstream.requests)
    status, _, body = call(f"{proxy}/api/files?url={url}")
    assert status == 200 and body == b"file:/delivery/token/embedding.bin"
    assert [r[2].get("Authorization") for r in upstream.requests[before:]] == [None, f"Bearer {TOKEN}"]
    before = len(upstream.requests)
    assert call(f"{proxy}/api/files?url={url}", token="wrong")[0] == 401, "one retry, then the answer"
    assert len(upstream.requests) - before == 2
    before = len(upstream.requests)
    status, _, body = call(f"{proxy}/api/files?url={upstream.url}/delivery/plain/manifest.json")
    assert status == 200 and upstream.requests[before][2].get("Authorization") is None, "pre-signed: no token"


def test_the_token_never_follows_a_redirect(proxy, upstream):
    """A download that wants the token and then redirects (tests/fixtures/token-policy.json "redirects"
    holds every case): the next hop, on a host it may fetch, gets no token."""
    upstream.redirect_to = f"{upstream.url}/delivery/plain/final"
    hop = urllib.parse.quote(f"{upstream.url}/delivery/token/redirect")
    before = len(upstream.requests)
    status, _, body = call(f"{proxy}/api/files?url={hop}")
    assert (status, body) == (200, b"file:/delivery/plain/final")
    assert [(path, headers.get("Authorization")) for _, path, headers in upstream.requests[before:]] == [
        ("/delivery/token/redirect", None),
        ("/delivery/token/redirect", f"Bearer {TOKEN}"),
        ("/delivery/plain/final", None),
    ]


def test_an_oversized_upstream_answer_is_refused(proxy, upstream, monkeypatch):
    monkeypatch.setattr(proxy_module, "MAX_ANSWER", 2000)
    upstream.big = 5000
    status, _, body = call(f"{proxy}/api/predictions/abc")
    assert status == 502 and b"too large" in body and json.loads(body)["source"] == "proxy"
