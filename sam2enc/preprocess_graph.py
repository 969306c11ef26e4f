"""Resize + normalise as a small ONNX graph, so that on a GPU the 12 MP photo never becomes floats on the CPU.

SAM2Transforms resizes with ``interpolate(bilinear, antialias=True, align_corners=False)``. ONNX's own
``Resize(antialias=1)`` computes a different filter in ONNX Runtime (measured in docs/gpu-serving.md:
features off by more than the parity tolerance), so this graph computes torch's separable resize itself,
as two MatMuls against per-axis weight matrices built exactly as aten's ``upsample_bilinear2d_aa`` builds
them: a triangle filter whose support is scaled by the downscale factor, each row normalised to sum 1.

- The weights are computed on the host (a few ms per size, cached per size) and fed as inputs: the
  graph stays tiny and shape-generic, and on CUDA a size's weights are uploaded once and kept there.
- The graph is fed the photo as stored (uint8, (H, W, 3)); the EXIF orientation is folded into the
  weights (a flip reverses one matrix) plus one optional transpose of the 1024×1024 result, so the host
  never turns a 12 MP photo around.
- Arithmetic in torchvision's order: uint8 → float, / 255, resize, − mean, / std, all float32.

Dense MatMuls cost 2·1024·H·(W+1024) multiply-adds per channel (~94 GFLOP for 12 MP): nothing on a GPU,
far slower than Pillow's banded resize on a CPU — the CPU keeps preprocess.py (numbers in the docs).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from .bundle import INPUT_SIZE
from .gpu_decode import DecodedJpeg
from .image import LoadedImage
from .preprocess import MEAN, STD

OPSET = 18
PIXELS, ROWS, COLS, SWAP = "pixels", "rows", "cols", "swap"
OUTPUT = "image"

# EXIF transpose → (swap axes, flip rows, flip columns): upright = flips(stored.T if swap else stored).
_ORIENTATION_AXES: dict[Image.Transpose | None, tuple[bool, bool, bool]] = {
    None: (False, False, False),
    Image.Transpose.FLIP_LEFT_RIGHT: (False, False, True),
    Image.Transpose.FLIP_TOP_BOTTOM: (False, True, False),
    Image.Transpose.ROTATE_180: (False, True, True),
    Image.Transpose.TRANSPOSE: (True, False, False),
    Image.Transpose.ROTATE_90: (True, True, False),
    Image.Transpose.ROTATE_270: (True, False, True),
    Image.Transpose.TRANSVERSE: (True, True, True),
}


@lru_cache(maxsize=2)  # the two axes of one photo; GraphPreprocessor keeps its own per-size cache
def aa_weights(input_size: int, output_size: int = INPUT_SIZE) -> np.ndarray:
    """(output_size, input_size) float32: row i holds the weights of output pixel i, as aten computes them.

    aten/src/ATen/native/cpu/UpSampleKernel.cpp, ``_compute_index_ranges_weights`` with the bilinear
    filter (interp_size 2) and align_corners=False: scale = in/out; support = scale when downscaling,
    else 1; taps from trunc(center − support + 0.5) to trunc(center + support + 0.5), clipped to the
    image; weight = max(0, 1 − |(j − center + 0.5)·invscale|), normalised by the row's sum.
    """
    scale = input_size / output_size
    support = scale if scale >= 1.0 else 1.0
    invscale = 1.0 / scale if scale >= 1.0 else 1.0
    centers = scale * (np.arange(output_size, dtype=np.float64) + 0.5)
    xmin = np.maximum(np.trunc(centers - support + 0.5), 0).astype(np.int64)
    xmax = np.minimum(np.trunc(centers + support + 0.5), input_size).astype(np.int64)
    # Only the taps of each row (at most 2·support + 2), then scattered into the dense matrix.
    taps = xmin[:, None] + np.arange(int(np.ceil(2 * support)) + 2)[None, :]
    inside = taps < xmax[:, None]
    band = np.maximum(0.0, 1.0 - np.abs((taps - centers[:, None] + 0.5) * invscale)) * inside
    totals = band.sum(axis=1, keepdims=True)
    band = np.divide(band, totals, out=np.zeros_like(band), where=totals != 0)
    weights = np.zeros((output_size, input_size), dtype=np.float32)
    rows = np.broadcast_to(np.arange(output_size)[:, None], taps.shape)
    weights[rows[inside], taps[inside]] = band[inside]
    weights.flags.writeable = False
    return weights


def graph_feeds(height: int, width: int, orientation: Image.Transpose | None = None) -> dict[str, np.ndarray]:
    """The weight inputs for a photo stored as (height, width) that is shown after ``orientation``.

    upright = R_f · V · C_f with V the stored image (transposed when the orientation swaps axes), R_f / C_f
    the upright resize matrices with the orientation's flips folded in; when it swaps, the graph computes
    (C_fᵀ · stored · R_fᵀ) and transposes the 1024×1024 result.
    """
    swap, flip_rows, flip_cols = _ORIENTATION_AXES[orientation]
    up_h, up_w = (width, height) if swap else (height, width)
    rows = aa_weights(up_h)  # (1024, up_h)
    cols = aa_weights(up_w).T  # (up_w, 1024)
    if flip_rows:
        rows = rows[:, ::-1]
    if flip_cols:
        cols = cols[::-1, :]
    if swap:
        rows, cols = cols.T, rows.T
    return {
        ROWS: np.ascontiguousarray(rows, dtype=np.float32),
        COLS: np.ascontiguousarray(cols, dtype=np.float32),
        SWAP: np.array(swap),
    }


def build_graph():
    """The preprocessing graph: pixels (H, W, 3) uint8, rows (1024, H), cols (W, 1024), swap (bool)
    → image (1, 3, 1024, 1024) float32, normalised, upright."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    n = INPUT_SIZE
    constants = [
        numpy_helper.from_array(np.array(255.0, np.float32), "u8_max"),
        numpy_helper.from_array(MEAN.reshape(3, 1, 1), "mean"),
        numpy_helper.from_array(STD.reshape(3, 1, 1), "std"),
        numpy_helper.from_array(np.array([0], np.int64), "batch_axis"),
    ]
    nodes = [
        helper.make_node("Transpose", [PIXELS], ["chw_u8"], perm=[2, 0, 1]),  # uint8: the cheap copy
        helper.make_node("Cast", ["chw_u8"], ["chw"], to=TensorProto.FLOAT),
        helper.make_node("Div", ["chw", "u8_max"], ["unit"]),  # ToTensor
        helper.make_node("MatMul", ["unit", COLS], ["narrow"]),  # (3, H, 1024)
        helper.make_node("MatMul", [ROWS, "narrow"], ["square"]),  # (3, 1024, 1024)
        helper.make_node("Transpose", ["square"], ["square_t"], perm=[0, 2, 1]),
        helper.make_node("Where", [SWAP, "square_t", "square"], ["upright"]),
        helper.make_node("Sub", ["upright", "mean"], ["centred"]),
        helper.make_node("Div", ["centred", "std"], ["normalised"]),
        helper.make_node("Unsqueeze", ["normalised", "batch_axis"], [OUTPUT]),
    ]
    graph = helper.make_graph(
        nodes,
        "sam2enc_preprocess",
        [
            helper.make_tensor_value_info(PIXELS, TensorProto.UINT8, ["height", "width", 3]),
            helper.make_tensor_value_info(ROWS, TensorProto.FLOAT, [n, "height_or_width"]),
            helper.make_tensor_value_info(COLS, TensorProto.FLOAT, ["width_or_height", n]),
            helper.make_tensor_value_info(SWAP, TensorProto.BOOL, []),
        ],
        [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, [1, 3, n, n])],
        initializer=constants,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="sam2enc")
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def write_graph(path: Path | None = None) -> Path:
    """Regenerate preprocess.onnx (``python -m sam2enc.preprocess_graph``); a test checks it is current."""
    path = path or GRAPH_FILE
    path.write_bytes(build_graph().SerializeToString())
    return path


GRAPH_FILE = Path(__file__).with_name("preprocess.onnx")  # build_graph()'s bytes; serving has no onnx
# Weight matrices kept per (height, width, orientation): a 12 MP size holds 28 MB (on the GPU when served
# there); phones produce a handful of sizes.
CACHED_SIZES = 8


class GraphPreprocessor:
    """Runs preprocess.onnx on the encoder's device and hands back the normalised image as an OrtValue
    that stays there (on CUDA it feeds the encoder without a round trip through host memory)."""

    def __init__(self, providers: list, model: bytes | None = None) -> None:
        """``model``: the graph's bytes (default: preprocess.onnx; tests pass build_graph()'s)."""
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(model or GRAPH_FILE.read_bytes(), options, providers=providers)
        self.provider = self.session.get_providers()[0]
        self.device = "cuda" if self.provider == "CUDAExecutionProvider" else "cpu"
        self._weights: OrderedDict[tuple, dict] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, image: LoadedImage | DecodedJpeg | np.ndarray, out=None):
        """A loaded image (stored pixels + orientation; a GPU-decoded JPEG is bound where it lies), or
        an upright (H, W, 3) uint8 array → OrtValue (1, 3, 1024, 1024) float32 on this device: ``out``
        when given (the encoder's fixed input buffer, cuda_graph.py), else a new one."""
        binding = self.session.io_binding()
        if isinstance(image, np.ndarray):
            if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
                raise ValueError(f"expected an (H, W, 3) uint8 array, got {image.dtype} {image.shape}")
            (height, width, _), orientation = image.shape, None
            binding.bind_cpu_input(PIXELS, np.ascontiguousarray(image))
        elif isinstance(image, DecodedJpeg) and image.on_device:
            (height, width, _), orientation = image.stored_shape, image.orientation
            address = image.pixels.__cuda_array_interface__["data"][0]
            binding.bind_input(PIXELS, "cuda", 0, np.uint8, list(image.stored_shape), address)
        else:
            pixels, orientation = np.asarray(image.pixels, dtype=np.uint8), image.orientation
            (height, width, _) = pixels.shape
            binding.bind_cpu_input(PIXELS, pixels)
        for name, value in self._weights_for(height, width, orientation).items():
            binding.bind_ortvalue_input(name, value)
        if out is not None:
            binding.bind_ortvalue_output(OUTPUT, out)
        else:
            binding.bind_output(OUTPUT, self.device)
        self.session.run_with_iobinding(binding)
        return out if out is not None else binding.get_outputs()[0]

    def _weights_for(self, height: int, width: int, orientation) -> dict:
        import onnxruntime as ort

        key = (height, width, orientation)
        with self._lock:
            if key in self._weights:
                self._weights.move_to_end(key)
                return self._weights[key]
        feeds = graph_feeds(height, width, orientation)
        values = {
            name: ort.OrtValue.ortvalue_from_numpy(value, self.device if name != SWAP else "cpu", 0)
            for name, value in feeds.items()
        }
        with self._lock:
            self._weights[key] = values
            while len(self._weights) > CACHED_SIZES:
                self._weights.popitem(last=False)
        return values


if __name__ == "__main__":
    print(f"wrote {write_graph()}")
