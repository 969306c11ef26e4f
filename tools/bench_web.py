"""Browser latency for `make bench`: the app in headless chromium, WASM and (where chromium has a hardware
WebGPU adapter) WebGPU, one click at a time.

For a 512×512 and a 4000×3000 photo (bundles encoded here with the models served), it clicks N times at
spread-out pixels, each after the previous mask is on screen, and reports from the page's own clock:
decoder p50 (``session.run``) and mask-on-screen p50 (pointer event → mask drawn), plus the time a
full-resolution "Download mask" takes. The goal at 4000×3000: on screen ≤ 1.25 × decoder. WebGPU rows
need a hardware adapter (a software one, SwiftShader, takes ~50 s a click): without one the table says
why it has none.

    .venv/bin/python -m tools.bench_web [--models-dir weights] [--clicks 12] [--out build/bench-web.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SIZES = ((512, 512), (4000, 3000))
# Why chromium cannot run the WebGPU rows, or null: the same test as the page's "auto".
NO_HARDWARE_WEBGPU = """return ctx.page.evaluate(async () => {
  const adapter = await navigator.gpu?.requestAdapter().catch(() => null);
  if (!adapter) return "chromium here offers no WebGPU adapter";
  const { isFallbackAdapter, vendor, architecture } = adapter.info ?? {};
  if (isFallbackAdapter) return `its WebGPU adapter is software (${vendor} ${architecture})`;
  if (typeof WebAssembly.Suspending !== "function") return "this chromium has no JS Promise Integration";
  return null;
})"""


def _models(models_dir: Path) -> tuple[Path, str]:
    from sam2enc.modeldir import ModelInfo
    from sam2enc.web import assets

    if assets.models_ready(models_dir) is None:
        info = ModelInfo.read(models_dir)
        return models_dir, info.model + (" (random weights)" if info.random_weights else "")
    return assets.random_models(assets.RANDOM_MODELS), "sam2.1_hiera_tiny (random weights)"


def run(models_dir: Path, clicks: int = 12, out: Path | None = None) -> list[dict]:
    from sam2enc.bundle import write_bundle
    from sam2enc.encoder import Encoder
    from sam2enc.pipeline import encode
    from sam2enc.web import assets
    from sam2enc.web.proxy import serve
    from tests.web.browser import Browser, missing

    if why := missing():
        raise SystemExit(f"bench_web: {why}")
    models, label = _models(models_dir)
    encoder = Encoder(models, device="cpu")
    rows = []
    with tempfile.TemporaryDirectory(prefix="sam2enc-bench-web-") as scratch:
        proxy = serve("127.0.0.1", 0, "http://127.0.0.1:9/v1", models)
        assets.install(proxy, None, "bench")
        threading.Thread(target=proxy.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{proxy.server_address[1]}/"
        source = Image.open(ROOT / "assets" / "astronaut.jpg").convert("RGB")
        photos = []
        for width, height in SIZES:
            photo = Path(scratch) / f"photo_{width}x{height}.jpg"
            source.resize((width, height), Image.BICUBIC).save(photo, quality=90)
            directory = write_bundle(encode(photo, encoder), Path(scratch) / f"bundle_{width}x{height}")
            files = [str(photo), str(directory / "embedding.bin"), str(directory / "manifest.json")]
            photos.append((width, height, files))
        try:
            for backend in ("wasm", "webgpu"):
                browser = Browser(webgpu=backend == "webgpu")
                try:
                    if backend == "webgpu":
                        browser.open(base)
                        if why := browser.call(NO_HARDWARE_WEBGPU):
                            rows.append({"backend": "webgpu", "photo": f"not measured: {why}"})
                            continue
                    for width, height, files in photos:
                        rows.append(
                            _measure(browser, base, backend, width, height, files, clicks, Path(scratch))
                        )
                finally:
                    browser.close()
        finally:
            proxy.shutdown()
    print(f"\nbrowser (headless chromium, {label}):")
    columns = list(rows[0])
    print(" | ".join(columns))
    for row in rows:
        print(" | ".join(str(row.get(c, "")) for c in columns))
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"model": label, "rows": rows}, indent=2) + "\n")
    return rows


def _measure(
    browser, base: str, backend: str, width: int, height: int, files, clicks: int, scratch: Path
) -> dict:
    browser.open(f"{base}?backend={backend}")
    browser.call("await ctx.page.setInputFiles('#bundle', args.files)", files=files)
    state = browser.ready()
    assert state["status"].startswith(f"Ready ({backend}"), state["status"]
    for i in range(clicks):
        browser.call("await ctx.page.keyboard.press('Escape')")
        browser.click(width * (0.15 + 0.7 * ((i * 7) % clicks) / clicks), height * (0.2 + 0.6 * i / clicks))
    start = time.perf_counter()
    browser.download("#download-mask", scratch / f"mask_{backend}_{width}")
    export_ms = (time.perf_counter() - start) * 1000
    times = browser.call("return ctx.page.evaluate(() => window.sam2enc.timings)")
    display = browser.state()["display"]
    decoder = statistics.median(t["decoderMs"] for t in times)
    screen = statistics.median(t["onScreenMs"] for t in times)
    return {
        "backend": backend,
        "photo": f"{width}×{height}",
        "display mask": f"{display['w']}×{display['h']}",
        "clicks": len(times),
        "decoder p50 ms": round(decoder, 1),
        "on screen p50 ms": round(screen, 1),
        "on screen / decoder": round(screen / decoder, 2),
        "full-res download ms": round(export_ms),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench_web", description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", type=Path, default=ROOT / "weights")
    parser.add_argument("--clicks", type=int, default=12)
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "bench-web.json")
    args = parser.parse_args(argv)
    run(args.models_dir, args.clicks, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
