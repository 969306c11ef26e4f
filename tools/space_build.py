"""``make space``: the folder to push as a Hugging Face Space, staged into build/space/.

    python -m tools.space_build --models-dir weights --out build/space [--gpu]

It holds space/'s three files (app.py, README.md with the Space's settings, requirements.txt), a copy of
the sam2enc package (without the browser app, which the Space does not serve) and the exported encoder
(``encoder.onnx`` + ``model.json``) in weights/, where app.py looks first. ``--gpu`` pins onnxruntime-gpu
with its CUDA 13 / cuDNN 9 wheels in place of onnxruntime, for GPU hardware. A model directory holding
random weights is refused (``--random-weights`` allows it, for tests). Then push it:
``hf upload you/sam2enc build/space . --repo-type space`` (the .onnx files go through Hugging Face's
large-file storage, which .gitattributes asks for).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPACE = ROOT / "space"
FILES = ("app.py", "README.md", "requirements.txt")
WEIGHTS = ("encoder.onnx", "model.json")
MARKER = ".sam2enc-space"  # a folder holding it was staged here: replaced by the next run
GITATTRIBUTES = "*.onnx filter=lfs diff=lfs merge=lfs -text\n"


def stage(models_dir: Path, out: Path, gpu: bool = False, random_weights: bool = False) -> Path:
    """Write the Space's folder to ``out`` (replacing an earlier one staged here); return ``out``."""
    info = models_dir / "model.json"
    if not all((models_dir / name).is_file() for name in WEIGHTS):
        raise SystemExit(f"{models_dir} holds no exported encoder: run `make weights MODEL=...` first")
    if json.loads(info.read_text()).get("randomWeights") and not random_weights:
        raise SystemExit(f"{models_dir} holds random weights: a Space of them would serve noise")
    if out.exists():
        if not (out / MARKER).is_file():
            raise SystemExit(f"{out} exists and was not staged by this tool: choose another --out")
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for name in FILES:
        shutil.copy2(SPACE / name, out / name)
    if gpu:
        requirements = out / "requirements.txt"
        text = requirements.read_text()
        pin = next(line for line in text.splitlines() if line.startswith("onnxruntime=="))
        requirements.write_text(
            text.replace(pin, pin.replace("onnxruntime==", "onnxruntime-gpu[cuda,cudnn]=="))
        )
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "web")
    shutil.copytree(ROOT / "sam2enc", out / "sam2enc", ignore=ignore)
    (out / "weights").mkdir()
    for name in WEIGHTS:
        shutil.copy2(models_dir / name, out / "weights" / name)
    (out / ".gitattributes").write_text(GITATTRIBUTES)
    (out / MARKER).write_text("staged by tools/space_build.py\n")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.space_build", description=__doc__.split("\n")[0])
    parser.add_argument("--models-dir", type=Path, default=Path("weights"), help="the exported model")
    parser.add_argument("--out", type=Path, default=Path("build/space"), help="the folder to push")
    parser.add_argument("--gpu", action="store_true", help="onnxruntime-gpu, for GPU hardware")
    parser.add_argument("--random-weights", action="store_true", help="allow a random-weight export (tests)")
    args = parser.parse_args(argv)
    out = stage(args.models_dir, args.out, args.gpu, args.random_weights)
    print(f"staged {out}: push it with `hf upload <you>/<space> {out} . --repo-type space`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
