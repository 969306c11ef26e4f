"""One token policy, three implementations: every case of tests/fixtures/token-policy.json holds for
client.py (``token_allowed``, its downloads and its API calls' waits, with a scripted ``_send``), for the
Python proxy (through HTTP, with a recording opener in place of the network: a refused request must
record nothing) and for the hosted handler and the page (Node's test runner, tests/js/*.test.mjs, run
from here so that pytest counts it).
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
from sam2enc import client
from sam2enc.client import token_allowed
from sam2enc.errors import RemoteError
from tests.node import node_test

ROOT = Path(__file__).resolve().parents[1]
POLICY = json.loads((ROOT / "tests" / "fixtures" / "token-policy.json").read_text())
TOKEN = POLICY["token"]
DOWNLOADS = POLICY["downloads"]["cases"]
ROUTES = POLICY["routes"]["cases"]
REDIRECTS = POLICY["redirects"]["cases"]
ANSWERS = POLICY["answers"]["cases"]


def download_id(case: dict) -> str:
    return f"{case['url'] or '(none)'} via {case.get('api_base', POLICY['api_base'])}"


def redirect_id(case: dict) -> str:
    return f"{case['note']}: {case['result']}"


def answer_id(case: dict) -> str:
    answer = case["answer"]
    return (
        f"{case['method']} {case['path'].split('?')[0]} {answer['status']} {answer.get('retry_after', '-')}"
    )


def route_id(case: dict) -> str:
    token = " no-token" if case.get("token") is False else ""
    return f"{case['method']} {case['path']} {case.get('origin', '')}{token}"


@pytest.mark.parametrize("case", DOWNLOADS, ids=download_id)
def test_the_client_sends_the_token_where_the_table_says(case):
    assert token_allowed(case["url"], case.get("api_base", POLICY["api_base"])) is case["token"]


def scripted(case: dict, url: str, token: bool) -> tuple[int, dict[str, str], bytes]:
    """A redirect case's upstream: (status, headers, body) for a request to ``url``."""
    answers = case["upstream"].get(url)
    if answers is None:
        return 200, {"Content-Type": "application/octet-stream"}, b"file"
    answer = answers[1 if token else 0]
    status, location = (answer, None) if isinstance(answer, int) else answer
    if status == 200:
        return 200, {"Content-Type": "application/octet-stream"}, b"file"
    headers = {"Content-Type": "application/problem+json"}
    if location is not None:
        headers["Location"] = location
    return status, headers, json.dumps({"status": status}).encode()


class Recorder:
    """Stands in for urllib's opener inside the proxy: records each outgoing request and answers it
    (downloads: 401 without Authorization, as a delivery host that wants the token; ``case``: a redirect
    case's script; ``answer``: an answer case's)."""

    def __init__(self) -> None:
        self.sent: list[dict] = []
        self.case: dict | None = None
        self.answer: dict | None = None

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
        if self.case is not None:
            status, answer_headers, body = scripted(self.case, request.full_url, "authorization" in headers)
            message = Message()
            for name, value in answer_headers.items():
                message[name] = value
            if status != 200:
                raise urllib.error.HTTPError(request.full_url, status, "", message, io.BytesIO(body))
            return _Answer(body, message)
        if self.answer is not None:
            message.replace_header("Content-Type", "application/problem+json")
            if "retry_after" in self.answer:
                message["Retry-After"] = self.answer["retry_after"]
            body = json.dumps({"status": self.answer["status"], "detail": "throttled"}).encode()
            raise urllib.error.HTTPError(
                request.full_url, self.answer["status"], "", message, io.BytesIO(body)
            )
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


def request(server, method: str, path: str, body: str | None, headers: dict[str, str], full: bool = False):
    """One request over its own connection (urllib's opener is the recorder's during these tests);
    ``full``: the answer's headers too."""
    connection = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)
    try:
        connection.request(method, path, body.encode() if body is not None else None, headers)
        response = connection.getresponse()
        answer = response.status, response.getheader("Content-Type"), response.read()
        return (*answer, response.headers) if full else answer
    finally:
        connection.close()


@pytest.mark.server
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


@pytest.mark.server
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


@pytest.mark.server
@pytest.mark.parametrize("case", REDIRECTS, ids=redirect_id)
def test_the_python_proxy_follows_redirects_as_the_table_says(case, recorder, proxies):
    server = proxies(case.get("api_base", POLICY["api_base"]))
    recorder.case = case
    path = f"/api/files?url={urllib.parse.quote(case['url'], safe='')}"
    status, kind, body = request(server, "GET", path, None, {"Authorization": f"Bearer {TOKEN}"})
    assert TOKEN.encode() not in body
    sent = [[r["url"], "authorization" in r["headers"]] for r in recorder.sent]
    assert sent == case["requests"]
    assert all(r["headers"].get("authorization") in (None, f"Bearer {TOKEN}") for r in recorder.sent)
    if case["result"] == "refused":
        assert (status, kind, json.loads(body)["source"]) == (502, "application/problem+json", "proxy")
    else:
        assert status == case["result"]


@pytest.mark.parametrize("case", REDIRECTS, ids=redirect_id)
def test_the_client_follows_redirects_as_the_table_says(case, monkeypatch):
    sent: list[list] = []

    def send(request: urllib.request.Request, cap: int):
        headers = {**request.headers, **request.unredirected_hdrs}
        assert headers.get("Authorization") in (None, f"Bearer {TOKEN}")
        sent.append([request.full_url, "Authorization" in headers])
        return scripted(case, request.full_url, "Authorization" in headers)

    monkeypatch.setattr(client, "_send", send)
    api_base = case.get("api_base", POLICY["api_base"])
    if case["result"] == 200:
        assert client._fetch(case["url"], TOKEN, api_base) == b"file"
    else:
        reason = "redirected" if case["result"] == "refused" else f"answered {case['result']}"
        with pytest.raises(RemoteError, match=reason):
            client._fetch(case["url"], TOKEN, api_base)
    assert sent == case["requests"]


@pytest.mark.server
@pytest.mark.parametrize("case", ANSWERS, ids=answer_id)
def test_the_python_proxy_passes_retry_after_on(case, recorder, proxies):
    server = proxies(POLICY["api_base"])
    recorder.answer = case["answer"]
    headers = {"Authorization": f"Bearer {TOKEN}", "Origin": f"http://127.0.0.1:{server.server_address[1]}"}
    if case["method"] == "POST":
        headers["Content-Type"] = "application/json"
    status, kind, body, answer = request(
        server, case["method"], case["path"], case.get("body"), headers, True
    )
    assert (status, kind) == (case["answer"]["status"], "application/problem+json")
    assert json.loads(body) == {"status": case["answer"]["status"], "detail": "throttled"}, "as it came"
    assert answer.get("Retry-After") == case["answer"].get("retry_after")
    assert "Retry-After" in answer.get("Access-Control-Expose-Headers", "").split(", ")
    assert len(recorder.sent) == 1


@pytest.mark.parametrize("case", ANSWERS, ids=answer_id)
def test_the_client_waits_as_the_table_says(case, monkeypatch):
    """client.py's API calls (the downloads are not repeated: ``_fetch`` returns the answer)."""
    if case["path"].startswith("/api/files"):
        payload = {"status": case["answer"]["status"]}
        monkeypatch.setattr(client, "_send", lambda request, cap: (429, {}, json.dumps(payload).encode()))
        with pytest.raises(RemoteError, match="answered 429"):
            client._fetch("https://replicate.delivery/x", TOKEN, POLICY["api_base"])
        return
    answers = [(case["answer"]["status"], {"Retry-After": case["answer"].get("retry_after")}, b"{}")]
    answers.append((200, {}, b"{}"))
    monkeypatch.setattr(client, "_send", lambda request, cap: answers.pop(0))
    sleeps: list[float] = []
    monkeypatch.setattr(client.time, "sleep", sleeps.append)
    api = client._Api(TOKEN, "https://api.replicate.com", client.time.monotonic() + 60)
    path = case["path"].removeprefix("/api")
    body = case.get("body", "").encode() or None
    if "wait" not in case:
        with pytest.raises(RemoteError, match=str(case["answer"]["status"])):
            api.call(case["method"], path, body)
        assert sleeps == []
        return
    assert api.call(case["method"], path, body) == {}
    assert sleeps == [case["wait"] if case["wait"] is not None else client._retry_after(None, 0)]


@pytest.mark.node
def test_the_hosted_handler_passes_the_table_in_node():
    """tests/js/proxy.test.mjs: the policy table, redirects, Prefer, the 100 MB cap, CORS, the log (~2 s)."""
    assert node_test("proxy.test.mjs") > len(ROUTES) + len(DOWNLOADS) + len(REDIRECTS) + len(ANSWERS)


@pytest.mark.node
def test_the_page_waits_as_the_table_says_in_node():
    """tests/js/replicate.test.mjs: the page's api() reads Retry-After (seconds, a date) as client.py does."""
    assert node_test("replicate.test.mjs") >= len(ANSWERS)
