"""`make bench-gpu` (tools/bench_gpu.py): its serving rule, its file name, and one reduced run on the CPU
provider that proves the script and the JSON shape a GPU session commits (slow: ~1 min on 2 cores)."""

from __future__ import annotations

import json

import pytest

from tools.bench_gpu import BF16_ROW, CUDA_GRAPH_ROW, SERVED, SERVING_ENV, gpu_slug, serve_rule


def test_served_is_the_fastest_within_half_of_sam2_bf16():
    rows = {
        BF16_ROW: {"p50_ms": 40.0, "max_relative_l2": 4e-3},
        "fp32": {"p50_ms": 70.0, "max_relative_l2": 2e-4},
        "tf32": {"p50_ms": 35.0, "max_relative_l2": 9e-4},
        "fp16": {"p50_ms": 29.0, "max_relative_l2": 2.1e-3},  # fastest, but over half of bf16's 4e-3
        "fp16 TensorRT EP": {"skipped": "not available"},
    }
    assert serve_rule(rows) == "tf32"
    rows["fp16"]["max_relative_l2"] = 2e-3  # exactly half: allowed
    assert serve_rule(rows) == "fp16"
    rows["fp16 TensorRT EP"] = {"p50_ms": 20.0, "max_relative_l2": 2e-3, "servable": False}
    assert serve_rule(rows) == "fp16", "measured, but EncoderService cannot serve it"
    rows["fp16 + CUDA graph"] = {"p50_ms": 24.0, "max_relative_l2": 2e-3, "servable": True}
    assert serve_rule(rows) == "fp16 + CUDA graph"
    rows[BF16_ROW]["max_relative_l2"] = 1e-4
    assert serve_rule(rows) is None


def test_json_is_named_for_the_gpu():
    assert gpu_slug("NVIDIA H100 80GB HBM3, 580.159.04") == "h100"
    assert gpu_slug("NVIDIA H200, 580.65.06") == "h200"
    assert gpu_slug("NVIDIA A100-SXM4-80GB, 550.54") == "a100"
    assert gpu_slug("NVIDIA L40S, 580.1") == "l40s"
    assert gpu_slug("NVIDIA GeForce RTX 4090, 580.1") == "rtx-4090"
    assert gpu_slug(None) == "unknown"


@pytest.mark.slow
def test_the_gpu_bench_runs_end_to_end_on_the_cpu_provider(models_dir, tmp_path):
    from tools.bench_gpu import main

    out = tmp_path / "bench-gpu.json"
    assert main(["--device", "cpu", "--models-dir", str(models_dir), "--runs", "1", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["device"] == "cpu" and report["gpu"] is None
    assert report["complete"] and report["date"] and not list(tmp_path.glob(".*.part"))
    row = report["models"][0]
    encoder = row["encoder"]
    assert next(iter(encoder)) == BF16_ROW
    assert [name for name in encoder if name.endswith(SERVED)] == [f"{row['served']}{SERVED}"]
    assert row["served"] == serve_rule({n.removesuffix(SERVED): v for n, v in encoder.items()})
    assert row["served_precision"] in ("fp32", "tf32", "fp16")
    graph_row = encoder.get(CUDA_GRAPH_ROW) or encoder[f"{CUDA_GRAPH_ROW}{SERVED}"]
    assert graph_row["servable"] and graph_row["provider"] == "CPUExecutionProvider"  # buffers, no graph
    assert set(row["served_env"]) == set(SERVING_ENV)
    assert row["served_env"]["SAM2ENC_CUDA_GRAPH"] == ("1" if row["served"] == CUDA_GRAPH_ROW else "0")
    assert row["served_env"]["SAM2ENC_PRECISION"] == row["served_precision"]
    assert row["predict_execution"] == ("fixed-buffers" if row["served"] == CUDA_GRAPH_ROW else "plain")
    bf16 = encoder[BF16_ROW]["max_relative_l2"]
    assert 1e-3 < bf16 < 3e-2  # SAM2's own bf16 predictor sits well away from its fp32 one
    for name, value in encoder.items():
        assert value["p50_ms"] > 0 and value["max_relative_l2"] > 0, name
    assert encoder[f"{row['served']}{SERVED}"]["max_relative_l2"] <= bf16 / 2
    assert any(n.startswith("fp16") and v["max_relative_l2"] < 3e-3 for n, v in encoder.items())
    assert row["predict_12MP"]["p50_ms"] > row["preprocess_12MP"]["p50_ms"] > 0
    assert row["preprocess_12MP_host"]["p50_ms"] > 0
    assert row["predict_12MP_max_relative_l2"] < 1e-3  # the whole served path, decode included
    assert row["decode_12MP"]["decoder"] == "pillow"  # the CPU keeps Pillow: its pixels are Pillow's
    assert row["decode_12MP"]["pixels_vs_pillow"] == {"max_abs": 0, "mean_abs": 0.0}
    assert set(row["throughput_12MP"]["photos_per_s"]) == {"concurrency 1", "concurrency 4"}
