"""The ONNX Runtime encoder session: which provider it really got, and one run per image.

The CUDA execution provider falls back to CPU silently when a CUDA or cuDNN library is missing, so
after creating the session we read ``get_providers()`` back and either fail (``device="cuda"``) or warn
(``device="auto"``). ONNX Runtime sessions are safe to ``run`` from several threads at once.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnxruntime as ort

from .bundle import INPUT_SIZE, TENSORS
from .errors import ModelError, ProviderError

log = logging.getLogger("sam2enc")

ENCODER_FILE = "encoder.onnx"
DECODER_FILE = "decoder.onnx"
DECODER_HIRES_FILE = "decoder_hires.onnx"
MODEL_INFO_FILE = "model.json"
DEVICES = ("auto", "cuda", "cpu")
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"


def read_model_info(models_dir: str | os.PathLike) -> dict:
    """model.json written at export: model name, checkpoint sha256, graphs."""
    path = Path(models_dir) / MODEL_INFO_FILE
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelError(
            f"{path} is missing: export the model first (`make weights MODEL=tiny` or "
            "`python -m sam2enc export ...`)"
        ) from None


# What onnxruntime-gpu 1.2x/1.3x (CUDA 12, cuDNN 9) loads when the CUDA provider starts.
CUDA_LIBRARIES = (
    "libcudart.so.12",
    "libcublas.so.12",
    "libcublasLt.so.12",
    "libcufft.so.11",
    "libcurand.so.10",
    "libcudnn.so.9",
)


def missing_cuda_libraries() -> list[str]:
    """The CUDA/cuDNN libraries the dynamic loader cannot find, so an error can name them."""
    import ctypes

    missing = []
    for name in CUDA_LIBRARIES:
        try:
            ctypes.CDLL(name)
        except OSError:
            missing.append(name)
    return missing


def session_options(threads: int | None = None, spinning: bool = True) -> ort.SessionOptions:
    """Measured on the tiny encoder (2 cores): no memory-pattern planning saves 540 MB of peak RSS
    (1461 → 920 MB) at the same speed; spinning threads gain nothing on a 1.6 s graph and would take
    cycles from a concurrent prediction's decoding, so the encoder turns it off."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only: the traced Hiera graph triggers a harmless shape notice
    options.enable_mem_pattern = False
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if threads:
        options.intra_op_num_threads = threads
    return options


def create_session(
    path: Path, device: str = "auto", threads: int | None = None, spinning: bool = True
) -> ort.InferenceSession:
    """Create an InferenceSession on the requested device and check what it actually got."""
    if device not in DEVICES:
        raise ProviderError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
    if not path.is_file():
        raise ModelError(f"{path} is missing: export the model first (`make weights MODEL=tiny`)")
    want_cuda = device in ("auto", "cuda")
    available = ort.get_available_providers()
    if want_cuda and CUDA in available and hasattr(ort, "preload_dlls"):
        try:
            ort.preload_dlls()  # CUDA/cuDNN from the nvidia-* wheels, when present
        except Exception as exc:
            log.debug("onnxruntime.preload_dlls() failed: %s", exc)
    providers = [CUDA, CPU] if want_cuda and CUDA in available else [CPU]
    session = ort.InferenceSession(str(path), session_options(threads, spinning), providers=providers)
    got = session.get_providers()[0]
    if want_cuda and got != CUDA:
        if CUDA not in available:
            reason = "this onnxruntime build has no CUDA provider (install onnxruntime-gpu)"
        else:
            missing = missing_cuda_libraries() or ["none of the usual ones; see ONNX Runtime's log"]
            reason = f"the CUDA provider failed to load; missing: {', '.join(missing)}"
        if device == "cuda":
            raise ProviderError(f"device='cuda' was requested but {reason}")
        log.warning("Running on CPU: %s", reason)
    return session


@dataclass
class Encoder:
    """The exported encoder, ready to turn preprocessed images into the three fp16 feature maps."""

    models_dir: Path
    device: str = "auto"
    threads: int | None = None
    info: dict = field(init=False)
    session: object = field(init=False, repr=False)
    setup_seconds: float = field(init=False)

    def __post_init__(self) -> None:
        start = time.perf_counter()
        self.models_dir = Path(self.models_dir)
        self.info = read_model_info(self.models_dir)
        path = self.models_dir / ENCODER_FILE
        self.session = create_session(path, self.device, self.threads, spinning=False)
        outputs = {o.name for o in self.session.get_outputs()}
        if outputs != set(TENSORS):
            raise ModelError(f"{ENCODER_FILE} outputs {sorted(outputs)}, expected {sorted(TENSORS)}")
        self.setup_seconds = time.perf_counter() - start

    @property
    def provider(self) -> str:
        return self.session.get_providers()[0]

    @property
    def model(self) -> dict:
        return {"name": self.info["model"], "checkpointSha256": self.info.get("checkpointSha256")}

    def warm_up(self) -> float:
        """One run on a blank image, so that the first user does not pay for kernel selection."""
        start = time.perf_counter()
        self.run(np.zeros((1, 3, INPUT_SIZE, INPUT_SIZE), dtype=np.float32))
        return time.perf_counter() - start

    def run(self, image: np.ndarray) -> dict[str, np.ndarray]:
        """(1,3,1024,1024) float32 → {name: float16 array}, bound by output name, never position."""
        names = list(TENSORS)
        values = self.session.run(names, {"image": image})
        return {name: np.asarray(value, dtype=np.float16) for name, value in zip(names, values)}
