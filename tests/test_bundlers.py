"""examples/vite and examples/nextjs as a web developer gets them: the package packed with `npm pack`, the
tarball installed into each app with its own pinned lockfile (`npm ci`, from the npm cache where it can),
built by Vite 6 and by Next.js 15 (app router, static export), then driven in chromium with the mouse.

Each build must say nothing about `node:` modules (Vite: "Module "node:url" has been externalized for
browser compatibility") nor warn at all, emit no file over 25 MiB (Cloudflare Pages' limit: the JSEP
WebGPU build's 28 MB wasm must not come in), and hold one onnxruntime-web (a peer dependency). The
masks for a click, a click and an exclude, a box (a drag) and a box with a click must be the Python
decoder's (`sam2enc decode`) at the photo's size, IoU ≥ 0.999. First-load bytes (the app and its
runtime, and the data) go to the report.

Cost: `npm pack` once; per example `npm ci` (~10-20 s from the npm cache) and one build (Vite ~10 s,
Next.js ~35 s on 2 cores) per session, in build/bundlers/; one page load and four decodes each.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import shutil
import subprocess
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar
from urllib.parse import unquote, urlsplit

import numpy as np
import pytest

from sam2enc.bundle import read_bundle
from sam2enc.pipeline import encode_to_dir
from tests.helpers import iou
from tests.web.browser import Browser, browser_marks

pytestmark = browser_marks(pytest.mark.browser, pytest.mark.server, pytest.mark.node, pytest.mark.slow)

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "build" / "bundlers"
MAX_FILE = 25 * 1024 * 1024
# example -> (what its build writes, the build command from its node_modules/.bin)
EXAMPLES = {"vite": ("dist", ["vite", "build"]), "nextjs": ("out", ["next", "build"])}
LEFT_BEHIND = shutil.ignore_patterns("node_modules", "dist", "out", ".next", "sam2enc.tgz", "next-env.d.ts")


def run(command: list[str], cwd: Path, timeout: int = 600) -> str:
    env = {**os.environ, "NEXT_TELEMETRY_DISABLED": "1", "CI": "1"}
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{' '.join(command)} failed in {cwd}:\n{output[-6000:]}"
    return output


@pytest.fixture(scope="module")
def tarball() -> Path:
    """What `npm pack` makes of this checkout: what a user installs."""
    npm = shutil.which("npm")
    assert npm, "npm is a test dependency (make install-web)"
    WORK.mkdir(parents=True, exist_ok=True)
    for old in WORK.glob("sam2enc-*.tgz"):
        old.unlink()
    run([npm, "pack", "--pack-destination", str(WORK)], cwd=ROOT, timeout=120)
    [packed] = WORK.glob("sam2enc-*.tgz")
    return packed


@pytest.fixture(scope="module", params=list(EXAMPLES))
def built(request, tarball) -> dict:
    """The example copied to build/bundlers/<name>/, the tarball as its sam2enc.tgz, `npm ci`, built."""
    name = request.param
    app = WORK / name
    shutil.rmtree(app, ignore_errors=True)
    shutil.copytree(ROOT / "examples" / name, app, ignore=LEFT_BEHIND)
    shutil.copy(tarball, app / "sam2enc.tgz")
    lock = json.loads((app / "package-lock.json").read_text())
    # The tarball changes with every change to the package: a recorded integrity would make npm install
    # its cached copy of an older one (the committed lockfiles leave it out too).
    assert "integrity" not in lock["packages"]["node_modules/sam2enc"], (
        "examples' lockfiles pin no tarball hash"
    )
    run(["npm", "ci", "--prefer-offline", "--no-audit", "--no-fund"], cwd=app)
    out, command = EXAMPLES[name]
    output = run([str(app / "node_modules" / ".bin" / command[0]), *command[1:]], cwd=app)
    files = {
        p.relative_to(app / out).as_posix(): p.stat().st_size for p in (app / out).rglob("*") if p.is_file()
    }
    return {"name": name, "app": app, "out": app / out, "output": output, "files": files}


def test_the_build_warns_of_nothing_and_emits_no_file_over_25_mib(built, report):
    output, files = built["output"], built["files"]
    assert "externalized" not in output and "node:" not in output, output
    warnings = [line for line in output.splitlines() if "warn" in line.lower() or "⚠" in line]
    # Next.js in CI (CI=1) on a first build, about its own cache, not the app
    warnings = [line for line in warnings if "No build cache found" not in line]
    assert warnings == [], output
    assert {name: size for name, size in files.items() if size > MAX_FILE} == {}, "a file over 25 MiB"
    wasm = sorted(Path(name).name for name in files if name.endswith(".wasm"))
    assert not [name for name in wasm if "jsep" in name or "asyncify" in name], wasm
    assert [name for name in wasm if "jspi" not in name], "the WASM-only runtime is emitted"
    modules = built["app"] / "node_modules"
    assert json.loads((modules / "sam2enc" / "package.json").read_text())["peerDependencies"]
    assert not (modules / "sam2enc" / "node_modules").exists(), "onnxruntime-web once: the app's own"
    report(
        {"example": built["name"], "emitted bytes": sum(files.values()), "largest file": max(files.values())}
    )


class _Site(SimpleHTTPRequestHandler):
    """The built app at /, the test's files at /data/<name>/; every GET path recorded."""

    extensions_map: ClassVar[dict[str, str]] = {
        **SimpleHTTPRequestHandler.extensions_map,
        ".js": "text/javascript",
        ".mjs": "text/javascript",
        ".wasm": "application/wasm",
    }

    def __init__(self, *args, data: dict[str, Path], seen: list[str], **kwargs) -> None:
        self.data, self.seen = data, seen
        super().__init__(*args, **kwargs)

    def translate_path(self, path: str) -> str:
        parts = urlsplit(path).path.split("/")
        if len(parts) > 3 and parts[1] == "data" and parts[2] in self.data:
            return str(self.data[parts[2]].joinpath(*map(unquote, parts[3:])))
        return super().translate_path(path)

    def do_GET(self) -> None:
        self.seen.append(urlsplit(self.path).path)
        super().do_GET()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def coffee(tmp_path_factory, photos, encoder) -> Path:
    """A bundle of coffee.png (600×400) beside the photo."""
    folder = tmp_path_factory.mktemp("coffee")
    encode_to_dir(photos["coffee"], encoder, folder / "bundle")
    shutil.copy(photos["coffee"], folder / "coffee.png")
    return folder


def serve(built: dict, data: dict[str, Path]):
    seen: list[str] = []
    handler = functools.partial(_Site, directory=str(built["out"]), data=data, seen=seen)
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, seen


PROMPT = """
const canvas = ctx.page.locator('#photo');
const box = await canvas.boundingBox();
const [w, h] = await canvas.evaluate((c) => [c.width, c.height]);
const at = ([x, y]) => [box.x + (x * box.width) / w, box.y + (y * box.height) / h];
const before = await ctx.page.evaluate(() => window.sam2encExample.seq);
if (args.clear) await ctx.page.click('#clear');
else if (args.drag) {
  await ctx.page.mouse.move(...at(args.drag[0]));
  await ctx.page.mouse.down();
  await ctx.page.mouse.move(...at(args.drag[1]), { steps: 6 });
  await ctx.page.mouse.up();
} else {
  if (args.shift) await ctx.page.keyboard.down('Shift');
  await ctx.page.mouse.click(...at(args.click));
  if (args.shift) await ctx.page.keyboard.up('Shift');
}
await ctx.page.waitForFunction((n) => window.sam2encExample.seq > n, before, { timeout: 120000 });
return ctx.page.evaluate(() => {
  const found = window.sam2encExample.mask();
  const text = found ? Array.from(found.mask, (v) => String.fromCharCode(v)).join('') : '';
  const { prompts } = window.sam2encExample;
  return { prompts, width: found?.width, height: found?.height, mask: btoa(text) };
});
"""

DIRECT = """
return ctx.page.evaluate(async (prompt) => {
  const found = await window.sam2encExample.segment(prompt);
  return { prompts: prompt, width: found.width, height: found.height,
    mask: btoa(Array.from(found.mask, (v) => String.fromCharCode(v)).join('')) };
}, args.prompt);
"""


def test_masks_in_chromium_equal_the_python_decoders(built, coffee, decoder, models_dir, report):
    """The mouse as a user moves it: a click, an exclude (Shift-click), Clear, a box (a drag), then a box
    with a click decoded through the page's hook; each mask at the photo's size against the Python
    decoder's for the prompts the page recorded."""
    server, seen = serve(built, {"bundle": coffee / "bundle", "photo": coffee, "models": models_dir})
    browser = Browser()
    try:
        query = "decoder=/data/models/decoder.onnx&bundle=/data/bundle&photo=/data/photo/coffee.png"
        browser.open(f"http://127.0.0.1:{server.server_address[1]}/?{query}")
        browser.call(
            "await ctx.page.waitForFunction(() => document.querySelector('#status').dataset.state"
            " !== 'loading', null, {timeout: 120000})"
        )
        status = browser.call("return ctx.page.textContent('#status')")
        assert status.startswith("Ready (wasm)"), status
        loaded = list(seen)
        bundle = read_bundle(coffee / "bundle")
        steps = [
            ("click", {"click": (300, 180)}),
            ("click + exclude", {"click": (300, 330), "shift": True}),
            ("clear", {"clear": True}),
            ("box (drag)", {"drag": ((140, 40), (470, 380))}),
        ]
        results = [(name, browser.call(PROMPT, **step)) for name, step in steps]
        prompt = {"points": [[420, 150, 0]], "box": [140, 40, 470, 380]}
        results.append(("box + click (hook)", browser.call(DIRECT, prompt=prompt)))
        errors = [line for line in browser.call("return ctx.console") if "pageerror" in line]
    finally:
        browser.close()
        server.shutdown()
        server.server_close()
    assert errors == []
    overlaps = {}
    for name, got in results:
        prompts = got["prompts"]
        if name == "clear":
            assert prompts == {"points": [], "box": None} and got["mask"] == "", got["prompts"]
            continue
        assert (got["width"], got["height"]) == (bundle.original_width, bundle.original_height)
        mask = np.frombuffer(base64.b64decode(got["mask"]), np.uint8).reshape(got["height"], got["width"])
        prediction = decoder.predict(bundle, points=[tuple(p) for p in prompts["points"]], box=prompts["box"])
        overlaps[name] = round(iou(mask > 0, prediction.masks[prediction.best]), 5)
    assert len(results[1][1]["prompts"]["points"]) == 2 and results[1][1]["prompts"]["points"][1][2] == 0
    assert results[3][1]["prompts"]["box"] is not None and results[3][1]["prompts"]["points"] == []
    first = {path for path in loaded if not path.startswith("/data/")}
    app_bytes = sum(built["files"].get(path.lstrip("/") or "index.html", 0) for path in first)
    data_bytes = sum((coffee / "bundle" / n).stat().st_size for n in ("embedding.bin", "manifest.json"))
    data_bytes += (models_dir / "decoder.onnx").stat().st_size
    report(
        {
            "example": built["name"],
            "first-load bytes (app + runtime)": app_bytes,
            "data": data_bytes,
            **overlaps,
        }
    )
    assert all(value >= 0.999 for value in overlaps.values()), overlaps


LAN = "sam2enc-phone.test"  # resolved to 127.0.0.1 by chromium: a plain-http origin that is not localhost


def test_over_plain_http_from_a_lan_address_bundles_are_verified_without_web_crypto(
    built, coffee, models_dir
):
    """A phone testing against a laptop (http://192.168.x.x) has no crypto.subtle: the bundle is still
    verified (the module's own SHA-256), a corrupted one refused naming sha256, never a TypeError."""
    corrupted = coffee / "corrupted"
    if not corrupted.exists():
        shutil.copytree(coffee / "bundle", corrupted)
        payload = bytearray((corrupted / "embedding.bin").read_bytes())
        payload[4321] ^= 0x10
        (corrupted / "embedding.bin").write_bytes(bytes(payload))
    data = {"bundle": coffee / "bundle", "corrupted": corrupted, "models": models_dir}
    server, _ = serve(built, data)
    browser = Browser()
    try:
        browser.call(
            "await ctx.browser.close();"
            " ctx.launchOptions.args.push(`--host-resolver-rules=MAP ${args.host} 127.0.0.1`);"
            " ctx.browser = await ctx.chromium.launch(ctx.launchOptions)",
            host=LAN,
        )
        found = {}
        for name in ("bundle", "corrupted"):
            browser.open(
                f"http://{LAN}:{server.server_address[1]}/?decoder=/data/models/decoder.onnx&bundle=/data/{name}"
            )
            found[name] = browser.call(
                "await ctx.page.waitForFunction(() => document.querySelector('#status').dataset.state"
                " !== 'loading', null, {timeout: 120000});"
                " return ctx.page.evaluate(() => [isSecureContext, typeof crypto.subtle,"
                " document.querySelector('#status').textContent])"
            )
    finally:
        browser.close()
        server.shutdown()
        server.server_close()
    assert found["bundle"][:2] == [False, "undefined"], "not a secure context: no crypto.subtle"
    assert found["bundle"][2].startswith("Ready (wasm)"), found
    status = found["corrupted"][2]
    assert "embedding.bin does not match the manifest's sha256 (corrupted)" in status, status
    assert "TypeError" not in status and "undefined" not in status, status
