"""The token proxy relays a whole bundle: its answer cap is above the 8 MiB ``embedding.bin`` (plus the
manifest), and an answer up to the cap reaches the page unchanged. Fast tier: ``Handler._relay`` runs on
a stand-in request handler with a scripted upstream, no socket; tests/test_proxy.py does the same
through a real server (where the cap is lowered to test the refusal)."""

from __future__ import annotations

import io
import urllib.request
from types import SimpleNamespace

import pytest

from sam2enc.bundle import BYTE_LENGTH
from sam2enc.web import proxy


class Upstream:
    """What ``urllib.request.build_opener(...).open`` returns: one answer with ``payload``."""

    def __init__(self, payload: bytes) -> None:
        self.payload = payload

    def __call__(self, *handlers):
        return self

    def open(self, request, timeout=None):
        response = io.BytesIO(self.payload)
        response.status = 200
        response.headers = {"Content-Type": "application/octet-stream"}
        return response


def relay(monkeypatch, payload: bytes) -> list[tuple[int, int]]:
    """(status, body length) of what the proxy sent back for an upstream answer of ``payload``."""
    sent: list[tuple[int, int]] = []
    monkeypatch.setattr(urllib.request, "build_opener", Upstream(payload))
    handler = SimpleNamespace(
        server=SimpleNamespace(file_host_allowed=lambda url: True),
        _send=lambda status, body, kind, retry_after=None: sent.append((status, len(body))),
        _error=lambda status, message: sent.append((status, -1)),
    )
    request = urllib.request.Request("https://replicate.delivery/x/embedding.bin")
    proxy.Handler._relay(handler, lambda: proxy._open(request, 60))
    return sent


def test_the_answer_cap_admits_a_bundle():
    assert proxy.MAX_ANSWER >= BYTE_LENGTH + 64 * 1024  # embedding.bin, and room for a manifest or logs


@pytest.mark.parametrize("size", [BYTE_LENGTH, 2 * BYTE_LENGTH])
def test_an_embedding_reaches_the_page_whole(monkeypatch, size):
    assert relay(monkeypatch, bytes(size)) == [(200, size)]


def test_an_answer_over_the_cap_is_refused(monkeypatch):
    monkeypatch.setattr(proxy, "MAX_ANSWER", 1000)
    assert relay(monkeypatch, bytes(1001)) == [(502, -1)]
