"""`make bench-gpu`: each serving precision on the GPU against SAM2's own bf16 predictor; picks one to serve.

For each model (random-weight tiny and large unless ``--models-dir`` names exported ones), on one 12 MP
phone JPEG (EXIF orientation 6):

- the reference: SAM2's own ``SAM2ImagePredictor.set_image`` in IEEE fp32 (TF32 off) on the same device;
- "SAM2 bf16 autocast (torch)": the same predictor under ``torch.autocast(<device>, dtype=torch.bfloat16)``
  with TF32 on, as SAM2's README and demo backend run it — its features' relative L2 to the reference, and
  its encoder (``forward_image`` + feature preparation) timed on a device-resident input;
- every candidate — fp32, tf32, fp16 (LayerNorm/Softmax fp32), and fp16 on the TensorRT EP when that EP
  is available — fed by the in-graph preprocessing (preprocess.onnx, on the device) and I/O binding:
  relative L2 of the served bundle features (fp16) to the reference, encoder p50/p95;
- the served candidate, marked "(served)": the fastest whose relative L2 is at most half the bf16 row's;
- the whole ``predict()`` (EncoderService with that precision), its decode+preprocess, the decode alone
  (GPU nvImageCodec against Pillow: time and pixel distance) and photos/s from 1 and 4 threads on the 12 MP
  JPEG, next to today's host (Pillow) preprocessing.

Writes docs/bench-gpu-<gpu>.json (``--json`` to change). ``--device cpu --sizes tiny --runs 2`` runs the
same script on the CPU provider (CPU autocast for the bf16 row; tf32 is fp32 there) to prove it and its
JSON shape, not to measure — that report goes to build/ unless ``--json`` says otherwise.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from sam2enc.bundle import TENSORS
from sam2enc.cuda_graph import CUDA_GRAPH_ENV, CUDA_GRAPH_OPTION, FixedBuffers
from sam2enc.encoder import CUDA, create_session
from sam2enc.export import relative_l2
from sam2enc.gpu_decode import levels_apart
from sam2enc.modeldir import ENCODER_FILE, ModelInfo
from sam2enc.precision import PRECISION_ENV, cuda_options, fp16_encoder
from sam2enc.testing import cached_random_export
from tools.bench import CACHE, ROOT, machine, ms, test_jpegs, timed

BF16_ROW = "SAM2 bf16 autocast (torch)"
SERVED = " (served)"
TENSORRT = "TensorrtExecutionProvider"
# (row name, precision); each is fed by preprocess.onnx on the same device
CANDIDATES = (
    ("fp32 IEEE, in-graph preprocessing, I/O binding", "fp32"),
    ("tf32, in-graph preprocessing, I/O binding", "tf32"),
    ("fp16 (LayerNorm/Softmax fp32), in-graph preprocessing, I/O binding", "fp16"),
)
TRT_ROW = "fp16 TensorRT EP, in-graph preprocessing, I/O binding"
# ONNX Runtime's CUDA graphs: the encoder's kernel launches replayed as one graph from fixed buffers
# (sam2enc/cuda_graph.py, served with SAM2ENC_CUDA_GRAPH=1). A row that fails to capture says why. On the
# CPU provider the row runs the same buffers without a graph: it proves the script, not the speed.
CUDA_GRAPH = "cuda-graph"
CUDA_GRAPH_ROW = "fp16 (LayerNorm/Softmax fp32) + CUDA graph, fixed I/O buffers"
# What cog.yaml's environment must say to serve a row: SAM2ENC_PRECISION and SAM2ENC_CUDA_GRAPH.
SERVING_ENV = (PRECISION_ENV, CUDA_GRAPH_ENV)


def percentiles(times: list[float]) -> dict:
    ordered = sorted(times)
    return {
        "p50_ms": ms(ordered[len(ordered) // 2]),
        "p95_ms": ms(ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]),
    }


def max_error(features: dict[str, np.ndarray], reference: dict[str, np.ndarray]) -> float:
    errors = [relative_l2(np.asarray(features[n], np.float32), reference[n]) for n in TENSORS]
    return float(f"{max(errors):.2e}")


def sam2_rows(models: Path, rgb: np.ndarray, device: str, runs: int) -> tuple[dict, dict]:
    """SAM2's own predictor: fp32 IEEE features (the reference) and the bf16-autocast row."""
    import torch

    from sam2enc.export import EncoderGraph, load_sam2
    from tests.reference import image_predictor, predictor_features

    info = ModelInfo.read(models)
    checkpoint = next(iter(models.glob("random_*.pt")), models / f"{info.model}.pt")
    if not checkpoint.exists():
        raise SystemExit(f"{models} has no checkpoint beside the ONNX files: SAM2's predictor needs it")
    torch_device = "cuda" if device == "cuda" else "cpu"
    model = load_sam2(info.size, checkpoint).to(torch_device)
    predictor = image_predictor(model)

    def tf32(on: bool) -> None:
        torch.backends.cudnn.allow_tf32 = on
        torch.backends.cuda.matmul.allow_tf32 = on

    with torch.inference_mode():
        tf32(False)
        predictor.set_image(rgb)
        reference = predictor_features(predictor)
        tf32(True)  # SAM2's demo: TF32 on, bf16 autocast
        with torch.autocast(torch_device, dtype=torch.bfloat16):
            predictor.set_image(rgb)
        bf16 = predictor_features(predictor)
        graph = EncoderGraph(model).eval()
        image = torch.from_numpy(_host_input(rgb)).to(torch_device)

        def encode(graph=graph) -> None:
            with torch.autocast(torch_device, dtype=torch.bfloat16):
                graph(image)
            if torch_device == "cuda":
                torch.cuda.synchronize()

        times = timed(encode, runs, warmup=min(2, runs))
        tf32(False)
    row = {
        "provider": f"torch {torch.__version__} {torch_device}",
        **percentiles(times),
        "max_relative_l2": max_error(bf16, reference),
        "what": "SAM2ImagePredictor.set_image under autocast(bfloat16), TF32 on; time: its encoder alone",
    }
    del predictor, model, graph
    if torch_device == "cuda":
        torch.cuda.empty_cache()
    return reference, row


def _host_input(rgb: np.ndarray) -> np.ndarray:
    from sam2enc.preprocess import preprocess

    return preprocess(rgb)


def candidate(
    models: Path, precision: str, provider: str, device: str
) -> tuple[ort.InferenceSession, object]:
    """(encoder session, preprocessor) for one candidate, built as the service builds them."""
    from sam2enc.preprocess_graph import GraphPreprocessor

    path = fp16_encoder(models) if precision == "fp16" else models / ENCODER_FILE
    cpu = "CPUExecutionProvider"
    if device != "cuda":
        session = create_session(path, "cpu")
    elif provider == CUDA_GRAPH:
        session = create_session(path, "cuda", cuda={**cuda_options(precision), CUDA_GRAPH_OPTION: "1"})
    elif provider == TENSORRT:
        engines = CACHE / "trt-engines" / f"{ModelInfo.read(models).model}-{models.resolve().name}"
        engines.mkdir(parents=True, exist_ok=True)
        trt = {"trt_fp16_enable": "1", "trt_engine_cache_enable": "1", "trt_engine_cache_path": str(engines)}
        session = ort.InferenceSession(
            str(models / ENCODER_FILE), providers=[(TENSORRT, trt), (CUDA, cuda_options("fp32")), cpu]
        )
        if session.get_providers()[0] != TENSORRT:  # listed by onnxruntime-gpu, but libnvinfer is missing
            raise RuntimeError("the TensorRT EP did not load (no TensorRT libraries?)")
    else:
        session = create_session(path, "cuda", cuda=cuda_options(precision))
    graph = GraphPreprocessor([(CUDA, cuda_options("fp32")), cpu] if device == "cuda" else [cpu])
    return session, graph


def encoder_runner(session: ort.InferenceSession, graph, loaded, fixed: bool = False) -> callable:
    """The encoder on a device-resident input, outputs copied to the host, as in predict(). ``fixed``:
    from the fixed buffers a CUDA graph replays with, the served class itself (FixedBuffers)."""
    if fixed:
        buffers = FixedBuffers(session, graph.device)
        graph(loaded, out=buffers.image)
        return lambda: buffers.run(buffers.image)
    binding = session.io_binding()
    binding.bind_ortvalue_input("image", graph(loaded))
    for name in TENSORS:
        binding.bind_output(name, "cpu")

    def run() -> dict[str, np.ndarray]:
        session.run_with_iobinding(binding)
        return dict(zip(TENSORS, (value.numpy() for value in binding.get_outputs())))

    return run


def serve_rule(encoder_rows: dict) -> str | None:
    """The fastest candidate that EncoderService can serve (``servable``: the TensorRT row is measured,
    not served) whose relative L2 is at most half of SAM2's bf16 predictor's."""
    budget = encoder_rows[BF16_ROW]["max_relative_l2"] / 2
    eligible = [
        (row["p50_ms"], name)
        for name, row in encoder_rows.items()
        if name != BF16_ROW
        and "p50_ms" in row
        and row.get("servable", True)
        and row["max_relative_l2"] <= budget
    ]
    return min(eligible)[1] if eligible else None


def bench_model(models: Path, jpeg: Path, device: str, runs: int) -> dict:
    from sam2enc.image import load_image
    from sam2enc.pipeline import encode
    from sam2enc.preprocess import preprocess
    from sam2enc.service import EncoderService

    info = ModelInfo.read(models)
    print(f"\n== {info.model}{' (random weights)' if info.random_weights else ''} in {models}", flush=True)
    loaded = load_image(jpeg)
    reference, bf16 = sam2_rows(models, loaded.rgb, device, runs)
    rows: dict = {BF16_ROW: bf16}
    print(f"  {BF16_ROW}: {bf16}", flush=True)
    candidates = [(name, precision, "default") for name, precision in CANDIDATES]
    candidates.append((CUDA_GRAPH_ROW, "fp16", CUDA_GRAPH))
    if device == "cuda" and TENSORRT in ort.get_available_providers():
        candidates.append((TRT_ROW, "fp16", TENSORRT))
    served_as: dict[str, tuple[str, bool]] = {}  # row → (precision, CUDA graph)
    for name, precision, provider in candidates:
        try:
            start = time.perf_counter()
            session, graph = candidate(models, precision, provider, device)
            session_s = round(time.perf_counter() - start, 2)
        except Exception as exc:  # an optional EP that does not load is a row that says so, not a crash
            rows[name] = {"skipped": f"{type(exc).__name__}: {exc}"}
            continue
        try:
            run = encoder_runner(session, graph, loaded, fixed=provider == CUDA_GRAPH)
            run()  # a CUDA graph is captured here; a failed capture is a skipped row
        except Exception as exc:
            rows[name] = {"skipped": f"{type(exc).__name__}: {exc}"}
            continue
        rows[name] = {
            "provider": session.get_providers()[0],
            "servable": provider != TENSORRT,
            # setup cost; for TensorRT the first run builds the engine, later ones load it from the cache
            "session_s": session_s,
            **percentiles(timed(run, runs, warmup=min(3, runs))),
            "max_relative_l2": max_error(run(), reference),
        }
        served_as[name] = (precision, provider == CUDA_GRAPH)
        print(f"  {name}: {rows[name]}", flush=True)
        del session, graph, run
    served = serve_rule(rows)
    encoder_rows = {f"{name}{SERVED}" if name == served else name: row for name, row in rows.items()}
    result: dict = {
        "model": info.model,
        "parity_reference": "SAM2ImagePredictor.set_image, torch fp32 IEEE (TF32 off), same device",
        "photo": "12 MP JPEG (4032x3024, EXIF orientation 6)",
        "encoder": encoder_rows,
        "served": served,
        "rule": "fastest candidate with max_relative_l2 <= half of the SAM2 bf16 autocast row's",
    }
    precision, cuda_graph = served_as.get(served, ("fp32", False))
    result["served_precision"] = precision if served else None
    # cog.yaml's environment for this row (tests/test_serving_env.py holds cog.yaml to the newest JSON)
    result["served_env"] = dict(zip(SERVING_ENV, (precision, "1" if cuda_graph else "0")))
    service = EncoderService(models, device=device, precision=precision, cuda_graph=cuda_graph)
    encoder = service.encoder
    result["predict_provider"] = encoder.provider
    result["predict_execution"] = encoder.execution
    result["predict_preprocessing"] = encoder.preprocessing
    result["predict_decoding"] = encoder.decoding
    predict_runs = max(1, runs // 2)
    result["predict_12MP"] = percentiles(timed(lambda: service.encode(jpeg), predict_runs, warmup=1))
    result["predict_12MP_max_relative_l2"] = max_error(encode(jpeg, encoder).features, reference)
    served_preprocess = lambda: encoder.preprocess(encoder.load(jpeg))  # noqa: E731
    result["preprocess_12MP"] = percentiles(timed(served_preprocess, predict_runs))
    result["preprocess_12MP_host"] = percentiles(timed(lambda: preprocess(load_image(jpeg)), predict_runs))
    result["decode_12MP"] = decode_rows(encoder, jpeg, loaded, predict_runs)
    if encoder.provider == CUDA:
        result["nvjpeg_12MP"] = nvjpeg_row(encoder, jpeg, loaded, reference, predict_runs)
    result["throughput_12MP"] = throughput(service, jpeg, predict_runs)
    print(
        f"  predict() 12 MP ({precision}, {encoder.execution}, {encoder.preprocessing} preprocessing, "
        f"{encoder.decoding} decoding): {result['predict_12MP']}; decode+preprocess "
        f"{result['preprocess_12MP']}, host {result['preprocess_12MP_host']}; decode "
        f"{result['decode_12MP']}; {result['throughput_12MP']}",
        flush=True,
    )
    return result


def decode_rows(encoder, jpeg: Path, pillow, runs: int) -> dict:
    """The served decoder against Pillow on the 12 MP JPEG: time, and how far its pixels land."""
    from sam2enc.image import load_image

    served = encoder.load(jpeg)
    distance = _levels(served.rgb, pillow.rgb)
    return {
        "decoder": encoder.decoding,
        "served": percentiles(timed(lambda: encoder.load(jpeg), runs)),
        "pillow": percentiles(timed(lambda: load_image(jpeg), runs)),
        "pixels_vs_pillow": distance,
    }


def nvjpeg_row(encoder, jpeg: Path, pillow, reference: dict, runs: int) -> dict:
    """nvJPEG whether or not ``auto`` took it: its time, its distance to Pillow's pixels (check photo and
    the 12 MP JPEG) and the features it leads to against SAM2's fp32 predictor on Pillow's pixels —
    the numbers that say whether GPU decoding can keep the parity promise."""
    from sam2enc.gpu_decode import gpu_jpeg_decoder, pixel_distance

    decoder = encoder.jpeg or gpu_jpeg_decoder("gpu")
    if decoder is None:
        return {"skipped": "nvImageCodec did not load"}
    served = decoder.load(jpeg)
    worst, mean = pixel_distance(decoder)
    return {
        "served": encoder.jpeg is not None,
        **percentiles(timed(lambda: decoder.load(jpeg), runs)),
        "check_photo_vs_pillow": {"max_abs": worst, "mean_abs": round(mean, 4)},
        "pixels_vs_pillow": _levels(served.rgb, pillow.rgb),
        "max_relative_l2": max_error(encoder.run(encoder.preprocess(served)), reference),
    }


def _levels(a: np.ndarray, b: np.ndarray) -> dict:
    """Two uint8 images' distance, in levels, as the JSON records it."""
    worst, mean = levels_apart(a, b)
    return {"max_abs": worst, "mean_abs": round(mean, 4)}


def throughput(service, jpeg: Path, runs: int) -> dict:
    """Photos per second through EncoderService.encode from 1 and from cog.yaml's concurrency.max threads
    (Cog's concurrent predictions): the pipeline overlaps one photo's decode with another's encoder."""
    from concurrent.futures import ThreadPoolExecutor

    import yaml  # cog.yaml, not predict.py: a GPU machine running the bench has no cog

    concurrency = yaml.safe_load((ROOT / "cog.yaml").read_text())["concurrency"]["max"]
    rates = {}
    for threads in (1, concurrency):
        photos = max(threads, runs)
        with ThreadPoolExecutor(threads) as pool:
            start = time.perf_counter()
            list(pool.map(lambda _: service.encode(jpeg), range(photos)))
        rates[f"concurrency {threads}"] = round(photos / (time.perf_counter() - start), 2)
    return {"photos_per_s": rates}


def print_table(rows: list[dict]) -> None:
    for row in rows:
        print(f"\n{row['model']} — relative L2 against {row['parity_reference']}")
        lines = []
        for name, value in row["encoder"].items():
            if "skipped" in value:
                lines.append((f"encoder {name}", f"skipped ({value['skipped']})"))
                continue
            error = value["max_relative_l2"]
            text = f"{value['p50_ms']} / {value['p95_ms']} ms on {value['provider']}, rel L2 {error:.1e}"
            lines.append((f"encoder {name}", text))
        lines.append(("predict() 12 MP JPEG", _p(row["predict_12MP"]) + f" on {row['predict_provider']}"))
        lines.append(
            (f"  of which decode+{row['predict_preprocessing']} preprocessing", _p(row["preprocess_12MP"]))
        )
        lines.append(("  decode+host preprocessing (Pillow)", _p(row["preprocess_12MP_host"])))
        decode = row["decode_12MP"]
        lines.append((f"  decode alone: {decode['decoder']}", _p(decode["served"])))
        off = decode["pixels_vs_pillow"]
        lines.append(("  decode alone: Pillow", _p(decode["pillow"]) + f"; served pixels off by {off}"))
        if "p50_ms" in (nv := row.get("nvjpeg_12MP", {})):
            text = f"{_p(nv)}; pixels off by {nv['pixels_vs_pillow']}, rel L2 {nv['max_relative_l2']:.1e}"
            lines.append((f"  nvJPEG ({'served' if nv['served'] else 'not served'})", text))
        rates = ", ".join(f"{k}: {v}" for k, v in row["throughput_12MP"]["photos_per_s"].items())
        lines.append(("photos/s, 12 MP JPEG", rates))
        width = max(len(label) for label, _ in lines)
        print(f"  {'':<{width}}  p50 / p95")
        for label, value in lines:
            print(f"  {label:<{width}}  {value}")


def _p(stats: dict) -> str:
    return f"{stats['p50_ms']} / {stats['p95_ms']} ms"


def gpu_slug(name: str | None) -> str:
    """'NVIDIA H100 80GB HBM3, 580.159.04' → 'h100'; unknown names → their words, lower-case, dashed."""
    if not name:
        return "unknown"
    model = name.split(",")[0]
    known = re.search(
        r"\b(h\d{3}|b\d{3}|gb\d{3}|a\d{2,3}g?|l\d{1,2}s?|t4|v100|rtx\s*\w*\s*\d{4}\w*)\b", model, re.I
    )
    text = known.group(1) if known else re.sub(r"^nvidia\s+", "", model, flags=re.I)
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench_gpu", description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", type=Path, action="append", help="exported model dir (repeatable)")
    parser.add_argument(
        "--sizes", nargs="+", default=["large", "tiny"], help="random exports to bench, in this order"
    )
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--json", type=Path, help="default: docs/bench-gpu-<gpu>.json (CPU: build/)")
    args = parser.parse_args(argv)

    if args.device == "cuda" and CUDA not in ort.get_available_providers():
        print(f"onnxruntime {ort.__version__} has no CUDA provider: install onnxruntime-gpu (make bench-gpu)")
        return 2
    gpu = _gpu_name() if args.device == "cuda" else None
    default = f"docs/bench-gpu-{gpu_slug(gpu)}.json" if args.device == "cuda" else "build/bench-gpu-cpu.json"
    out = args.json or ROOT / default
    models_dirs = args.models_dir or [cached_random_export(CACHE, size) for size in args.sizes]
    print(f"machine: {machine()}; providers {ort.get_available_providers()}", flush=True)
    started = time.perf_counter()
    report = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),  # which report is the newest
        "machine": machine(),
        "device": args.device,
        "gpu": gpu,
        "runs": args.runs,
        "complete": False,
        "models": [],
    }
    with tempfile.TemporaryDirectory() as scratch:
        jpeg = test_jpegs(Path(scratch))["12MP"]
        for models in models_dirs:
            report["models"].append(bench_model(models, jpeg, args.device, args.runs))
            # after each model: a lent machine's time limit then still leaves the models already done
            report["seconds"] = round(time.perf_counter() - started)
            report["complete"] = len(report["models"]) == len(models_dirs)
            write_json(out, report)
    print_table(report["models"])
    print(f"\nwrote {out}")
    return 0


def write_json(path: Path, report: dict) -> None:
    """Whole or not at all: a reader (or a copy taken at a time limit) never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.part")
    partial.write_text(json.dumps(report, indent=2) + "\n")
    partial.replace(path)


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
    return out.stdout.strip().splitlines()[0] if out.stdout.strip() else None


if __name__ == "__main__":
    sys.exit(main())
