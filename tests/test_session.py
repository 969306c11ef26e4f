"""The encoder session says which provider it really got, and never falls back silently."""

from __future__ import annotations

import logging

import onnxruntime as ort
import pytest

from sam2enc.errors import ModelError, ProviderError
from sam2enc.session import CUDA, Encoder, create_session, missing_cuda_libraries


def test_cpu_is_reported_as_cpu(models_dir):
    encoder = Encoder(models_dir, device="cpu")
    assert encoder.provider == "CPUExecutionProvider"
    assert encoder.model["name"] == "sam2.1_hiera_tiny"


def test_cuda_requested_on_a_cpu_build_is_an_error(models_dir):
    if CUDA in ort.get_available_providers():
        pytest.skip("this machine has the CUDA provider")
    with pytest.raises(
        ProviderError, match="device='cuda' was requested but this onnxruntime build has no CUDA"
    ):
        Encoder(models_dir, device="cuda")


def test_auto_falls_back_to_cpu_with_a_warning(models_dir, caplog):
    if CUDA in ort.get_available_providers():
        pytest.skip("this machine has the CUDA provider")
    with caplog.at_level(logging.WARNING, logger="sam2enc"):
        encoder = Encoder(models_dir, device="auto")
    assert encoder.provider == "CPUExecutionProvider"
    assert "Running on CPU" in caplog.text


@pytest.mark.filterwarnings("ignore:Specified provider")
def test_a_cuda_provider_that_fails_to_load_names_the_missing_libraries(models_dir, monkeypatch):
    """onnxruntime-gpu without cuDNN: CUDA is 'available' but the session silently runs on CPU."""
    if CUDA in ort.get_available_providers():
        pytest.skip("this machine has the CUDA provider")
    monkeypatch.setattr(ort, "get_available_providers", lambda: [CUDA, "CPUExecutionProvider"])
    monkeypatch.setattr("sam2enc.session.missing_cuda_libraries", lambda: ["libcudnn.so.9"])
    with pytest.raises(ProviderError, match=r"CUDA provider failed to load; missing: libcudnn\.so\.9"):
        create_session(models_dir / "decoder.onnx", "cuda")


def test_missing_library_probe_lists_real_names():
    missing = missing_cuda_libraries()
    assert all(name.startswith("lib") and ".so." in name for name in missing)


def test_unknown_device_and_missing_files(models_dir, tmp_path):
    with pytest.raises(ProviderError, match="device must be one of auto, cuda, cpu"):
        create_session(models_dir / "decoder.onnx", "tpu")
    with pytest.raises(ModelError, match=r"model\.json is missing"):
        Encoder(tmp_path)
