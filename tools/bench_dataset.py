"""Dataset mode in headless chromium (`make bench-web` runs it after the click table): how long "Next
photo" takes to the first mask on a 12 MP photo when its bundle was read ahead (the page's default) and
when it was not (``?ahead=0``: read, verified and converted only once asked for), and the browser's
memory with a folder of 50 such photos open after walking through all of them.

Times are wall clock from the "Next photo" click to the first mask of one include click on screen
(the click is sent as soon as the photo is live), median of the moves. Memory is the resident size of
every chromium process (page, GPU, worker), from /proc, with 50 photos listed and at most the page's
read-ahead window (app/dataset-view.js, worker.js) of decoded photos and bundles alive.

    .venv/bin/python -m tools.bench_dataset [--models-dir weights] [--photos 50] [--moves 6]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from PIL import Image, ImageEnhance

ROOT = Path(__file__).resolve().parents[1]
SIZE = (4000, 3000)


def _folder(scratch: Path, models: Path, count: int) -> Path:
    """`count` distinct 12 MP photos, each with a bundle folder named after it (an older bundle: no
    `source`, so one encode serves them all; it pairs by name and is checked by size)."""
    from sam2enc.bundle import write_bundle
    from sam2enc.encoder import Encoder
    from sam2enc.pipeline import encode

    album = scratch / "album"
    album.mkdir()
    source = Image.open(ROOT / "assets" / "astronaut.jpg").convert("RGB").resize(SIZE, Image.BICUBIC)
    first = album / "photo_000.jpg"
    source.save(first, quality=85)
    template = write_bundle(encode(first, Encoder(models, device="cpu")), scratch / "template")
    manifest = json.loads((template / "manifest.json").read_text())
    manifest.pop("source", None)
    payload = (template / "embedding.bin").read_bytes()
    for i in range(count):
        photo = album / f"photo_{i:03d}.jpg"
        if i:  # a different photo each time: its own bytes, its own sha256
            ImageEnhance.Brightness(source).enhance(0.8 + 0.4 * i / count).save(photo, quality=85)
        bundle = album / "bundles" / photo.stem
        bundle.mkdir(parents=True)
        (bundle / "embedding.bin").write_bytes(payload)
        (bundle / "manifest.json").write_text(json.dumps(manifest))
    return album


def _chromium_rss_mb(driver_pid: int) -> float:
    """Resident MB of every process under the driver (chromium and its helpers)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    total, stack = 0, list(children.get(driver_pid, []))
    while stack:
        pid = stack.pop()
        stack.extend(children.get(pid, []))
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


# The page's own clock: from "Next photo" (the mark dataset-view.js sets) to the photo's "Ready".
OPEN_TO_READY = """return ctx.page.evaluate(() => {
  const last = (name) => performance.getEntriesByName(name).at(-1).startTime;
  return last("sam2enc:ready") - last("sam2enc:open-photo");
})"""
LIVE = (
    "await ctx.page.waitForFunction((n) => window.sam2enc.photoName === n && window.sam2enc.ready,"
    " args.n, {timeout: 300000})"
)


def _moves(browser, base: str, album: Path, ahead: bool, moves: int) -> tuple[list[float], ...]:
    browser.open(f"{base}?backend=wasm{'' if ahead else '&ahead=0'}")
    browser.call("await ctx.page.setInputFiles('#folder', args.dir)", dir=str(album))
    browser.call(LIVE, n="photo_000.jpg")
    times, decodes, live = [], [], []
    for i in range(1, moves + 1):
        if ahead:  # the user looks at the photo for a moment: the read-ahead has finished
            browser.call(
                "await ctx.page.waitForFunction((p) => window.sam2enc.readAhead(p), args.p,"
                " {timeout: 300000})",
                p=f"photo_{i:03d}.jpg",
            )
        start = time.perf_counter()
        browser.call("await ctx.page.click('#next-photo')")
        browser.call(LIVE, n=f"photo_{i:03d}.jpg")
        browser.click(2000, 1500)
        times.append((time.perf_counter() - start) * 1000)
        last = browser.call("return ctx.page.evaluate(() => window.sam2enc.timings.at(-1))")
        decodes.append(last["decoderMs"])
        live.append(browser.call(OPEN_TO_READY))
        browser.call("await ctx.page.keyboard.press('Escape')")
    return times, decodes, live


def run(models_dir: Path, count: int = 50, moves: int = 6, out: Path | None = None) -> dict:
    from sam2enc.web import assets
    from sam2enc.web.proxy import serve
    from tests.web.browser import Browser, missing
    from tools.bench_web import _models

    if why := missing():
        raise SystemExit(f"bench_dataset: {why}")
    models, label = _models(models_dir)
    with tempfile.TemporaryDirectory(prefix="sam2enc-bench-dataset-") as scratch:
        album = _folder(Path(scratch), models, count)
        proxy = serve("127.0.0.1", 0, "http://127.0.0.1:9/v1", models)
        assets.install(proxy, None, "bench")
        threading.Thread(target=proxy.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{proxy.server_address[1]}/"
        browser = Browser()
        try:
            rows = {"model": label, "photo": f"{SIZE[0]}×{SIZE[1]}", "photos in the folder": count}
            for ahead in (True, False):
                times, decodes, live = _moves(browser, base, album, ahead, moves)
                name = "read ahead" if ahead else "cold"
                rows[f"next photo → first mask, {name}, p50 ms"] = round(statistics.median(times))
                rows[f"  of which Next → Ready (page clock), {name}, p50 ms"] = round(statistics.median(live))
                rows[f"  of which the click's decode, {name}, p50 ms"] = round(statistics.median(decodes))
            browser.open(f"{base}?backend=wasm")
            browser.call("await ctx.page.setInputFiles('#folder', args.dir)", dir=str(album))
            browser.call(LIVE, n="photo_000.jpg")
            rows["memory, folder open, MB"] = round(_chromium_rss_mb(browser.process.pid))
            for i in range(1, count):
                browser.call("await ctx.page.click('#next-photo')")
                browser.call(LIVE, n=f"photo_{i:03d}.jpg")
            rows[f"memory after all {count} photos, MB"] = round(_chromium_rss_mb(browser.process.pid))
        finally:
            browser.close()
            proxy.shutdown()
    print(f"\ndataset mode (headless chromium, WASM, load average {os.getloadavg()[0]:.1f}):")
    for key, value in rows.items():
        print(f"  {key}: {value}")
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(rows, indent=2) + "\n")
    return rows


def main(argv: list[str] | None = None) -> int:
    summary = __doc__.splitlines()[0]
    parser = argparse.ArgumentParser(prog="python -m tools.bench_dataset", description=summary)
    parser.add_argument("--models-dir", type=Path, default=ROOT / "weights")
    parser.add_argument("--photos", type=int, default=50)
    parser.add_argument("--moves", type=int, default=6)
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "bench-dataset.json")
    args = parser.parse_args(argv)
    run(args.models_dir, args.photos, args.moves, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
