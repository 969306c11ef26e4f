"""`make bench-gpu`: the encoder on the GPU, every serving variant side by side, parity next to each.

For each model (random-weight tiny and large unless ``--models-dir`` names exported ones): encoder p50/p95
for fp32 on the CUDA execution provider, fp32 with I/O binding (input and outputs bound on the device),
and the fp16 encoder (LayerNorm/Softmax kept in fp32), each with its relative L2 against the PyTorch
model on the same device and input; then the whole ``predict()`` path (EncoderService: decode, EXIF,
resize, encoder, fp16 bundle write) for a 12 MP JPEG. Results go into ``build/bench.json`` under "gpu".

``--device cpu`` runs the same table on the CPU provider (a smoke test of this script, not a benchmark).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort

from sam2enc.bundle import TENSORS
from sam2enc.encoder import CUDA, create_session, session_options
from sam2enc.export import relative_l2
from sam2enc.modeldir import ENCODER_FILE, ModelInfo
from sam2enc.testing import cached_random_export
from tools.bench import CACHE, ROOT, _runner, fp16_encoder, machine, ms, test_jpegs, timed


def percentiles(times: list[float]) -> dict:
    ordered = sorted(times)
    return {
        "p50_ms": ms(ordered[len(ordered) // 2]),
        "p95_ms": ms(ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]),
    }


def torch_reference(models: Path, image: np.ndarray, device: str) -> dict[str, np.ndarray] | None:
    """The PyTorch model the ONNX file came from (its checkpoint lies beside it), fp32, on ``device``."""
    import torch

    from sam2enc.export import EncoderGraph, load_sam2

    info = ModelInfo.read(models)
    checkpoint = next(iter(models.glob("random_*.pt")), models / f"{info.model}.pt")
    if not checkpoint.exists():
        return None
    torch_device = "cuda" if device == "cuda" and torch.cuda.is_available() else "cpu"
    # IEEE fp32, as on the CPU: cuDNN's convolutions default to TF32 on Ampere and later.
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    graph = EncoderGraph(load_sam2(info.size, checkpoint)).eval().to(torch_device)
    with torch.no_grad():
        outputs = graph(torch.from_numpy(image).to(torch_device))
    # EncoderGraph casts to fp16 at the end, as the ONNX graph does; compare like with like.
    result = {name: value.float().cpu().numpy() for name, value in zip(TENSORS, outputs)}
    del graph
    if torch_device == "cuda":
        torch.cuda.empty_cache()
    return result


def bench_model(models: Path, jpeg: Path, device: str, runs: int) -> dict:
    from sam2enc.image import load_image
    from sam2enc.preprocess import preprocess
    from sam2enc.service import EncoderService

    info = ModelInfo.read(models)
    print(f"\n== {info.model}{' (random weights)' if info.random_weights else ''} in {models}", flush=True)
    image = preprocess(load_image(jpeg))
    reference = torch_reference(models, image, device)
    reference_name = "torch fp32"
    if reference is None:
        reference_name = "ORT fp32 CPU"
        session = create_session(models / ENCODER_FILE, "cpu")
        reference = dict(zip(TENSORS, session.run(list(TENSORS), {"image": image})))
    row: dict = {"model": info.model, "parity_reference": reference_name, "encoder": {}}
    provider_device = "cuda" if device == "cuda" else "cpu"
    for variant, path, mode, tf32 in (
        ("fp32 TF32 (ORT's default)", models / ENCODER_FILE, "run", "1"),
        ("fp32 (served)", models / ENCODER_FILE, "run", "0"),
        ("fp32 io_binding", models / ENCODER_FILE, "io_binding", "0"),
        ("fp16 (LayerNorm/Softmax fp32)", fp16_encoder(models), "run", "0"),
        ("fp16 io_binding", fp16_encoder(models), "io_binding", "0"),
    ):
        session = _session(path, device, tf32)
        run = _runner(session, mode, image, provider_device)
        outputs = dict(zip(TENSORS, run()))
        errors = {
            name: relative_l2(np.asarray(outputs[name], np.float32), reference[name]) for name in TENSORS
        }
        row["encoder"][variant] = {
            "provider": session.get_providers()[0],
            **percentiles(timed(run, runs, warmup=3)),
            "max_relative_l2": float(f"{max(errors.values()):.2e}"),
        }
        print(f"  {variant}: {row['encoder'][variant]}", flush=True)
        del session
    service = EncoderService(models, device=device)
    row["predict_provider"] = service.encoder.provider
    row["predict_12MP"] = percentiles(timed(lambda: service.encode(jpeg), max(1, runs // 2), warmup=1))
    row["preprocess_12MP"] = percentiles(timed(lambda: preprocess(load_image(jpeg)), max(1, runs // 2)))
    print(f"  predict() 12 MP: {row['predict_12MP']} (preprocess {row['preprocess_12MP']})", flush=True)
    return row


def _session(path: Path, device: str, tf32: str) -> ort.InferenceSession:
    if device != "cuda":
        return create_session(path, "cpu")
    providers = [(CUDA, {"use_tf32": tf32}), "CPUExecutionProvider"]
    return ort.InferenceSession(str(path), session_options(), providers=providers)


def print_table(rows: list[dict]) -> None:
    for row in rows:
        print(f"\n{row['model']} — parity against {row['parity_reference']}")
        lines = [
            (
                f"encoder {variant}",
                f"{v['p50_ms']} / {v['p95_ms']} ms on {v['provider']}, rel L2 {v['max_relative_l2']:.1e}",
            )
            for variant, v in row["encoder"].items()
        ]
        predict = row["predict_12MP"]
        lines.append(
            (
                "predict() 12 MP JPEG",
                f"{predict['p50_ms']} / {predict['p95_ms']} ms on {row['predict_provider']}",
            )
        )
        lines.append(
            (
                "  of which decode+resize",
                f"{row['preprocess_12MP']['p50_ms']} / {row['preprocess_12MP']['p95_ms']} ms",
            )
        )
        width = max(len(label) for label, _ in lines)
        print(f"  {'':<{width}}  p50 / p95")
        for label, value in lines:
            print(f"  {label:<{width}}  {value}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench_gpu", description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", type=Path, action="append", help="exported model dir (repeatable)")
    parser.add_argument("--sizes", nargs="+", default=["tiny", "large"], help="random exports to bench")
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--json", type=Path, default=ROOT / "build" / "bench.json")
    args = parser.parse_args(argv)

    if args.device == "cuda" and CUDA not in ort.get_available_providers():
        print(f"onnxruntime {ort.__version__} has no CUDA provider: install onnxruntime-gpu (make bench-gpu)")
        return 2
    models_dirs = args.models_dir or [cached_random_export(CACHE, size) for size in args.sizes]
    print(f"machine: {machine()}; providers {ort.get_available_providers()}")
    with tempfile.TemporaryDirectory() as scratch:
        jpeg = test_jpegs(Path(scratch))["12MP"]
        rows = [bench_model(m, jpeg, args.device, args.runs) for m in models_dirs]
    print_table(rows)
    report = json.loads(args.json.read_text()) if args.json.exists() else {}
    report["gpu"] = {"machine": machine(), "device": args.device, "gpu": _gpu_name(), "models": rows}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {args.json}")
    return 0


def _gpu_name() -> str | None:
    import subprocess

    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except OSError:
        return None
    return out.stdout.strip() or None


if __name__ == "__main__":
    sys.exit(main())
