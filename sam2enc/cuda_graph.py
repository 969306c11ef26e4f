"""The encoder replayed as one CUDA graph (``$SAM2ENC_CUDA_GRAPH=1``): its kernels launched in one call.

Why: on the H100, SAM2-large's fp16 encoder took 29.5 ms against 9.4 ms for tiny: 3.1× the time for 4×
the blocks (48 against 12) and about 9× the arithmetic (Hiera's blocks × tokens × width², ~1.6 TFLOP
against ~0.17). Time that follows the number of kernels, not their work, is launch overhead. ONNX Runtime's
CUDA provider (``enable_cuda_graph``) captures every launch of one run and replays the capture after,
so the host launches once per photo (the gain is measured by ``make bench-gpu``, docs/gpu-serving.md).

A replay reads and writes the addresses it was captured with, so this module keeps the encoder's input
and its three outputs in buffers allocated once and bound once. The preprocessing graph writes each photo
straight into the input buffer (``GraphPreprocessor(..., out=)``); a host array is copied into it.
``Encoder.device_lock`` (one photo on the device at a time) keeps two photos out of the buffers.

The CPU has no graph to capture: there the same buffers and binding run without one, which is how the
CPU tests hold this path to the plain one, byte for byte.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort

from .bundle import INPUT_SIZE, TENSORS
from .settings import switch

CUDA_GRAPH_ENV = "SAM2ENC_CUDA_GRAPH"
CUDA_GRAPH_OPTION = "enable_cuda_graph"  # the CUDA provider's option
INPUT = "image"
_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16}


def cuda_graph_from_env() -> bool:
    """``$SAM2ENC_CUDA_GRAPH``: 1/true/yes/on replays the encoder as a CUDA graph; unset or 0 does not."""
    return switch(CUDA_GRAPH_ENV)


class FixedBuffers:
    """The encoder session bound once to an input and three outputs that never move on ``device``."""

    def __init__(self, session: ort.InferenceSession, device: str) -> None:
        self.session = session
        self.device = device
        shape = [1, 3, INPUT_SIZE, INPUT_SIZE]
        self.image = ort.OrtValue.ortvalue_from_shape_and_type(shape, np.float32, device, 0)
        self.binding = session.io_binding()
        self.binding.bind_ortvalue_input(INPUT, self.image)
        types = {output.name: output.type for output in session.get_outputs()}
        self.outputs = {
            name: ort.OrtValue.ortvalue_from_shape_and_type(list(shape), _DTYPES[types[name]], device, 0)
            for name, shape in TENSORS.items()
        }
        for name, value in self.outputs.items():
            self.binding.bind_ortvalue_output(name, value)

    def run(self, image: np.ndarray | ort.OrtValue) -> dict[str, np.ndarray]:
        """One photo through the encoder: ``image`` is the input buffer itself (the preprocessing graph
        wrote it) or anything else of its shape, copied in first. The outputs come back as host arrays
        of their own: a CPU OrtValue's ``numpy()`` is a view of the buffer the next photo overwrites."""
        if image is not self.image:
            pixels = image.numpy() if isinstance(image, ort.OrtValue) else image
            self.image.update_inplace(np.ascontiguousarray(pixels, dtype=np.float32))
        self.session.run_with_iobinding(self.binding)
        if self.device == "cpu":
            return {name: value.numpy().copy() for name, value in self.outputs.items()}
        return {name: value.numpy() for name, value in self.outputs.items()}  # a device-to-host copy
