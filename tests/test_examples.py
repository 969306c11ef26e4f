"""examples/: the pages a web developer copies work as they stand, in headless chromium.

examples/minimal.html is served from a small local HTTP server laid out like the repository (its import
map points at ../sam2enc/web/static/lib/ and ../node_modules/onnxruntime-web/), with the random-weight
tiny export as weights/ and a bundle of a real photo; its mask must equal the Python decoder's.
Cost: ~5 s encode + one chromium (~10 s on 2 shared cores).
"""

from __future__ import annotations

import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from sam2enc.bundle import read_bundle
from sam2enc.pipeline import encode_to_dir
from tests.web.browser import Browser, browser_marks

ROOT = Path(__file__).resolve().parents[1]
REPORTS = ROOT / "build" / "test-reports"

pytestmark = browser_marks(pytest.mark.browser, pytest.mark.node)


class _Files(SimpleHTTPRequestHandler):
    extensions_map: ClassVar[dict[str, str]] = {
        **SimpleHTTPRequestHandler.extensions_map,
        ".js": "text/javascript",
        ".mjs": "text/javascript",
        ".wasm": "application/wasm",
        ".json": "application/json",
    }

    def log_message(self, *args) -> None:  # keep pytest's output for failures
        pass


@pytest.fixture(scope="module")
def site(tmp_path_factory, photos, encoder, models_dir):
    """http://127.0.0.1:PORT/ laid out like the repository, plus weights/ and a bundle of coffee.png."""
    root = tmp_path_factory.mktemp("site")
    for name in ("examples", "sam2enc", "node_modules"):
        (root / name).symlink_to(ROOT / name)
    (root / "weights").symlink_to(models_dir)
    encode_to_dir(photos["coffee"], encoder, root / "photo" / "bundle")
    (root / "photo" / "coffee.png").symlink_to(photos["coffee"])
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Files, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root
    server.shutdown()
    server.server_close()


def test_minimal_page_draws_the_python_decoders_mask(site, decoder):
    base, root = site
    bundle = read_bundle(root / "photo" / "bundle")
    click = (300, 180)
    prediction = decoder.predict(bundle, points=[(*click, 1)])
    want = prediction.masks[prediction.best]

    browser = Browser()
    try:
        # the bundle folder as a user types it, without the trailing slash
        query = f"bundle=../photo/bundle&photo=../photo/coffee.png&x={click[0]}&y={click[1]}"
        browser.open(f"{base}/examples/minimal.html?{query}")
        browser.call(
            "await ctx.page.waitForFunction(() => document.querySelector('#status').dataset.state, null,"
            " {timeout: 120000})"
        )
        state, text = browser.call(
            "return ctx.page.evaluate(() => { const s = document.querySelector('#status');"
            " return [s.dataset.state, s.textContent]; })"
        )
        assert state == "done", text
        alpha = browser.call(
            "return ctx.page.evaluate(() => { const c = document.querySelector('#mask');"
            " const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
            " return [c.width, c.height, Array.from(d.filter((_, i) => i % 4 === 3))]; })"
        )
        browser.screenshot(REPORTS / "example-minimal.png")
    finally:
        browser.close()
    width, height, values = alpha
    assert (width, height) == (bundle.original_width, bundle.original_height)
    got = np.asarray(values, np.uint8).reshape(height, width) > 0
    assert np.array_equal(got, want), f"{int((got != want).sum())} pixels differ from the Python decoder"


def test_minimal_page_names_a_decoder_it_cannot_fetch(site):
    base, _ = site
    browser = Browser()
    try:
        browser.open(f"{base}/examples/minimal.html?bundle=../photo/bundle/&decoder=../nowhere/decoder.onnx")
        browser.call(
            "await ctx.page.waitForFunction(() => document.querySelector('#status').dataset.state, null,"
            " {timeout: 120000})"
        )
        state, text, usage = browser.call(
            "return ctx.page.evaluate(() => { const s = document.querySelector('#status');"
            " return [s.dataset.state, s.textContent, document.querySelector('#usage').textContent]; })"
        )
    finally:
        browser.close()
    assert state == "error", text
    assert "nowhere/decoder.onnx could not be fetched (HTTP 404): check the decoder= path" in text, text
    assert "decoder=" in usage and "bundle=" in usage, "how to use it is on the page, not in a comment"
