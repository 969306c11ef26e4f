"""Command line: argument parsing only; the work happens in the modules it calls.

python -m sam2enc export  --model tiny --checkpoint sam2.1_hiera_tiny.pt --out weights/
python -m sam2enc weights --model tiny --out weights/
python -m sam2enc encode  photo.jpg --models weights/ --out bundle/
python -m sam2enc decode  bundle/ --models weights/ --point 410,300,1 --out mask.png
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from .errors import Sam2EncError
from .models import MODELS

DEFAULT_MODELS = "weights"


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        return args.run(args)
    except Sam2EncError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m sam2enc",
        description="SAM2 image encoder as ONNX: export, encode photos into bundles, decode clicks.",
    )
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    p = sub.add_parser("export", help="export a SAM2.1 checkpoint to encoder/decoder ONNX files")
    p.add_argument("--model", required=True, choices=list(MODELS), help="SAM2.1 variant")
    weights = p.add_mutually_exclusive_group(required=True)
    weights.add_argument("--checkpoint", type=Path, help="Meta's checkpoint ({'model': state_dict})")
    weights.add_argument(
        "--random-weights",
        action="store_true",
        help="randomly initialised model, for tests and the offline demo only: its masks are meaningless",
    )
    p.add_argument("--out", type=Path, required=True, help="directory for the .onnx files and model.json")
    p.set_defaults(run=_export)

    p = sub.add_parser("weights", help="download the official checkpoint (sha256-checked) and export it")
    p.add_argument("--model", required=True, choices=list(MODELS), help="SAM2.1 variant")
    p.add_argument("--out", type=Path, default=Path(DEFAULT_MODELS), help="weights directory")
    p.add_argument("--url", help="download from this URL instead of Meta's (a mirror)")
    p.set_defaults(run=_weights)

    p = sub.add_parser("encode", help="encode images into bundles (embedding.bin + manifest.json)")
    p.add_argument("images", nargs="+", type=Path, metavar="IMAGE", help="JPEG, PNG, WebP, GIF, ...")
    p.add_argument("--models", type=Path, default=Path(DEFAULT_MODELS), help="exported model directory")
    p.add_argument(
        "--out",
        type=Path,
        required=True,
        help="bundle directory (must not exist or be empty); with several images, OUT/<stem>/ each",
    )
    p.add_argument("--device", choices=["auto", "cuda", "cpu"], default="auto", help="execution provider")
    p.set_defaults(run=_encode)

    p = sub.add_parser("decode", help="run the decoder on a bundle and write the best mask as a PNG")
    p.add_argument("bundle", type=Path, help="bundle directory (or its manifest.json)")
    p.add_argument("--models", type=Path, default=Path(DEFAULT_MODELS), help="exported model directory")
    p.add_argument(
        "--point",
        action="append",
        default=[],
        metavar="X,Y,LABEL",
        help="a click in pixels of the upright image; LABEL 1 = object, 0 = background (repeatable)",
    )
    p.add_argument("--box", metavar="X0,Y0,X1,Y1", help="a box in pixels of the upright image")
    p.add_argument("--out", type=Path, required=True, help="mask PNG (8-bit, 0/255, original size)")
    p.set_defaults(run=_decode)
    return parser


def _export(args: argparse.Namespace) -> int:
    from .export import export_model

    if args.random_weights:
        print("WARNING: exporting RANDOM weights: bundles and masks from them are meaningless.")
    export_model(args.model, None if args.random_weights else args.checkpoint, args.out)
    return 0


def _weights(args: argparse.Namespace) -> int:
    from .weights import fetch_and_export

    fetch_and_export(args.model, args.out, url=args.url)
    return 0


def _encode(args: argparse.Namespace) -> int:
    from .pipeline import Timings, encode_to_dir
    from .session import Encoder

    targets = _bundle_dirs(args.images, args.out)
    encoder = Encoder(args.models, device=args.device)
    print(f"{encoder.info['model']} on {encoder.provider} (setup {encoder.setup_seconds:.1f} s)")
    failures = 0
    for image, out_dir in targets:
        timings = Timings()
        try:
            encode_to_dir(image, encoder, out_dir, timings)
        except Sam2EncError as exc:
            print(f"error: {exc}", file=sys.stderr)
            failures += 1
            continue
        print(f"{image} -> {out_dir} ({timings})")
    return 2 if failures else 0


def _bundle_dirs(images: list[Path], out: Path) -> list[tuple[Path, Path]]:
    if len(images) == 1:
        return [(images[0], out)]
    stems = [image.stem for image in images]
    clash = sorted({s for s in stems if stems.count(s) > 1})
    if clash:
        raise Sam2EncError(f"several images share the name {clash[0]!r}; their bundles would collide")
    return [(image, out / image.stem) for image in images]


def _decode(args: argparse.Namespace) -> int:
    import numpy as np
    from PIL import Image

    from .bundle import read_bundle
    from .decoder import Decoder

    points = [_numbers(p, 3, "--point X,Y,LABEL") for p in args.point]
    box = _numbers(args.box, 4, "--box X0,Y0,X1,Y1") if args.box else None
    bundle = read_bundle(args.bundle)
    prediction = Decoder(args.models).predict(bundle, points=points, box=box)
    best = prediction.best
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(prediction.masks[best].astype(np.uint8) * 255).save(args.out, format="PNG")
    scores = ", ".join(f"{s:.3f}" for s in prediction.scores)
    coverage = prediction.masks[best].mean() * 100
    print(f"IoU predictions [{scores}]; wrote mask {best} ({coverage:.1f}% of the image) to {args.out}")
    return 0


def _numbers(text: str, count: int, form: str) -> tuple[float, ...]:
    parts = text.split(",")
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != count:
        raise Sam2EncError(f"expected {form}, got {text!r}")
    return values


if __name__ == "__main__":
    sys.exit(main())
