"""`make bench`: every step of the serving path timed side by side, printed as a table and saved as JSON.

For each model available — the random-weight tiny export always, real weights in weights/ when present:
preprocessing of a 12 MP and a 1 MP JPEG and its share of the encoder, the encoder in ONNX Runtime
against PyTorch eager (same weights, threads and input, runs interleaved, medians), the fp16 cast and
bundle write, one whole prediction in-process, the decoder per click (p50/p95) for both decoder graphs,
setup time, and peak resident memory of the serving path (measured in a fresh process without torch).

The GPU path — ``--device cuda``, I/O binding, CUDA graphs, and an fp16 encoder with LayerNorm and
Softmax kept in fp32 — runs here on the CPU provider for correctness (each variant's features are
compared with the fp32 graph) and on a GPU machine for speed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

from sam2enc.bundle import TENSORS, Bundle, write_bundle
from sam2enc.decoder import Decoder
from sam2enc.encoder import CUDA, Encoder, create_session, session_options
from sam2enc.modeldir import DECODER_FILES, DEFAULT_MODELS_DIR, ENCODER_FILE, MODEL_INFO_FILE, ModelInfo
from sam2enc.testing import cached_random_export

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "bench-models"
PHOTO = ROOT / "assets" / "astronaut.jpg"


def timed(fn: Callable[[], object], runs: int, warmup: int = 1) -> list[float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def test_jpegs(directory: Path) -> dict[str, Path]:
    """A 12 MP and a 1 MP phone-style JPEG with EXIF orientation 6, made from the bundled photo."""
    exif = Image.Exif()
    exif[0x0112] = 6
    photo = Image.open(PHOTO).convert("RGB")
    paths = {}
    for label, size in (("12MP", (4032, 3024)), ("1MP", (1152, 864))):
        path = directory / f"photo_{label}.jpg"
        photo.resize(size, Image.BICUBIC).save(path, quality=90, exif=exif)
        paths[label] = path
    return paths


def random_tiny() -> Path:
    """The random-weight SAM2.1 tiny export, built once into .cache/bench-models/."""
    return cached_random_export(CACHE, "tiny")


def checkpoint_for(models: Path, info: ModelInfo) -> Path | None:
    candidates = [*models.glob("random_*.pt"), models / f"{info.model}.pt"]
    return next((c for c in candidates if c.exists()), None)


def bench_encoder_vs_torch(models: Path, info: ModelInfo, threads: int, runs: int) -> dict:
    """ONNX Runtime and PyTorch eager on the same weights, threads and input, interleaved."""
    import torch

    from sam2enc.export import EncoderGraph, load_sam2, sample_image

    checkpoint = checkpoint_for(models, info)
    if checkpoint is None:
        return {"torch": "no checkpoint beside the ONNX files"}
    torch.set_grad_enabled(False)
    torch.set_num_threads(threads)
    graph = EncoderGraph(load_sam2(info.size, checkpoint)).eval()
    image = sample_image()
    session = create_session(models / ENCODER_FILE, "cpu", threads, spinning=False)
    feed = {"image": image.numpy()}
    # Alternate blocks of runs, each after its own warm-up, so neither runtime's idle threads
    # (OpenMP's or ONNX Runtime's) spin while the other one is being timed.
    onnx_times, torch_times = [], []
    for _ in range(2):
        onnx_times += timed(lambda: session.run(None, feed), (runs + 1) // 2)
        torch_times += timed(lambda: graph(image), (runs + 1) // 2)
    onnx_ms, torch_ms = ms(statistics.median(onnx_times)), ms(statistics.median(torch_times))
    return {"onnx_ms": onnx_ms, "torch_eager_ms": torch_ms, "speedup": round(torch_ms / onnx_ms, 2)}


def bench_preprocess(jpegs: dict[str, Path], runs: int) -> dict:
    from sam2enc.image import load_image
    from sam2enc.preprocess import preprocess

    result = {}
    for label, path in jpegs.items():
        decode = timed(lambda p=path: load_image(p), runs)
        loaded = load_image(path)
        resize = timed(lambda i=loaded: preprocess(i), runs)
        result[label] = {
            "decode_exif_ms": ms(statistics.median(decode)),
            "resize_normalise_ms": ms(statistics.median(resize)),
            "total_ms": ms(statistics.median(decode) + statistics.median(resize)),
        }
    return result


def bench_write(encoder: Encoder, runs: int) -> dict:
    rng = np.random.default_rng(0)
    fp32 = {name: rng.standard_normal(shape).astype(np.float32) for name, shape in TENSORS.items()}
    cast = timed(lambda: {n: a.astype(np.float16) for n, a in fp32.items()}, runs)
    bundle = Bundle({n: a.astype(np.float16) for n, a in fp32.items()}, 640, 480, encoder.model, "bench")
    with tempfile.TemporaryDirectory() as scratch:
        counter = iter(range(10**6))
        write = timed(lambda: write_bundle(bundle, Path(scratch) / str(next(counter))), runs)
    return {
        "fp16_cast_numpy_ms": ms(statistics.median(cast)),
        "bundle_write_ms": ms(statistics.median(write)),
    }


def bench_predict(models: Path, jpegs: dict[str, Path], runs: int) -> dict:
    from sam2enc.service import EncoderService

    service = EncoderService(models, device="cpu")
    return {
        label: ms(statistics.median(timed(lambda p=path: service.encode(p), runs)))
        for label, path in jpegs.items()
    }


def bench_decoder(models: Path, encoder: Encoder, clicks: int) -> dict:
    from sam2enc.pipeline import encode

    bundle = encode(PHOTO, encoder)
    rng = np.random.default_rng(0)
    result = {}
    for name, hires in zip(DECODER_FILES, (False, True)):
        decoder = Decoder(models, hires=hires)
        times = []
        for _ in range(clicks):
            coords = rng.uniform(0, 1024, (1, 1, 2)).astype(np.float32)
            labels = np.ones((1, 1), np.float32)
            times += timed(lambda d=decoder, c=coords, n=labels: d.logits(bundle, c, n), 1)
        times.sort()
        result[name] = {"p50_ms": ms(times[len(times) // 2]), "p95_ms": ms(times[int(len(times) * 0.95)])}
    return result


def bench_setup(models: Path) -> dict:
    start = time.perf_counter()
    encoder = Encoder(models, device="cpu")
    session = time.perf_counter() - start
    warm = encoder.warm_up()
    return {"session_ms": ms(session), "warm_up_ms": ms(warm), "total_ms": ms(session + warm)}


def serving_peak_rss(models: Path, jpeg: Path) -> float:
    """Peak RSS (MB) of setup + one 12 MP prediction in a fresh process that never imports torch."""
    # VmHWM, not ru_maxrss: the latter carries the (torch-sized) parent's peak across fork + exec.
    code = (
        "import sys; from sam2enc.service import EncoderService; "
        f"s = EncoderService({str(models)!r}, device='cpu'); s.encode({str(jpeg)!r}); "
        "assert 'torch' not in sys.modules, 'the serving path imported torch'; "
        "print(open('/proc/self/status').read().split('VmHWM:')[1].split()[0])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    return round(int(out.stdout.split()[-1]) / 1024, 1)


# --- the GPU path, correctness-checked on whatever provider this machine has -----------------------


def fp16_encoder(models: Path) -> Path:
    """encoder.onnx with fp16 weights and compute, LayerNorm and Softmax kept in fp32: the served fp16."""
    from sam2enc.precision import fp16_encoder as served_fp16_encoder

    return served_fp16_encoder(models)


def bench_gpu_path(models: Path, device: str, runs: int) -> dict:
    from sam2enc.export import relative_l2

    provider_device = "cuda" if device == "cuda" else "cpu"
    image = np.random.default_rng(0).standard_normal((1, 3, 1024, 1024)).astype(np.float32)
    reference = create_session(models / ENCODER_FILE, device).run(list(TENSORS), {"image": image})
    result = {}
    for variant, path in (
        ("fp32", models / ENCODER_FILE),
        ("fp16 (LayerNorm/Softmax fp32)", fp16_encoder(models)),
    ):
        for mode in ("run", "io_binding", "cuda_graph"):
            if mode == "cuda_graph" and device != "cuda":
                result[f"{variant} {mode}"] = "needs CUDA"
                continue
            session = _gpu_session(path, device, cuda_graph=mode == "cuda_graph")
            run = _runner(session, mode, image, provider_device)
            outputs = run()
            times = timed(run, runs)
            errors = [
                relative_l2(np.asarray(o, np.float32), r.astype(np.float32))
                for o, r in zip(outputs, reference)
            ]
            result[f"{variant} {mode}"] = {
                "provider": session.get_providers()[0],
                "median_ms": ms(statistics.median(times)),
                "max_relative_l2_vs_fp32": float(f"{max(errors):.2e}"),
            }
    return result


def _gpu_session(path: Path, device: str, cuda_graph: bool) -> ort.InferenceSession:
    if device != "cuda":
        return create_session(path, "cpu")
    options = {"enable_cuda_graph": "1"} if cuda_graph else {}
    return ort.InferenceSession(
        str(path), session_options(), providers=[(CUDA, options), "CPUExecutionProvider"]
    )


def _runner(session: ort.InferenceSession, mode: str, image: np.ndarray, device: str) -> Callable[[], list]:
    names = list(TENSORS)
    if mode == "run":
        return lambda: session.run(names, {"image": image})
    # I/O binding: the input lives on the device once; outputs stay there until copied out.
    binding = session.io_binding()
    image_value = ort.OrtValue.ortvalue_from_numpy(image, device, 0)
    binding.bind_ortvalue_input("image", image_value)
    outputs = {
        n: ort.OrtValue.ortvalue_from_shape_and_type(s, np.float16, device, 0) for n, s in TENSORS.items()
    }
    for name, value in outputs.items():
        binding.bind_ortvalue_output(name, value)

    def run() -> list:
        session.run_with_iobinding(binding)
        return [outputs[n].numpy() for n in names]

    return run


# --- report -------------------------------------------------------------------------------------------


def bench_model(models: Path, jpegs: dict[str, Path], args: argparse.Namespace) -> dict:
    info = ModelInfo.read(models)
    print(
        f"\n== {info.model}{' (random weights)' if info.random_weights else ''} in {models}",
        flush=True,
    )
    encoder = Encoder(models, device="cpu", threads=args.threads)
    encoder.warm_up()
    row: dict = {"model": info.model, "models_dir": str(models), "provider": encoder.provider}
    row["setup"] = bench_setup(models)
    row["encoder"] = bench_encoder_vs_torch(models, info, args.threads, args.runs)
    row["preprocess"] = bench_preprocess(jpegs, args.runs)
    onnx_ms = row["encoder"].get("onnx_ms") or ms(statistics.median(timed(encoder.warm_up, args.runs)))
    for stats in row["preprocess"].values():
        stats["share_of_encoder"] = round(stats["total_ms"] / onnx_ms, 3)
    row["write"] = bench_write(encoder, args.runs)
    row["predict_ms"] = bench_predict(models, jpegs, args.runs)
    row["decoder"] = bench_decoder(models, encoder, args.clicks)
    row["serving_peak_rss_mb"] = serving_peak_rss(models, jpegs["12MP"])
    if not args.skip_gpu_path:
        row["gpu_path"] = bench_gpu_path(models, args.device, args.runs)
    return row


def print_table(rows: list[dict]) -> None:
    for row in rows:
        enc, pre = row["encoder"], row["preprocess"]
        lines = [
            ("setup (session + warm-up)", f"{row['setup']['total_ms']} ms"),
            ("encoder ONNX Runtime", f"{enc.get('onnx_ms', '-')} ms"),
            ("encoder PyTorch eager", f"{enc.get('torch_eager_ms', '-')} ms"),
            ("ONNX Runtime speed-up", f"{enc.get('speedup', '-')}×"),
        ]
        for label, stats in pre.items():
            lines.append(
                (
                    f"preprocess {label} JPEG",
                    f"{stats['total_ms']} ms ({stats['share_of_encoder']:.1%} of encoder)",
                )
            )
        lines += [
            (
                "fp16 cast (numpy) / bundle write",
                f"{row['write']['fp16_cast_numpy_ms']} / {row['write']['bundle_write_ms']} ms",
            ),
            *((f"predict() {label} JPEG", f"{value} ms") for label, value in row["predict_ms"].items()),
            *(
                (f"{name} per click p50 / p95", f"{d['p50_ms']} / {d['p95_ms']} ms")
                for name, d in row["decoder"].items()
            ),
            ("serving peak RSS (12 MP)", f"{row['serving_peak_rss_mb']} MB"),
        ]
        for variant, value in row.get("gpu_path", {}).items():
            if isinstance(value, str):
                text = value
            else:
                error = value["max_relative_l2_vs_fp32"]
                text = f"{value['median_ms']} ms on {value['provider']}, rel L2 {error:.1e}"
            lines.append((f"encoder {variant}", text))
        print(f"\n{row['model']} — provider {row['provider']}")
        width = max(len(label) for label, _ in lines)
        for label, value in lines:
            print(f"  {label:<{width}}  {value}")


def machine() -> str:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        names = [
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ]
        cpu = names[0] if names else cpu
    return f"{cpu}, {os.cpu_count()} cores, onnxruntime {ort.__version__}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench", description="Benchmark the serving path.")
    parser.add_argument("--models-dir", type=Path, action="append", help="exported model dir (repeatable)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per measurement (median reported)")
    parser.add_argument("--clicks", type=int, default=40, help="decoder clicks timed")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="threads for both runtimes")
    parser.add_argument(
        "--device", choices=["cpu", "cuda"], default="cpu", help="device for the GPU-path section"
    )
    parser.add_argument("--skip-gpu-path", action="store_true")
    parser.add_argument("--json", type=Path, default=ROOT / "build" / "bench.json")
    args = parser.parse_args(argv)

    models_dirs = args.models_dir or [random_tiny()]
    if not args.models_dir and (ROOT / DEFAULT_MODELS_DIR / MODEL_INFO_FILE).exists():
        models_dirs.append(ROOT / DEFAULT_MODELS_DIR)
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as scratch:
        jpegs = test_jpegs(Path(scratch))
        rows = [bench_model(m, jpegs, args) for m in models_dirs]
    print_table(rows)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "machine": machine(),
        "peak_rss_mb_bench_process": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
        "models": rows,
    }
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
