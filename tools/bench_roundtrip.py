"""The encode round trip for `make bench`: photo picked → first mask on screen, over a simulated link.

Headless chromium opens the app through ``tools/slow_link.py`` (the user's link: 20 Mbit/s up, 50 Mbit/s
down, 40 ms round trip, paced on loopback) in front of the token proxy as users run it (``python -m
sam2enc.web serve --upstream <stand-in>``), whose upstream is the Replicate stand-in
(``tests/replicate_standin.py``) serving the real predictor on this CPU (random-weight tiny from
``sam2enc.testing.cached_random_export``; its cache of encodings is cleared, so every prediction runs
the encoder). For a 12 MP JPEG and a 1 MP photo, each page mode — ``before`` (the page as it was: no
``Prefer``, a GET every 1 s), ``no-prefer`` (no ``Prefer``, today's 250–500 ms polling) and ``sync``
(``Prefer: wait=60``, the page's default) — encodes once, clicks the photo's centre as soon as it is
ready, and the time is split from the page's own marks (``performance.mark("sam2enc:…")`` in
app/replicate.js and app/main.js), the stand-in's clock and the relay's byte log:

- upload: the photo's POST /api/files (the model lookup before it is its own column);
- create + predict: the create request sent → the prediction final on the stand-in (queue + the real
  CPU encoder, which is also reported alone);
- waiting slack: final on the stand-in → the page has the final answer (polling's cost);
- download: both output files; parse: the bundle checked (sha256, layout); first decode: the decoder's
  warm-up on the new bundle, then the click → mask on screen.

    .venv/bin/python -m tools.bench_roundtrip [--out build/bench-roundtrip.json] [--repeat 1]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "test-models"  # the suite's export (same key, same files): no second export
TOKEN = "r8_bench_roundtrip"
UP_MBIT, DOWN_MBIT, RTT_MS = 20, 50, 40
MODES = {  # name → page query
    "before": "wait=0&poll=1000",
    "no-prefer": "wait=0",
    "sync": "",
}
PHASES = ("lookup", "upload", "create + predict", "waiting slack", "download", "parse", "first decode")

FILL = "await ctx.page.fill('#token', args.t); await ctx.page.fill('#version', 'me/sam2enc')"
RUN_JS = """
const page = ctx.page;
await page.evaluate(() => { performance.clearMarks(); performance.clearResourceTimings();
  performance.setResourceTimingBufferSize(1000); performance.mark('sam2enc:picked'); });
await page.setInputFiles('#photo', args.photo);
await page.waitForFunction(() => !document.querySelector('#encode').disabled, null, { timeout: 120000 });
await page.click('#encode');
await page.waitForFunction(
  () => window.sam2enc.ready || document.querySelector('#status').dataset.state === 'error',
  null, { timeout: 600000, polling: 'raf' });
const [w, h] = await page.evaluate(() => window.sam2enc.size);
await ctx.click(w / 2, h / 2);
await ctx.settled();
return page.evaluate(() => ({
  origin: performance.timeOrigin,
  marks: performance.getEntriesByType('mark').map((m) => [m.name, m.startTime]),
  fetches: performance.getEntriesByType('resource').map((r) => [new URL(r.name), r])
    .filter(([u]) => u.pathname.startsWith('/api/'))
    .map(([u, r]) => ({ path: u.pathname, output: u.search.startsWith('?url='),
      start: r.startTime, end: r.responseEnd })),
  last: window.sam2enc.last, status: document.querySelector('#status').textContent,
  remote: document.querySelector('#remote-status').textContent,
}));
"""


def photos(directory: Path) -> dict[str, Path]:
    """A 12 MP JPEG the size of a phone's (scikit-image's coffee at 4032×3024 with sensor-like noise) and
    the same photo at 1 MP."""
    from tests.conftest import skimage_data

    coffee = Image.open(skimage_data() / "coffee.png").convert("RGB")
    big = np.asarray(coffee.resize((4032, 3024), Image.BICUBIC), np.float32)
    big += np.random.default_rng(0).normal(0, 6, big.shape)
    out = {"12 MP JPEG": directory / "photo_12mp.jpg", "1 MP JPEG": directory / "photo_1mp.jpg"}
    Image.fromarray(big.clip(0, 255).astype(np.uint8)).save(out["12 MP JPEG"], quality=90)
    coffee.resize((1155, 866), Image.BICUBIC).save(out["1 MP JPEG"], quality=90)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_proxy(models: Path, upstream: str) -> tuple[subprocess.Popen, int]:
    """The proxy as a user starts it, in its own process; returns once it answers."""
    port = free_port()
    command = [sys.executable, "-m", "sam2enc.web", "serve", "--upstream", upstream, "--port", str(port)]
    command += ["--models-dir", str(models), "--no-demo"]
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    for _ in range(600):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1).close()
            return process, port
        except OSError:
            if process.poll() is not None:
                raise SystemExit(f"bench_roundtrip: the proxy exited: {process.stderr.read()}") from None
            time.sleep(0.1)
    raise SystemExit("bench_roundtrip: the proxy did not start in 60 s")


def timed_standin(models: Path):
    """The stand-in, recording when each prediction's encoder ran and when it became final."""
    from tests.replicate_standin import ReplicateStandIn

    class Timed(ReplicateStandIn):
        def __init__(self, *args) -> None:
            self.encoder_runs: list[tuple[float, float]] = []
            self.final_at: dict[str, float] = {}
            super().__init__(*args)

        def encode(self, photo: bytes) -> dict[str, bytes]:
            self.encoded.clear()  # every prediction runs the real encoder
            start = time.time()
            files = super().encode(photo)
            self.encoder_runs.append((start, time.time()))
            return files

        def _finish(self, prediction: dict, status: str, **fields: object) -> None:
            super()._finish(prediction, status, **fields)
            self.final_at.setdefault(prediction["id"], time.time())

    return Timed(models, TOKEN)


def wait_quiet(relay, seconds: float = 1.5, limit: float = 120) -> None:
    """Until the link has been idle for ``seconds``: the page, onnxruntime-web and decoder.onnx loaded."""
    until = time.time() + limit
    while relay.quiet_for() < seconds and time.time() < until:
        time.sleep(0.1)


def split(result: dict, standin, relay, since: int, photo_bytes: int) -> dict:
    """One run's phases in ms, from the page's marks (to wall clock via timeOrigin), the stand-in's clock
    and the relay's log (chunks from index ``since``)."""
    at = {name.removeprefix("sam2enc:"): (result["origin"] + t) / 1000 for name, t in result["marks"]}
    (pid, final_at), *_ = standin.final_at.items()
    encoder = standin.encoder_runs[-1]
    chunks = relay.log[since:]

    def ms(a: float, b: float) -> float:
        return round((b - a) * 1000, 1)

    def moved(direction: str, start: float, end: float) -> int:
        return sum(
            c.nbytes for c in chunks if c.direction == direction and start <= c.delivered <= end + 0.05
        )

    requests = [c.request for c in chunks if c.request and " /api/" in c.request]
    outputs = [f for f in result["fetches"] if f["output"]]
    row = {
        "photo bytes": photo_bytes,
        "lookup": ms(at["encode"], at["upload-start"]),
        "upload": ms(at["upload-start"], at["upload-end"]),
        "create + predict": ms(at["create-start"], final_at),
        "of which encoder (CPU)": ms(*encoder),
        "waiting slack": ms(final_at, at["final"]),
        "download": ms(at["download-start"], at["download-end"]),
        "parse": ms(at["download-end"], at["parsed"]),
        "first decode": ms(at["parsed"], at["mask"]),
        "of which warm-up": ms(at["parsed"], at["ready"]),
        "of which click → mask": round(result["last"]["onScreenMs"], 1),
        "pick → Encode enabled": ms(at["picked"], at["encode"]),
        "bench click delay": round(ms(at["ready"], at["mask"]) - result["last"]["onScreenMs"], 1),
    }
    row["total"] = round(sum(row[p] for p in PHASES), 1)
    row["pick → mask (wall)"] = ms(at["picked"], at["mask"])
    row["status GETs"] = sum(r.startswith("GET /api/predictions/") for r in requests)
    row["API requests"] = len(requests)
    row["bytes up (upload)"] = moved("up", at["upload-start"], at["upload-end"])
    row["bytes down (download)"] = moved("down", at["download-start"], at["download-end"])
    row["upload on the wire"] = round(row["bytes up (upload)"] * 8 / (UP_MBIT * 1e6) * 1000, 1)
    row["download on the wire"] = round(row["bytes down (download)"] * 8 / (DOWN_MBIT * 1e6) * 1000, 1)
    if len(outputs) == 2:  # one file after the other: the first's time is what a parallel fetch saves
        row["first output fetch"] = round(outputs[0]["end"] - outputs[0]["start"], 1)
    row["prediction"] = pid
    return row


GPU_PREDICT_MS = 152  # whole predict() of a 12 MP JPEG, tiny, H100 (docs/performance.md, make bench-gpu)


def levers(rows: list[dict]) -> list[str]:
    """What dominates and what each remaining lever would save, computed from the rows (sync mode)."""
    by = {(r["photo"], r["mode"]): r for r in rows}
    out = []
    for photo in dict.fromkeys(r["photo"] for r in rows):
        sync, before = by.get((photo, "sync")), by.get((photo, "before"))
        if not sync:
            continue
        total, encoder = sync["total"], sync["of which encoder (CPU)"]
        parts = {p: sync[p] for p in PHASES}
        top = max(parts, key=parts.get)
        network = sync["lookup"] + sync["upload"] + sync["download"] + sync["waiting slack"]
        browser = sync["parse"] + sync["first decode"]
        out.append(
            f"{photo}, sync: {total / 1000:.2f} s, largest part {top} ({parts[top] / total:.0%}; the CPU "
            f"encoder {encoder / total:.0%}); network {network / total:.0%}, parse + first decode "
            f"{browser / total:.0%}"
        )
        gpu = total - encoder + GPU_PREDICT_MS
        out.append(
            f"  with a GPU predictor ({GPU_PREDICT_MS} ms) instead: {gpu / 1000:.2f} s, of which network "
            f"{network / gpu:.0%} (download {sync['download'] / gpu:.0%}, "
            f"upload {sync['upload'] / gpu:.0%}), "
            f"parse + first decode {browser / gpu:.0%}"
        )
        if before:
            slack = before["waiting slack"] - sync["waiting slack"]
            out.append(
                f"  sync mode: −{slack:.0f} ms of waiting slack ({before['waiting slack']:.0f} → "
                f"{sync['waiting slack']:.0f} ms), status GETs {before['status GETs']:.0f} → "
                f"{sync['status GETs']:.0f}"
            )
        per_mib = sync["download"] / (sync["bytes down (download)"] / 2**20)
        out.append(f"  a bundle 4 MiB smaller: −{4 * per_mib:.0f} ms ({per_mib:.0f} ms per MiB on this link)")
        if "first output fetch" in sync:
            out.append(f"  both output files fetched at once: −{sync['first output fetch']:.0f} ms")
        out.append(f"  the version cached (no model lookup): −{sync['lookup']:.0f} ms")
    small, big = by.get(("1 MP JPEG", "sync")), by.get(("12 MP JPEG", "sync"))
    if small and big:
        out.append(
            f"12 MP sent as a 1 MP JPEG: −{big['upload'] - small['upload']:.0f} ms upload "
            f"({big['photo bytes'] / 1e6:.1f} → {small['photo bytes'] / 1e6:.2f} MB; changes the features)"
        )
    return out


def table(rows: list[dict]) -> str:
    columns = ["photo", "mode", *PHASES, "total", "of which encoder (CPU)", "status GETs", "API requests"]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = [row[c] if isinstance(row[c], str) else f"{row[c]:,.0f}" for c in columns]
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    return "\n".join(lines)


def run(out: Path | None, repeat: int = 1, modes: list[str] | None = None) -> list[dict]:
    from sam2enc.testing import cached_random_export
    from tests.web.browser import Browser, missing
    from tools.slow_link import SlowLink

    if why := missing():
        raise SystemExit(f"bench_roundtrip: {why}")
    models = cached_random_export(CACHE, "tiny")
    standin = timed_standin(models)
    proxy, port = start_proxy(models, f"{standin.url}/v1")
    relay = SlowLink(("127.0.0.1", port), UP_MBIT, DOWN_MBIT, RTT_MS)
    browser = Browser()
    rows: list[dict] = []
    try:
        with tempfile.TemporaryDirectory(prefix="sam2enc-roundtrip-") as scratch:
            for photo_name, photo in photos(Path(scratch)).items():
                for mode in modes or list(MODES):
                    runs = []
                    for _ in range(repeat):
                        standin.reset()
                        standin.final_at.clear()
                        query = "&".join(filter(None, ["backend=wasm", MODES[mode]]))
                        browser.open(f"http://127.0.0.1:{relay.port}/?{query}")
                        wait_quiet(relay)
                        browser.call("await ctx.page.click('summary')")
                        browser.call(FILL, t=TOKEN)
                        since = len(relay.log)
                        result = browser.call(RUN_JS, photo=str(photo))
                        if "Encoded in" not in result["remote"]:
                            raise SystemExit(f"bench_roundtrip: the encode failed: {result['status']}")
                        runs.append(split(result, standin, relay, since, photo.stat().st_size))
                    row = {"photo": photo_name, "mode": mode}
                    for key in runs[0]:
                        values = [r[key] for r in runs]
                        row[key] = (
                            statistics.median(values) if isinstance(values[0], int | float) else values[0]
                        )
                    row["total"] = round(sum(row[p] for p in PHASES), 1)  # the median parts add up
                    row["runs"] = runs
                    rows.append(row)
                    print(f"{photo_name} {mode}: total {row['total']:.0f} ms", file=sys.stderr)
    finally:
        browser.close()
        relay.close()
        proxy.terminate()
        proxy.wait(timeout=10)
        standin.close()
    link = f"{UP_MBIT} Mbit/s up, {DOWN_MBIT} Mbit/s down, {RTT_MS} ms RTT"
    print(f"\nround trip (headless chromium, WASM; proxy → stand-in → random tiny on this CPU; {link}), ms:")
    print(table(rows))
    notes = levers(rows)
    print("\n" + "\n".join(notes))
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        meta = {"link": link, "cpu cores": os.cpu_count(), "repeat": repeat}
        out.write_text(
            json.dumps({**meta, "rows": rows, "levers": notes}, indent=2, ensure_ascii=False) + "\n"
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.bench_roundtrip", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "bench-roundtrip.json")
    parser.add_argument("--repeat", type=int, default=1, help="runs per photo and mode (the median is shown)")
    parser.add_argument("--mode", action="append", choices=list(MODES), help="only these page modes")
    args = parser.parse_args(argv)
    run(args.out, args.repeat, args.mode)
    return 0


if __name__ == "__main__":
    sys.exit(main())
