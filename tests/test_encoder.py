"""The encoder session says which provider it really got, and never falls back silently."""

from __future__ import annotations

import logging
import shutil
import subprocess
from pathlib import Path

import onnxruntime as ort
import pytest

from sam2enc import cuda
from sam2enc.encoder import CUDA, Encoder, create_session, device_from_env
from sam2enc.errors import ModelError, ProviderError

needs_cpu_build = pytest.mark.skipif(
    CUDA in ort.get_available_providers(), reason="this machine has the CUDA provider"
)


def test_cpu_is_reported_as_cpu(models_dir):
    encoder = Encoder(models_dir, device="cpu")
    assert encoder.provider == "CPUExecutionProvider"
    assert encoder.model["name"] == "sam2.1_hiera_tiny"


@needs_cpu_build
def test_cuda_requested_on_a_cpu_build_is_an_error(models_dir):
    with pytest.raises(
        ProviderError, match=r"device='cuda' was requested but this onnxruntime build .* no CUDA"
    ):
        Encoder(models_dir, device="cuda")


@needs_cpu_build
def test_auto_falls_back_to_cpu_with_a_warning(models_dir, caplog):
    with caplog.at_level(logging.WARNING, logger="sam2enc"):
        encoder = Encoder(models_dir, device="auto")
    assert encoder.provider == "CPUExecutionProvider"
    assert "Running on CPU" in caplog.text


@needs_cpu_build
@pytest.mark.filterwarnings("ignore:Specified provider")
def test_a_cuda_provider_that_fails_to_load_names_what_the_build_needs(models_dir, monkeypatch):
    """onnxruntime-gpu without its CUDA libraries: CUDA is 'available' but the session runs on CPU."""
    monkeypatch.setattr(ort, "get_available_providers", lambda: [CUDA, "CPUExecutionProvider"])
    need = cuda.CudaRequirements("13.0", "9", ("libc.so.6", "libcudart.so.99", "libcudnn.so.99"))
    monkeypatch.setattr(cuda, "cuda_requirements", lambda: need)
    with pytest.raises(ProviderError) as error:
        create_session(models_dir / "decoder.onnx", "cuda")
    message = str(error.value)
    assert "needs CUDA 13.0 and cuDNN 9" in message
    assert message.endswith("missing: libcudart.so.99, libcudnn.so.99"), message


def test_missing_libraries_are_the_ones_the_loader_cannot_find():
    need = cuda.CudaRequirements("13.0", "9", ("libc.so.6", "libsam2enc-does-not-exist.so.1"))
    assert need.missing() == ["libsam2enc-does-not-exist.so.1"]
    assert need.cuda_major == "13"


@pytest.mark.skipif(shutil.which("readelf") is None, reason="binutils' readelf is not installed")
def test_elf_needed_reads_what_readelf_reads():
    """The parser that reads the CUDA provider's NEEDED entries, checked against binutils on a real file."""
    library = next((Path(ort.__file__).parent / "capi").glob("libonnxruntime.so*"))
    dynamic = subprocess.run(["readelf", "-d", str(library)], capture_output=True, text=True, check=True)
    expected = [
        line.split("[", 1)[1].rstrip("]") for line in dynamic.stdout.splitlines() if "(NEEDED)" in line
    ]
    assert expected and cuda.elf_needed(library) == expected


def test_device_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv("SAM2ENC_DEVICE", raising=False)
    assert device_from_env() == "auto"
    monkeypatch.setenv("SAM2ENC_DEVICE", "CUDA")
    assert device_from_env() == "cuda"


@pytest.mark.parametrize(
    "name, value, sentence",
    [
        ("SAM2ENC_DEVICE", "gpu", "$SAM2ENC_DEVICE must be one of auto, cuda, cpu, got 'gpu'"),
        ("SAM2ENC_PRECISION", "bf16", "$SAM2ENC_PRECISION must be one of fp32, tf32, fp16, got 'bf16'"),
        ("SAM2ENC_CUDA_GRAPH", "maybe", "$SAM2ENC_CUDA_GRAPH must be 1 or 0, got 'maybe'"),
        ("SAM2ENC_DECODE", "nvjpeg", "$SAM2ENC_DECODE must be one of auto, gpu, pillow, got 'nvjpeg'"),
    ],
)
def test_every_setting_is_refused_the_same_way_at_setup(monkeypatch, models_dir, name, value, sentence):
    """One parser (sam2enc/settings.py), one kind of error, raised by setup, not by the first photo."""
    from sam2enc.errors import SettingError
    from sam2enc.service import EncoderService

    monkeypatch.setenv(name, value)
    with pytest.raises(SettingError) as caught:
        EncoderService(models_dir)
    assert str(caught.value) == sentence


def test_unknown_device_and_missing_files(models_dir, tmp_path):
    with pytest.raises(ProviderError, match="device must be one of auto, cuda, cpu"):
        create_session(models_dir / "decoder.onnx", "tpu")
    with pytest.raises(ModelError, match=r"model\.json is missing"):
        Encoder(tmp_path)


def test_outputs_are_bound_by_name_whatever_order_the_graph_declares(models_dir, tmp_path):
    """Exporters disagree on output order (samexporter: hr0, hr1, embed): the encoder binds by name."""
    import numpy as np
    import onnx

    model = onnx.load(str(models_dir / "encoder.onnx"))
    outputs = list(model.graph.output)
    del model.graph.output[:]
    model.graph.output.extend(reversed(outputs))
    onnx.save(model, str(tmp_path / "encoder.onnx"))
    shutil.copy(models_dir / "model.json", tmp_path / "model.json")
    image = np.random.default_rng(0).standard_normal((1, 3, 1024, 1024)).astype(np.float32)
    expected = Encoder(models_dir, device="cpu").run(image)
    got = Encoder(tmp_path, device="cpu").run(image)
    for name, value in expected.items():
        np.testing.assert_array_equal(got[name], value, err_msg=name)
