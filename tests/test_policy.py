"""One token policy, three implementations: every case of tests/fixtures/token-policy.json holds for
client.py's ``token_allowed``, for the Python proxy (through HTTP, with a recording opener in place of
the network: a refused request must record nothing) and for the hosted handler (Node's test runner,
tests/js/*.test.mjs, run from here so that pytest counts it).
"""

from __future__ import annotations

import http.client
import io
import json
import threading
import urllib.error
import urllib.parse
import urllib.request
from email.message import Message
from pathlib import Path

import pytest

import sam2enc.web.proxy as proxy_module
from sam2enc.client import token_allowed
from tests.node import node_test

ROOT = Path(__file__).resolve().parents[1]
POLICY = json.loads((ROOT / "tests" / "fixtures" / "token-policy.json").read_text())
TOKEN = POLICY["token"]
DOWNLOADS = POLICY["downloads"]["cases"]
ROUTES = POLICY["routes"]["cases"]


def download_id(case: dict) -> str:
    return f"{case['url'] or '(none)'} via {case.get('api_base', POLICY['api_base'])}"


def route_id(case: dict) -> str:
    token = " no-token" if case.get("token") is False else ""
    return f"{case['method']} {case['path']} {case.get('origin', '')}{token}"


@pytest.mark.parametrize("case", DOWNLOADS, ids=download_id)
def test_the_client_sends_the_token_where_the_table_says(case):
    assert token_allowed(case["url"], case.get("api_base", POLICY["api_base"])) is case["token"]


class Recorder:
    """Stands in for urllib's opener inside the proxy: records each outgoing request and answers it
    (downloads: 401 without Authorization, as a delivery host that wants the token)."""

    def __init__(self) -> None:
        self.sent: list[dict] = []

    def build_opener(self, *handlers):
        return self

    def open(self, request: urllib.request.Request, timeout: float | None = None):
        headers = {k.lower(): v for k, v in {**request.headers, **request.unredirected_hdrs}.items()}
        self.sent.append(
            {
                "url": request.full_url,
                "method": request.get_method(),
                "headers": headers,
                "body": request.data,
            }
        )
        message = Message()
        message["Content-Type"] = "application/json"
        if "/api/files" in self.path and "authorization" not in headers:
            raise urllib.error.HTTPError(request.full_url, 401, "Unauthorized", message, io.BytesIO(b"{}"))
        return _Answer(b'{"ok": true}', message)

    path = ""


class _Answer(io.BytesIO):
    def __init__(self, payload: bytes, headers: Message) -> None:
        super().__init__(payload)
        self.status, self.headers = 200, headers


@pytest.fixture
def recorder(monkeypatch):
    recorder = Recorder()
    monkeypatch.setattr(proxy_module.urllib.request, "build_opener", recorder.build_opener)
    return recorder


@pytest.fixture(scope="module")
def proxies(tmp_path_factory):
    """One Python proxy per API base, started on first use."""
    servers: dict[str, proxy_module.Proxy] = {}

    def get(api_base: str) -> proxy_module.Proxy:
        if api_base not in servers:
            servers[api_base] = proxy_module.serve("127.0.0.1", 0, api_base, tmp_path_factory.mktemp("m"))
            threading.Thread(target=servers[api_base].serve_forever, daemon=True).start()
        return servers[api_base]

    yield get
    for server in servers.values():
        server.shutdown()
        server.server_close()


def request(server, method: str, path: str, body: str | None, headers: dict[str, str]):
    """One request over its own connection (urllib's opener is the recorder's during these tests)."""
    connection = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)
    try:
        connection.request(method, path, body.encode() if body is not None else None, headers)
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type"), response.read()
    finally:
        connection.close()


@pytest.mark.parametrize("case", DOWNLOADS, ids=download_id)
def test_the_python_proxy_downloads_where_the_table_says(case, recorder, proxies):
    server = proxies(case.get("api_base", POLICY["api_base"]))
    assert server.file_host_allowed(case["url"]) is case["fetched"]
    assert server.token_allowed(case["url"]) is case["token"]
    recorder.path = "/api/files"
    path = f"/api/files?url={urllib.parse.quote(case['url'], safe='')}"
    status, kind, body = request(server, "GET", path, None, {"Authorization": f"Bearer {TOKEN}"})
    assert TOKEN.encode() not in body
    if not case["fetched"]:
        assert (status, kind, json.loads(body)["source"]) == (403, "application/problem+json", "proxy")
        assert recorder.sent == []
        return
    tokens = [r["headers"].get("authorization") for r in recorder.sent]
    assert tokens == ([None, f"Bearer {TOKEN}"] if case["token"] else [None]), "first without the token"
    assert status == (200 if case["token"] else 401)


@pytest.mark.parametrize("case", ROUTES, ids=route_id)
def test_the_python_proxy_routes_as_the_table_says(case, recorder, proxies):
    server = proxies(POLICY["api_base"])
    port = server.server_address[1]
    origins = {**POLICY["origins"], "allowed": f"http://127.0.0.1:{port}"}  # its own page's origin
    headers = {} if case.get("token") is False else {"Authorization": f"Bearer {TOKEN}"}
    if "origin" in case:
        headers["Origin"] = origins.get(case["origin"], case["origin"])
    if "content_type" in case:
        headers["Content-Type"] = case["content_type"]
    status, kind, body = request(server, case["method"], case["path"], case.get("body"), headers)
    assert TOKEN.encode() not in body
    if "forward" not in case:
        assert (status, kind, json.loads(body)["source"]) == (
            case["status"],
            "application/problem+json",
            "proxy",
        )
        assert recorder.sent == [], "nothing may be forwarded"
        return
    assert (status, body) == (200, b'{"ok": true}')
    [sent] = recorder.sent
    forward = case["forward"]
    assert (sent["method"], sent["url"]) == (forward["method"], POLICY["api_base"] + forward["path"])
    assert sent["headers"].get("authorization") == headers.get("Authorization")
    assert (sent["body"] or b"").decode() == case.get("body", "")
    for name, value in forward.get("headers", {}).items():
        assert sent["headers"].get(name.lower()) == value


def test_the_hosted_handler_passes_the_table_in_node():
    """tests/js/proxy.test.mjs: the policy table, redirects, Prefer, the 100 MB cap, CORS, the log (~2 s)."""
    assert node_test("proxy.test.mjs") > len(ROUTES) + len(DOWNLOADS)
