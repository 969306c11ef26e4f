"""The encoder's arithmetic on a GPU: ``$SAM2ENC_PRECISION`` = fp32 | tf32 | fp16, chosen at setup.

- ``fp32``: IEEE fp32 (the CUDA provider's ``use_tf32=0``), what the CPU always computes.
- ``tf32``: the same graph with ``use_tf32=1``: convolutions and matmuls on tensor cores, 10-bit mantissa.
- ``fp16``: ``encoder_fp16.onnx``, made from encoder.onnx by onnxruntime.transformers' float16 converter
  with LayerNorm, Softmax and the ops of a decomposed LayerNorm (ReduceMean, Pow, Sqrt) kept in fp32 —
  their sums overflow or lose the small differences in fp16 — and Resize (``FP32_OPS``), whose
  bilinear weights and positions would be rounded to fp16. Made once and kept beside encoder.onnx
  (or in a cache directory when that one is read-only); making it needs the ``onnx`` package.

Which one is served is a decision with numbers: tools/bench_gpu.py measures each against SAM2's own
bf16-autocast predictor (docs/gpu-serving.md). The CPU serves fp32 whatever is asked (with one warning):
its fp16 is slower and TF32 does not exist there.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path

from .errors import ModelError, ProviderError
from .modeldir import ENCODER_FILE
from .settings import choice

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "tf32", "fp16")
PRECISION_ENV = "SAM2ENC_PRECISION"
DEFAULT_PRECISION = "fp32"
FP16_FILE = "encoder_fp16.onnx"
FP32_OPS = ["LayerNormalization", "Softmax", "ReduceMean", "Pow", "Sqrt", "Resize"]


def precision_from_env() -> str:
    """``$SAM2ENC_PRECISION``, else fp32."""
    return choice(PRECISION_ENV, PRECISIONS, DEFAULT_PRECISION)


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise ProviderError(
            f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r} "
            f"(from ${PRECISION_ENV} or precision=)"
        )
    return precision


def cuda_options(precision: str) -> dict[str, str]:
    """The CUDA provider's options for ``precision``: TF32 only when asked for."""
    return {"use_tf32": "1" if precision == "tf32" else "0"}


def fp16_encoder(models_dir: str | os.PathLike) -> Path:
    """encoder_fp16.onnx for the encoder in ``models_dir``: beside it if present and current, else made
    now (into ``models_dir`` when writable, else a cache directory keyed by the encoder's path and age)."""
    models_dir = Path(models_dir)
    source = models_dir / ENCODER_FILE
    for candidate in (models_dir / FP16_FILE, _cache_dir(source) / FP16_FILE):
        if candidate.exists() and candidate.stat().st_mtime >= source.stat().st_mtime:
            return candidate
    target = models_dir / FP16_FILE if os.access(models_dir, os.W_OK) else _cache_dir(source) / FP16_FILE
    convert_fp16(source, target)
    return target


def convert_fp16(source: Path, target: Path) -> Path:
    """Write ``source`` as fp16 to ``target``: inputs and outputs keep their types, FP32_OPS stay fp32."""
    try:
        import onnx
        from onnxruntime.transformers.float16 import convert_float_to_float16
    except ImportError:
        raise ModelError(
            f"precision fp16 needs {FP16_FILE} beside {ENCODER_FILE} or the onnx package to make it "
            f"(`python -m sam2enc.precision {source.parent}` where onnx is installed)"
        ) from None
    log.info("making %s from %s (fp16, %s kept fp32)", target.name, source, "/".join(FP32_OPS))
    model = convert_float_to_float16(onnx.load(str(source)), keep_io_types=True, op_block_list=FP32_OPS)
    # The converter inserts the same Cast twice when a tensor feeds two fp32-kept nodes: keep one.
    produced: set[str] = set()
    unique = []
    for node in model.graph.node:
        if node.op_type == "Cast" and node.output[0] in produced:
            continue
        produced.update(node.output)
        unique.append(node)
    del model.graph.node[:]
    model.graph.node.extend(unique)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.part")
    onnx.save(model, str(partial))
    partial.replace(target)
    return target


def _cache_dir(source: Path) -> Path:
    key = hashlib.sha256(f"{source.resolve()}:{source.stat().st_mtime_ns}".encode()).hexdigest()[:16]
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path(tempfile.gettempdir()))
    return base / "sam2enc" / key


if __name__ == "__main__":
    import sys

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    print(fp16_encoder(sys.argv[1] if len(sys.argv) > 1 else "weights"))
