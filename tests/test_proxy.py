"""The token proxy forwards two calls with the caller's token and nothing else, and never leaks the token."""

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
from sam2enc.web.proxy import serve

TOKEN = "r8_secret_token_do_not_leak_42"


class Upstream:
    """A fake Replicate API that records what reaches it; /slow/ paths never answer in time, and
    /redirect paths send the caller to ``redirect_to``."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict]] = []
        self.redirect_to = ""
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                upstream.requests.append((self.command, self.path, dict(self.headers)))
                if "slow" in self.path:
                    time.sleep(1.5)
                if "redirect" in self.path:
                    self.send_response(302)
                    self.send_header("Location", upstream.redirect_to)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = json.dumps({"id": "abc", "status": "starting", "path": self.path}).encode()
                self.send_response(201 if self.command == "POST" else 200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def upstream():
    up = Upstream()
    yield up
    up.server.shutdown()


@pytest.fixture(scope="module")
def proxy(upstream, models_dir):
    server = serve("127.0.0.1", 0, f"{upstream.url}/v1", models_dir)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def call(url: str, method: str = "GET", body: bytes | None = None, token: str | None = TOKEN):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(url, body, headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


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
        ("POST", "/api/predictions/abc/cancel", 404),
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


def test_oversized_bodies_are_refused(proxy, upstream, monkeypatch):
    monkeypatch.setattr(proxy_module, "MAX_BODY", 1000)
    before = len(upstream.requests)
    assert call(f"{proxy}/api/predictions", "POST", b"x" * 5000)[0] == 413
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
    command = [sys.executable, "-m", "sam2enc.web", "serve", "--port", "0"]
    command += ["--upstream", f"{upstream.url}/v1", "--models", str(models_dir)]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = process.stdout.readline().split()[4].rstrip("/")
        assert call(f"{url}/api/predictions", "POST", b'{"version": "v", "input": {}}')[0] == 201
        assert call(f"{url}/api/predictions/abc?token={TOKEN}")[0] == 200
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
