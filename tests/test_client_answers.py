"""How the client reads Replicate's answers, checked without a server (fast tier): a 5xx is an error said
at once, never a prediction to wait on until the timeout, and ``Retry-After`` counts seconds.

The API is a script of answers in place of ``sam2enc.client._send`` (the one function that touches the
network) and ``time.sleep`` is recorded instead of slept, so these tests take milliseconds; the same
behaviours against the stand-in HTTP server are in tests/test_client.py (server tier).
"""

from __future__ import annotations

import json
import time

import pytest

from sam2enc import client
from sam2enc.errors import RemoteError

TOKEN = "r8_test_token_0123456789"
VERSION = "5c7d5dc6dd8bf75c1acaa8565735e7986bc5b66206b55cca93cb72c9bf15ccaa"
PROBLEM = {"title": "Service Unavailable", "detail": "upstream connect error", "status": 503}


class ScriptedApi:
    """Answers by (method, path prefix); records every request and every sleep."""

    def __init__(self, answers: dict[tuple[str, str], tuple[int, dict, dict]]) -> None:
        self.answers = answers
        self.requests: list[tuple[str, str]] = []
        self.sleeps: list[float] = []

    def send(self, request, cap: int) -> tuple[int, dict[str, str], bytes]:
        path = request.full_url.removeprefix("https://api.example.test/v1")
        method = request.get_method()
        self.requests.append((method, path))
        for (m, prefix), (status, headers, body) in self.answers.items():
            if m == method and path.startswith(prefix):
                return status, headers, json.dumps(body).encode()
        raise AssertionError(f"unexpected {method} {path}")


@pytest.fixture
def scripted(monkeypatch):
    def install(answers) -> ScriptedApi:
        api = ScriptedApi(answers)
        monkeypatch.setattr(client, "_send", api.send)
        monkeypatch.setattr(client.time, "sleep", api.sleeps.append)
        monkeypatch.setenv("REPLICATE_POLL_INTERVAL", "0.01")
        return api

    return install


UPLOADED = (201, {}, {"id": "f1", "urls": {"get": "https://api.example.test/v1/files/f1"}})
STARTED = (201, {}, {"id": "p1", "status": "starting"})
UNAVAILABLE = (503, {"Content-Type": "application/problem+json", "Retry-After": "0"}, PROBLEM)


@pytest.mark.parametrize(
    "failing",
    [("POST", "/predictions"), ("GET", "/predictions/p1")],
    ids=["creating the prediction", "polling it"],
)
def test_a_5xx_is_an_error_said_at_once_not_a_prediction_to_wait_on(scripted, failing, tmp_path):
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"\xff\xd8\xff\xe0 not decoded by the client")
    answers = {("POST", "/files"): UPLOADED, ("POST", "/predictions"): STARTED, failing: UNAVAILABLE}
    api = scripted(answers)
    started = time.monotonic()
    with pytest.raises(RemoteError, match=r"\(503: upstream connect error\)"):
        client.encode_remote(photo, VERSION, api_token=TOKEN, base_url="https://api.example.test", timeout=3)
    assert time.monotonic() - started < 2, "it waited for the timeout"
    assert sum(1 for r in api.requests if r == failing) <= client.RETRIES + 1


def test_retry_after_counts_seconds(scripted):
    """Replicate's 429 says ``Retry-After: <seconds>`` (or an HTTP date): waited out as such."""
    answers = {("GET", "/models/me/sam2enc"): (429, {"Retry-After": "3"}, {"detail": "throttled"})}
    api = scripted(answers)
    with pytest.raises(RemoteError, match="429"):
        client._Api(TOKEN, "https://api.example.test", time.monotonic() + 7).call("GET", "/models/me/sam2enc")
    assert api.sleeps == [3.0] * client.RETRIES  # (time does not pass here: every wait fits the deadline)
    in_three_seconds = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 3))
    assert 1.5 < client._retry_after(in_three_seconds, 0) <= 3
