"""Command line (``sam2enc`` or ``python -m sam2enc``): argument parsing only; the modules do the work.

sam2enc weights --model tiny                     # download Meta's checkpoint, then export it
sam2enc export  --model tiny --checkpoint sam2.1_hiera_tiny.pt
sam2enc encode  photo.jpg --out bundle/
sam2enc encode  --space you/sam2enc photos/*.jpg --out bundles/   # on a Gradio Space (sam2enc.space_client)
sam2enc decode  bundle/ --point 410,300,1 --out mask.png
sam2enc decode  bundle/ --prompts objects.json --coco coco.json   # several objects, COCO RLE (sam2enc.coco)
sam2enc decode  bundles/ --prompts dataset.json --coco coco.json  # a folder of bundles (sam2enc.dataset)
sam2enc polygons coco.json --out coco-polygons.json             # RLE -> polygons (sam2enc.polygons)

Every command takes ``--models-dir`` (default weights/) and ``-v`` (debug logging, third-party warnings);
``--out`` is only ever what a command writes (encode: the bundle directory, decode: the mask PNG).
A plain ``pip install .`` lacks ONNX Runtime and the export toolchain: the commands that need them say in
one sentence what to install (sam2enc.extras) instead of failing with a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from .errors import Sam2EncError, Terminated
from .extras import MissingDependency, explain, require_export, require_runtime
from .flags import add_legacy_models_dir, add_models_dir
from .modeldir import DEFAULT_MODELS_DIR
from .models import MODELS

# sam2enc.encoder.DEVICES (a test keeps them equal), not imported: that module needs ONNX Runtime, and
# `sam2enc export --help` must work without it.
DEVICES = ("auto", "cuda", "cpu")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(format="%(message)s", level=logging.WARNING)
    logging.getLogger("sam2enc").setLevel(logging.DEBUG if args.verbose else logging.INFO)
    try:
        return args.run(args)
    except (Sam2EncError, MissingDependency) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return getattr(exc, "exit_code", 2)
    except ModuleNotFoundError as exc:  # an optional dependency imported mid-command
        if (sentence := explain(exc)) is None:
            raise
        print(f"error: {sentence}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Terminated:  # a second SIGTERM while the first one's cancels were being sent
        return Terminated.exit_code


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    add_models_dir(
        common,
        DEFAULT_MODELS_DIR,
        f"exported model directory: the .onnx files and model.json (default {DEFAULT_MODELS_DIR}/)",
    )
    common.add_argument("-v", "--verbose", action="store_true", help="debug logging, every warning shown")
    parser = argparse.ArgumentParser(
        prog="sam2enc",
        description="SAM2 image encoder as ONNX: export, encode photos into bundles, decode clicks.",
    )
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    def add(name: str, help: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help, parents=[common])

    p = add("export", "export a SAM2.1 checkpoint to encoder/decoder ONNX files in --models-dir")
    p.add_argument("--model", required=True, choices=list(MODELS), help="SAM2.1 variant")
    weights = p.add_mutually_exclusive_group(required=True)
    weights.add_argument("--checkpoint", type=Path, help="Meta's checkpoint ({'model': state_dict})")
    weights.add_argument(
        "--random-weights",
        action="store_true",
        help="randomly initialised model, for tests and the offline demo only: its masks are meaningless",
    )
    add_legacy_models_dir(p, "--out")  # 0.1.0: export --out meant the model directory
    p.set_defaults(run=_export)

    p = add("weights", "download the official checkpoint (sha256-checked) into --models-dir and export it")
    p.add_argument("--model", required=True, choices=list(MODELS), help="SAM2.1 variant")
    p.add_argument("--url", help="download from this URL instead of Meta's (a mirror)")
    add_legacy_models_dir(p, "--out")
    p.set_defaults(run=_weights)

    p = add("encode", "encode images into bundles (embedding.bin + manifest.json)")
    p.add_argument("images", nargs="+", type=Path, metavar="IMAGE", help="JPEG, PNG, WebP, GIF, ...")
    p.add_argument(
        "--out",
        type=Path,
        required=True,
        help="bundle directory: new, empty, or an earlier bundle (replaced once the new one is complete; "
        "a folder holding other files is refused); with several images, OUT/<stem>/ each",
    )
    p.add_argument("--device", choices=DEVICES, default="auto", help="execution provider")
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--remote",
        metavar="MODEL",
        help="encode on Replicate instead (owner/name[:version]) into OUT/<stem>/ each; token from "
        "$REPLICATE_API_TOKEN, API from $REPLICATE_BASE_URL; a rerun skips bundles already written",
    )
    where.add_argument(
        "--space",
        metavar="SPACE",
        help="encode on a Gradio Space instead (owner/space or its URL; python -m sam2enc.space) into "
        "OUT/<stem>/ each; $HF_TOKEN for a private Space; a rerun skips bundles already written",
    )
    p.add_argument(
        "--concurrency", type=int, default=4, metavar="N", help="--remote/--space: predictions in flight"
    )
    p.set_defaults(run=_encode)

    p = add("decode", "run the decoder on a bundle and write the best mask as a PNG")
    p.add_argument(
        "bundle",
        type=Path,
        help="bundle directory (or its manifest.json); or, with a dataset's --prompts and --coco, a folder "
        "of bundles (searched recursively, each paired with its image by sha256, else by name and size)",
    )
    p.add_argument(
        "--point",
        action="append",
        default=[],
        metavar="X,Y,LABEL",
        help="a click in pixels of the upright image; LABEL 1 = object, 0 = background (repeatable)",
    )
    p.add_argument("--box", metavar="X0,Y0,X1,Y1", help="a box in pixels of the upright image")
    p.add_argument("--out", type=Path, help="mask PNG (8-bit, 0/255, original size), for --point/--box")
    p.add_argument(
        "--prompts",
        type=Path,
        metavar="FILE",
        help='objects: a COCO file from the page or this command, or {"objects": [{"points", "box", '
        '"label"}]} (use with --coco); with a folder of bundles, a dataset COCO file (several images)',
    )
    p.add_argument("--coco", type=Path, metavar="OUT.json", help="write the masks as one COCO document (RLE)")
    p.set_defaults(run=_decode)

    p = add("polygons", "rewrite a COCO file's RLE masks as polygons (outer outlines; holes filled)")
    p.add_argument("coco", type=Path, metavar="IN.json", help="a COCO file from the page or decode --coco")
    p.add_argument("--out", type=Path, required=True, metavar="OUT.json", help="the COCO file to write")
    p.add_argument(
        "--tolerance",
        type=float,
        default=1.0,
        metavar="PX",
        help="simplify within this many pixels of the mask's outline (default 1; 0 keeps every corner)",
    )
    p.set_defaults(run=_polygons)
    return parser


def _export(args: argparse.Namespace) -> int:
    require_export()
    if args.random_weights:
        from .testing import export_random

        export_random(args.model, args.models_dir)
        return 0
    from .export import export_model

    export_model(args.model, args.checkpoint, args.models_dir)
    return 0


def _weights(args: argparse.Namespace) -> int:
    """Download, then export: the two steps live in their own modules and meet only here."""
    require_export()  # before a download of up to 900 MB, not after
    from .download import download
    from .export import export_model
    from .models import get_model

    spec = get_model(args.model)
    checkpoint = download(
        args.url or spec.checkpoint_url, args.models_dir / spec.checkpoint_filename, spec.sha256
    )
    export_model(args.model, checkpoint, args.models_dir)
    return 0


def _encode(args: argparse.Namespace) -> int:
    if args.remote:
        from .remote import encode_on_replicate

        return encode_on_replicate(args.images, args.remote, args.out, args.concurrency)
    if args.space:
        from .space_client import encode_on_space

        return encode_on_space(args.images, args.space, args.out, args.concurrency)
    require_runtime()
    from .encoder import Encoder
    from .pipeline import Timings, encode_to_dir

    targets = _bundle_dirs(args.images, args.out)
    encoder = Encoder(args.models_dir, device=args.device)
    print(f"{encoder.info.model} on {encoder.provider} (setup {encoder.setup_seconds:.1f} s)")
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
    require_runtime()
    import numpy as np
    from PIL import Image

    from .bundle import read_bundle
    from .decoder import Decoder

    points = [_numbers(p, 3, "--point X,Y,LABEL") for p in args.point]
    box = _numbers(args.box, 4, "--box X0,Y0,X1,Y1") if args.box else None
    if args.coco or args.prompts:
        from .coco import decode_to_coco
        from .dataset import decode_dataset, is_bundle_folder

        if not is_bundle_folder(args.bundle):
            return decode_dataset(
                args.bundle, args.models_dir, args.coco, args.prompts, points, box, args.out
            )
        return decode_to_coco(args.bundle, args.models_dir, args.coco, args.prompts, points, box, args.out)
    if args.out is None:
        raise Sam2EncError("decode writes its mask to --out MASK.png (or every object to --coco OUT.json)")
    bundle = read_bundle(args.bundle)
    prediction = Decoder(args.models_dir).predict(bundle, points=points, box=box)
    best = prediction.best
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(prediction.masks[best].astype(np.uint8) * 255).save(args.out, format="PNG")
    scores = ", ".join(f"{s:.3f}" for s in prediction.scores)
    coverage = prediction.masks[best].mean() * 100
    print(f"IoU predictions [{scores}]; wrote mask {best} ({coverage:.1f}% of the image) to {args.out}")
    return 0


def _polygons(args: argparse.Namespace) -> int:
    from .polygons import convert_file

    convert_file(args.coco, args.out, args.tolerance)
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
