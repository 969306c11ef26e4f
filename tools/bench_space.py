"""The Space's time per photo on this machine: ``python -m tools.bench_space [--models-dir D] [--runs N]``.

Starts ``python -m sam2enc.space`` as the hidden check does, then for each photo times, alternately so
that both see the same load, ``N`` gradio_client ``predict(handle_file(photo), api_name="/predict")``
calls (upload, queue, encode, both files downloaded) and ``N`` in-process ``encode_to_dir`` of the same
photo with the same models (what ``sam2enc encode`` does). Prints p50 / min of each, the Space's own
encoder time from its log, and the load average; writes build/bench-space.json. Without --models-dir:
the random-weight tiny export the tests use (the same arithmetic as the real tiny).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "build" / "bench-space.json"


def photos(folder: Path) -> dict[str, Path]:
    """A 0.26 MP JPEG (the demo photo), a 1 MP JPEG and a 12 MP JPEG made from it."""
    demo = ROOT / "assets" / "astronaut.jpg"
    image = Image.open(demo).convert("RGB")
    found = {"astronaut 512²": demo}
    for name, size in (("1 MP", (1224, 816)), ("12 MP", (4032, 3024))):
        path = folder / f"{name.replace(' ', '')}.jpg"
        image.resize(size, Image.BICUBIC).save(path, quality=90)
        found[f"{name} JPEG"] = path
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench_space", description=__doc__.split("\n")[0])
    parser.add_argument("--models-dir", type=Path, help="exported model (default: the random tiny)")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from gradio_client import Client, handle_file

    from sam2enc.encoder import Encoder
    from sam2enc.pipeline import encode_to_dir
    from sam2enc.testing import cached_random_export
    from tests.test_space import SpaceServer

    models = args.models_dir or cached_random_export(ROOT / ".cache" / "test-models", "tiny")
    work = Path(tempfile.mkdtemp(prefix="bench-space-"))
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    command = [sys.executable, "-m", "sam2enc.space", "--models-dir", str(models)]
    started = time.perf_counter()
    space = SpaceServer(command, work / "space.log")
    startup = time.perf_counter() - started
    rows = []
    try:
        client = Client(space.url, verbose=False, download_files=str(work / "downloads"))
        encoder = Encoder(models, device="cpu")
        for name, photo in photos(work).items():
            client.predict(handle_file(str(photo)), api_name="/predict")  # warm: first upload, first encode
            over_space, local = [], []
            for run in range(args.runs):
                start = time.perf_counter()
                client.predict(handle_file(str(photo)), api_name="/predict")
                over_space.append(time.perf_counter() - start)
                start = time.perf_counter()
                encode_to_dir(photo, encoder, work / "local" / f"{run}")
                local.append(time.perf_counter() - start)
            lines = space.encodes()[-args.runs :]
            encoder_ms = [int(re.search(r"encoder (\d+) ms", line).group(1)) for line in lines]
            rows.append(
                {
                    "photo": name,
                    "space_p50_s": round(statistics.median(over_space), 3),
                    "space_min_s": round(min(over_space), 3),
                    "encode_p50_s": round(statistics.median(local), 3),
                    "encode_min_s": round(min(local), 3),
                    "space_encoder_p50_ms": int(np.median(encoder_ms)),
                }
            )
            print(rows[-1], flush=True)
    finally:
        space.stop()
        shutil.rmtree(work, ignore_errors=True)
    report = {
        "models": str(models),
        "runs": args.runs,
        "cpus": os.cpu_count(),
        "loadavg": os.getloadavg(),
        "space_startup_s": round(startup, 1),
        "rows": rows,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=2) + "\n")
    print(f"Space start-up {startup:.1f} s (import, session, warm-up); load average {os.getloadavg()}")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
