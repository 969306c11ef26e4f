"""The encoder replayed as a CUDA graph (``SAM2ENC_CUDA_GRAPH=1``, sam2enc/cuda_graph.py), checked on the CPU.

A CUDA graph replays the kernels of one run at the addresses they were captured with; what sam2enc adds
around it (fixed buffers bound once, the preprocessing graph writing into the input buffer, outputs
copied out before the next photo, one photo on the device at a time, the fallbacks when the provider
refuses or the capture fails) runs the same on the CPU, where these tests hold it to the plain path
byte for byte. The replay's own speed is measured by `make bench-gpu`.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from sam2enc.cuda_graph import CUDA_GRAPH_ENV, FixedBuffers, cuda_graph_from_env
from sam2enc.encoder import Encoder
from sam2enc.errors import SettingError
from sam2enc.modeldir import ENCODER_FILE
from sam2enc.pipeline import encode

PHOTOS = ["astronaut", "rocket", "chelsea_exif6"]


@pytest.fixture(scope="module")
def graph_encoders(models_dir):
    """(fixed buffers, plain), both with in-graph preprocessing: the pair a CUDA machine serves."""
    return (
        Encoder(models_dir, device="cpu", preprocessing="graph", cuda_graph=True),
        Encoder(models_dir, device="cpu", preprocessing="graph", cuda_graph=False),
    )


@pytest.fixture(scope="module")
def expected(graph_encoders, photos) -> dict[str, bytes]:
    """Each photo's bundle from the plain path with in-graph preprocessing."""
    return {name: encode(photos[name], graph_encoders[1]).to_bytes() for name in PHOTOS}


def test_fixed_buffers_give_the_plain_bundles(graph_encoders, expected, photos):
    """Every photo's bundle, read after all of them went through the same buffers, is the plain one."""
    fixed, plain = graph_encoders
    assert (fixed.execution, plain.execution) == ("fixed-buffers", "plain")
    bundles = {name: encode(photos[name], fixed) for name in PHOTOS}
    for name, bundle in bundles.items():  # the later photos did not overwrite the earlier ones' features
        assert bundle.to_bytes() == expected[name], name
        assert {array.dtype for array in bundle.features.values()} == {np.dtype(np.float16)}, "as promised"


def test_host_preprocessed_pixels_are_copied_into_the_buffer(models_dir, encoder, photos):
    fixed = Encoder(models_dir, device="cpu", cuda_graph=True)
    assert (fixed.preprocessing, fixed.execution) == ("host", "fixed-buffers")
    first = encode(photos["astronaut"], fixed)
    encode(photos["rocket"], fixed)
    assert first.to_bytes() == encode(photos["astronaut"], encoder).to_bytes()


def test_preprocessing_writes_into_the_encoders_input_buffer(graph_encoders, photos):
    from sam2enc.image import load_image

    fixed, _ = graph_encoders
    with fixed.device_lock:
        assert fixed.preprocess(load_image(photos["rocket"])) is fixed.fixed.image


def test_concurrent_photos_share_the_buffers_one_at_a_time(graph_encoders, expected, photos):
    """Photos at once: each photo's preprocessing and encoder run under the device lock together, so no
    photo's pixels land in the buffer while another's are being encoded."""
    fixed, _ = graph_encoders
    start = threading.Barrier(len(PHOTOS))

    def predict(name: str) -> tuple[str, bytes]:
        start.wait()
        return name, encode(photos[name], fixed).to_bytes()

    with ThreadPoolExecutor(len(PHOTOS)) as pool:
        for name, data in pool.map(predict, PHOTOS):
            assert data == expected[name], name


def test_setting_is_read_from_the_environment(monkeypatch):
    for value, expected in [("", False), ("0", False), ("off", False), ("1", True), ("True", True)]:
        monkeypatch.setenv(CUDA_GRAPH_ENV, value)
        assert cuda_graph_from_env() is expected, value
    monkeypatch.setenv(CUDA_GRAPH_ENV, "maybe")
    with pytest.raises(SettingError, match=r"^\$SAM2ENC_CUDA_GRAPH must be 1 or 0, got 'maybe'$"):
        cuda_graph_from_env()
    monkeypatch.setenv(CUDA_GRAPH_ENV, "1")
    assert cuda_graph_from_env()


# ONNX Runtime's refusals, as 1.31 and older releases word them
REFUSALS = [
    "[ONNXRuntimeError] : 1 : FAIL : This session cannot use the graph capture feature as requested by the "
    "user as all compute graph nodes have not been partitioned to the CUDAExecutionProvider",
    "This session cannot use the CUDA Graph feature as requested by the user  as the model has control "
    "flow nodes which can't be supported by CUDA Graphs.",
]


@pytest.mark.parametrize("refusal", REFUSALS, ids=["1.31", "older"])
def test_cuda_graph_reaches_the_provider_and_a_refusal_serves_without(
    refusal, models_dir, monkeypatch, caplog
):
    """With a CUDA provider on offer, the session asks it for ``enable_cuda_graph``; a provider that
    refuses (a node it cannot capture) costs the graph, not the setup."""
    import sam2enc.encoder as encoder_module

    asked = []
    real = encoder_module.create_session

    def refusing(path, device="auto", threads=None, spinning=True, cuda=None):
        asked.append((path.name, cuda))
        if cuda and cuda.get("enable_cuda_graph") == "1":
            raise RuntimeError(refusal)
        return real(path, "cpu", threads, spinning)

    monkeypatch.setattr(encoder_module, "create_session", refusing)
    monkeypatch.setattr(encoder_module.ort, "get_available_providers", lambda: ["CUDAExecutionProvider"])
    monkeypatch.setenv(CUDA_GRAPH_ENV, "1")
    with caplog.at_level(logging.WARNING, logger="sam2enc.encoder"):
        encoder = Encoder(models_dir, device="auto", preprocessing="host")
    assert asked == [
        (ENCODER_FILE, {"use_tf32": "0", "enable_cuda_graph": "1"}),
        (ENCODER_FILE, {"use_tf32": "0"}),
    ]
    assert f"the encoder runs without a CUDA graph: {refusal}" in caplog.text
    assert encoder.execution != "cuda-graph"


def test_other_session_errors_are_not_hidden_by_the_fallback(tmp_path, models_dir):
    import shutil

    shutil.copytree(models_dir, tmp_path / "m", ignore=shutil.ignore_patterns("*.pt", "encoder*.onnx"))
    with pytest.raises(Exception, match="export the model first"):
        Encoder(tmp_path / "m", device="cpu", cuda_graph=True)


def test_a_failed_capture_at_warm_up_serves_the_plain_path(models_dir, photos, encoder, monkeypatch, caplog):
    """The capture happens at the warm-up's first run: if it fails, setup goes on without the graph."""
    fixed = Encoder(models_dir, device="cpu", cuda_graph=True)
    real = FixedBuffers.run

    def capture_fails(self, image):
        monkeypatch.setattr(FixedBuffers, "run", real)
        raise RuntimeError("CUDA failure 900: operation not permitted when stream is capturing")

    monkeypatch.setattr(FixedBuffers, "run", capture_fails)
    with caplog.at_level(logging.WARNING, logger="sam2enc.encoder"):
        fixed.warm_up()
    assert "runs without a CUDA graph: its first run failed (CUDA failure 900" in caplog.text
    assert fixed.execution == "plain"
    assert encode(photos["coffee"], fixed).to_bytes() == encode(photos["coffee"], encoder).to_bytes()
