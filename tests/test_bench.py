"""`make bench` runs end to end, and its GPU-path variants compute the same features on the CPU provider."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tools.bench import bench_gpu_path

pytestmark = pytest.mark.slow


def test_bench_prints_a_table_and_writes_json(models_dir, tmp_path):
    out = tmp_path / "bench.json"
    quick = ["--runs", "1", "--clicks", "3", "--skip-gpu-path", "--json", str(out)]
    result = subprocess.run(
        [sys.executable, "-m", "tools.bench", "--models-dir", str(models_dir), *quick],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert "ONNX Runtime speed-up" in result.stdout and "preprocess 12MP JPEG" in result.stdout
    row = json.loads(out.read_text())["models"][0]
    assert row["encoder"]["onnx_ms"] > 0 and row["encoder"]["torch_eager_ms"] > 0
    assert set(row["preprocess"]) == {"12MP", "1MP"}
    assert set(row["decoder"]) == {"decoder.onnx", "decoder_hires.onnx"}
    assert 100 < row["serving_peak_rss_mb"] < 4000


def test_gpu_path_variants_match_the_fp32_graph(models_dir):
    result = bench_gpu_path(models_dir, "cpu", runs=1)
    assert result["fp32 io_binding"]["max_relative_l2_vs_fp32"] == 0.0
    fp16 = result["fp16 (LayerNorm/Softmax fp32) io_binding"]
    assert fp16["max_relative_l2_vs_fp32"] < 2e-3  # fp16 weights and activations, fp32 statistics
    assert result["fp32 cuda_graph"] == "needs CUDA"
