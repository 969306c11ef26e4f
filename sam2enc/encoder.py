"""The ONNX Runtime encoder: which provider it really got, and one run per image.

The CUDA execution provider falls back to CPU silently when a CUDA or cuDNN library is missing, so after
creating the session we read ``get_providers()`` back and either fail (``device="cuda"``, what the Cog
image asks for) or warn (``device="auto"``, laptops and tests). ONNX Runtime sessions are safe to
``run`` from several threads at once.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from .bundle import INPUT_SIZE, TENSORS
from .cuda import cuda_diagnosis
from .cuda_graph import CUDA_GRAPH_OPTION, FixedBuffers, cuda_graph_from_env
from .errors import ModelError, ProviderError
from .gpu_decode import DecodedJpeg, JpegDecoder, check_photo, decode_from_env, gpu_jpeg_decoder
from .image import LoadedImage, load_image
from .modeldir import ENCODER_FILE, ModelInfo
from .precision import check_precision, cuda_options, fp16_encoder, precision_from_env
from .preprocess import preprocess
from .settings import choice

log = logging.getLogger(__name__)

DEVICES = ("auto", "cuda", "cpu")
DEVICE_ENV = "SAM2ENC_DEVICE"
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
# ONNX Runtime's CUDA provider computes fp32 convolutions and matmuls in TF32 by default. Measured on an
# H100 (tools/bench_gpu.py): features off SAM2's fp32 model by 8.1e-4 (tiny) / 8.7e-4 (large) relative L2
# with TF32, 2.3e-5 / 2.4e-5 without, for 11.6 → 16.9 ms (tiny) / 35 → 71 ms (large) of a ~160 ms
# prediction that is mostly JPEG decoding. Parity is the promise, so IEEE fp32 it is (precision.py
# owns the rule: ``cuda_options("fp32")`` unless SAM2ENC_PRECISION asks for tf32 or fp16).


def device_from_env() -> str:
    """``$SAM2ENC_DEVICE`` (the Cog image sets ``cuda``), else ``auto``."""
    return choice(DEVICE_ENV, DEVICES, "auto")


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
    path: Path,
    device: str = "auto",
    threads: int | None = None,
    spinning: bool = True,
    cuda: dict[str, str] | None = None,
) -> ort.InferenceSession:
    """Create an InferenceSession on the requested device and check what it actually got."""
    if device not in DEVICES:
        raise ProviderError(
            f"device must be one of {', '.join(DEVICES)}, got {device!r} (from ${DEVICE_ENV} or device=)"
        )
    if not path.is_file():
        raise ModelError(f"{path} is missing: export the model first (`make weights MODEL=tiny`)")
    want_cuda = device in ("auto", "cuda")
    available = ort.get_available_providers()
    if want_cuda and CUDA in available and hasattr(ort, "preload_dlls"):
        try:
            ort.preload_dlls()  # CUDA/cuDNN from the nvidia-* wheels, when present
        except Exception as exc:
            log.debug("onnxruntime.preload_dlls() failed: %s", exc)
    providers = [(CUDA, cuda or cuda_options("fp32")), CPU] if want_cuda and CUDA in available else [CPU]
    session = ort.InferenceSession(str(path), session_options(threads, spinning), providers=providers)
    if want_cuda and session.get_providers()[0] != CUDA:
        reason = cuda_diagnosis(has_provider=CUDA in available)
        if device == "cuda":
            raise ProviderError(f"device='cuda' was requested but {reason}")
        log.warning("Running on CPU: %s", reason)
    return session


PREPROCESSING = ("auto", "host", "graph")
# ONNX Runtime refusing a CUDA graph at session creation: "This session cannot use the graph capture
# feature as requested by the user as all compute graph nodes have not been partitioned to the
# CUDAExecutionProvider" (1.31's words; older releases said "the CUDA Graph feature").
GRAPH_REFUSED = re.compile(r"cannot use the (graph capture|CUDA Graph) feature", re.IGNORECASE)


class Encoder:
    """The exported encoder, ready to turn images into the three fp16 feature maps.

    ``precision`` (default ``$SAM2ENC_PRECISION``, else fp32) is served on CUDA only; the CPU computes
    fp32. ``preprocessing``: "graph" resizes and normalises in preprocess.onnx on the encoder's device,
    "host" with Pillow (preprocess.py); "auto" takes the graph on CUDA and the host on the CPU, where
    the graph's dense resize is slower (docs/gpu-serving.md). ``cuda_graph`` (default
    ``$SAM2ENC_CUDA_GRAPH``, else off) replays the encoder as one CUDA graph from fixed buffers
    (cuda_graph.py); the CPU runs the same buffers without a graph.
    """

    def __init__(
        self,
        models_dir: str | os.PathLike,
        device: str = "auto",
        threads: int | None = None,
        precision: str | None = None,
        preprocessing: str = "auto",
        jpeg: JpegDecoder | None = None,
        cuda_graph: bool | None = None,
    ) -> None:
        """``jpeg``: a JpegDecoder to decode JPEGs with (tests pass nvImageCodec's CPU backend); by
        default the GPU's, when the graph runs on CUDA and ``$SAM2ENC_DECODE`` allows it (gpu_decode.py)."""
        start = time.perf_counter()
        self.models_dir = Path(models_dir)
        self.info = ModelInfo.read(self.models_dir)
        precision = check_precision(precision or precision_from_env())
        decoding = decode_from_env()  # read here, on every device: a bad value fails setup everywhere
        if preprocessing not in PREPROCESSING:
            raise ValueError(f"preprocessing must be auto, host or graph, not {preprocessing!r}")
        cuda_possible = device in ("auto", "cuda") and CUDA in ort.get_available_providers()
        if precision != "fp32" and not cuda_possible:
            log.warning("precision %s was asked for, but the CPU computes fp32: serving fp32", precision)
            precision = "fp32"
        cuda_graph = cuda_graph_from_env() if cuda_graph is None else cuda_graph
        self._device, self._threads = device, threads
        self._path = fp16_encoder(self.models_dir) if precision == "fp16" else self.models_dir / ENCODER_FILE
        self.session: ort.InferenceSession = self._session(self._path, precision, cuda_graph)
        if precision != "fp32" and self.provider != CUDA:
            log.warning("precision %s needs CUDA, which did not load: serving fp32", precision)
            if precision == "fp16":  # tf32 already runs encoder.onnx, whose CPU session ignores use_tf32
                self._path = self.models_dir / ENCODER_FILE
                self.session = self._session(self._path, "fp32", cuda_graph)
            precision = "fp32"
        self.precision = precision
        # One photo on the device at a time (pipeline.py): concurrent runs of one session would split
        # the GPU (or the CPU's cores) between them and hold two sets of activations for no throughput.
        self.device_lock = threading.Lock()
        self.graph = None
        if preprocessing == "graph" or (preprocessing == "auto" and self.provider == CUDA):
            from .preprocess_graph import GraphPreprocessor

            providers = [(CUDA, cuda_options("fp32")), CPU] if self.provider == CUDA else [CPU]
            self.graph = GraphPreprocessor(providers)
        # JPEGs decoded on the GPU where they are resized (gpu_decode.py): CUDA and the graph only.
        if jpeg is not None and self.graph is None:
            raise ValueError("a JpegDecoder feeds the preprocessing graph: pass preprocessing='graph'")
        self.jpeg: JpegDecoder | None = jpeg
        if jpeg is None and self.graph is not None and self.provider == CUDA:
            self.jpeg = gpu_jpeg_decoder(decoding)
        outputs = {o.name for o in self.session.get_outputs()}
        if outputs != set(TENSORS):
            raise ModelError(f"{ENCODER_FILE} outputs {sorted(outputs)}, expected {sorted(TENSORS)}")
        # Fixed buffers where a CUDA graph replays, and on the CPU when one is asked for (no graph there:
        # the same path, so that the CPU tests run it).
        self.fixed: FixedBuffers | None = None
        if cuda_graph and (self.provider != CUDA or self._graph_enabled()):
            self.fixed = FixedBuffers(self.session, "cuda" if self.provider == CUDA else "cpu")
        self.setup_seconds = time.perf_counter() - start

    def __repr__(self) -> str:
        return f"Encoder({self.info.model!r} in {self.models_dir}, {self.precision} on {self.provider})"

    def _session(self, path: Path, precision: str, cuda_graph: bool) -> ort.InferenceSession:
        """The encoder's session; asked for a CUDA graph that the provider refuses (a node it cannot
        capture, e.g. one placed on the CPU), the same session without one, and a warning."""
        options = cuda_options(precision)
        if cuda_graph:
            try:
                graph = {**options, CUDA_GRAPH_OPTION: "1"}
                return create_session(path, self._device, self._threads, spinning=False, cuda=graph)
            except Exception as exc:
                if not GRAPH_REFUSED.search(str(exc)):
                    raise
                log.warning("the encoder runs without a CUDA graph: %s", exc)
        return create_session(path, self._device, self._threads, spinning=False, cuda=options)

    def _graph_enabled(self) -> bool:
        """Whether the CUDA provider this session got was created with ``enable_cuda_graph`` (read back)."""
        return self.session.get_provider_options().get(CUDA, {}).get(CUDA_GRAPH_OPTION) == "1"

    @property
    def provider(self) -> str:
        return self.session.get_providers()[0]

    @property
    def model(self) -> dict:
        """The manifest's ``model`` entry."""
        return self.info.identity

    @property
    def execution(self) -> str:
        """How the encoder runs: "cuda-graph" (replayed), "fixed-buffers" (the same binding on the CPU,
        which has no graphs) or "plain"."""
        if self.fixed is None:
            return "plain"
        return "cuda-graph" if self._graph_enabled() else "fixed-buffers"

    @property
    def preprocessing(self) -> str:
        return "graph" if self.graph is not None else "host"

    @property
    def decoding(self) -> str:
        """Who decodes JPEGs: "gpu" (nvJPEG), "nvimgcodec-cpu" (tests) or "pillow"."""
        if self.jpeg is None:
            return "pillow"
        return "nvimgcodec-cpu" if self.jpeg.device_id is None else "gpu"

    def load(self, source: str | os.PathLike | bytes, name: str | None = None) -> LoadedImage | DecodedJpeg:
        """Decode an upload for this encoder: ``image.load_image``, or JPEGs by the GPU decoder."""
        if self.jpeg is not None:
            return self.jpeg.load(source, name)
        return load_image(source, name)

    def warm_up(self) -> float:
        """One run on a blank image, so that the first user does not pay for kernel selection; and the
        JPEG decoder's whole path (decode, bind, preprocess) once, else Pillow decodes."""
        start = time.perf_counter()
        blank = np.zeros((INPUT_SIZE, INPUT_SIZE, 3), dtype=np.uint8)
        try:
            self.run(self.preprocess(blank))  # a CUDA graph is captured here
        except Exception as exc:
            if self.fixed is None:
                raise
            log.warning("the encoder runs without a CUDA graph: its first run failed (%s)", exc)
            self.session = self._session(self._path, self.precision, cuda_graph=False)
            self.fixed = None
            self.run(self.preprocess(blank))
        if self.jpeg is not None:
            try:
                self.preprocess(self.jpeg.load(check_photo(), "the decoder check photo"))
            except Exception as exc:
                log.warning("JPEG decoding stays on the CPU (Pillow): the GPU path failed (%s)", exc)
                self.jpeg = None
        return time.perf_counter() - start

    def preprocess(self, image):
        """A loaded image (or upright (H, W, 3) uint8 array) → the encoder's input: a float32 array
        (host preprocessing) or an OrtValue on the encoder's device (graph preprocessing: with fixed
        buffers, the encoder's own input buffer, so call it under ``device_lock``)."""
        if self.graph is not None:
            return self.graph(image, out=self.fixed.image if self.fixed is not None else None)
        return preprocess(image)

    def run(self, image: np.ndarray | ort.OrtValue) -> dict[str, np.ndarray]:
        """(1,3,1024,1024) float32, an array or an OrtValue on any device → {name: float16 array},
        bound by output name, never position."""
        names = list(TENSORS)
        if self.fixed is not None:  # the same promise on the fixed buffers: float16, by name
            outputs = self.fixed.run(image)
            return {name: np.asarray(outputs[name], dtype=np.float16) for name in names}
        if isinstance(image, ort.OrtValue):
            binding = self.session.io_binding()
            binding.bind_ortvalue_input("image", image)
            for name in names:
                binding.bind_output(name, "cpu")
            self.session.run_with_iobinding(binding)
            values = [value.numpy() for value in binding.get_outputs()]
        else:
            values = self.session.run(names, {"image": image})
        return {name: np.asarray(value, dtype=np.float16) for name, value in zip(names, values)}
