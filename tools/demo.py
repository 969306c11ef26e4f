"""`make demo`: the whole chain offline on a real photo — predictor → bundle → one click → mask PNG.

With exported real weights in weights/ it uses them. Without, it exports a randomly initialised SAM2.1
tiny into a temporary directory first and says loudly that the masks mean nothing: the point is then to
show that every step runs, not to segment.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from sam2enc.flags import add_models_dir
from sam2enc.modeldir import DEFAULT_MODELS_DIR, MODELS_DIR_ENV

ROOT = Path(__file__).resolve().parents[1]
PHOTO = ROOT / "assets" / "astronaut.jpg"
RANDOM_MODELS = ROOT / ".cache" / "random-models"  # shared with `make web`
CLICK = (235, 160, 1)  # the astronaut's face, in pixels of the 512×512 photo


def _banner(text: str) -> None:
    line = "!" * 78
    print(f"\n{line}\n{text}\n{line}\n", flush=True)


def _models(models_dir: Path) -> Path:
    from sam2enc.modeldir import MODEL_INFO_FILE, ModelInfo
    from sam2enc.testing import cached_random_export

    if (models_dir / MODEL_INFO_FILE).exists():
        if ModelInfo.read(models_dir).random_weights:
            _banner(f"{models_dir}/ holds RANDOM weights: the chain runs, but its MASKS ARE MEANINGLESS.")
        else:
            print(f"using the exported model in {models_dir}")
        return models_dir
    _banner(
        f"No real weights in {models_dir}/ (run `make weights MODEL=tiny` for them).\n"
        "Using a RANDOMLY INITIALISED SAM2.1 tiny instead (exported once into .cache/): the chain\n"
        "runs end to end, but its MASKS ARE MEANINGLESS."
    )
    return cached_random_export(RANDOM_MODELS)


def overlay(rgb: np.ndarray, mask: np.ndarray, click: tuple[float, float]) -> Image.Image:
    """The photo with the mask tinted blue and the click marked, for people to look at."""
    tinted = rgb.astype(np.float32)
    tinted[mask] = 0.45 * tinted[mask] + 0.55 * np.array([30, 144, 255], np.float32)
    image = Image.fromarray(tinted.astype(np.uint8))
    x, y = (int(v) for v in click)
    for dx in range(-6, 7):
        for dy in (-1, 0, 1):
            for px, py in ((x + dx, y + dy), (x + dy, y + dx)):
                if 0 <= px < image.width and 0 <= py < image.height:
                    image.putpixel((px, py), (255, 60, 60))
    return image


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.demo", description=__doc__.splitlines()[0])
    add_models_dir(parser, ROOT / DEFAULT_MODELS_DIR, "exported model directory (else a random export)")
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "demo", help="where the demo's files go")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging, every warning shown")
    args = parser.parse_args(argv)
    logging.basicConfig(format="%(message)s")
    logging.getLogger("sam2enc").setLevel(logging.DEBUG if args.verbose else logging.INFO)

    from cog import Path as CogPath

    from sam2enc.bundle import read_bundle
    from sam2enc.decoder import Decoder
    from sam2enc.image import load_image

    models = _models(args.models_dir)
    os.environ[MODELS_DIR_ENV] = str(models)
    sys.path.insert(0, str(ROOT))
    from predict import Predictor

    predictor = Predictor()
    predictor.setup()
    embedding, manifest = asyncio.run(predictor.run(image=CogPath(PHOTO)))  # as Cog awaits it
    bundle = read_bundle(embedding.parent)
    print(f"bundle: {embedding} ({embedding.stat().st_size:,} bytes) + {manifest.name}")

    prediction = Decoder(models).predict(bundle, points=[CLICK])
    best = prediction.best
    args.out.mkdir(parents=True, exist_ok=True)
    for path in (embedding, manifest):
        (args.out / path.name).write_bytes(path.read_bytes())
    mask_path, overlay_path = args.out / "mask.png", args.out / "overlay.png"
    Image.fromarray(prediction.masks[best].astype(np.uint8) * 255).save(mask_path)
    overlay(load_image(PHOTO).rgb, prediction.masks[best], CLICK[:2]).save(overlay_path)
    scores = ", ".join(f"{s:.3f}" for s in prediction.scores)
    coverage = prediction.masks[best].mean()
    print(f"click {CLICK[:2]} → IoU predictions [{scores}], mask {best} covers {coverage:.1%}")
    print(f"wrote {args.out}/: embedding.bin, manifest.json, mask.png, overlay.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
