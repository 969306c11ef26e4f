"""JPEG decoding on the encoder's GPU (nvImageCodec → nvJPEG), so that a 12 MP photo leaves the CPU alone.

Measured on an H100 (docs/bench-gpu-h100.json): of a 223 ms ``predict()`` for a 12 MP JPEG, 136 ms was
Pillow decoding and resizing on one CPU core. preprocess_graph.py moved the resize onto the GPU; this
module moves the decode. The pixels land in GPU memory and are bound straight into the preprocessing
graph, so the photo never crosses PCIe as anything but its compressed bytes.

What stays with Pillow (``image.load_image``), so that every upload is checked and named alike:
- the header: format, the size limits, the EXIF orientation (folded into the resize weights, as for
  Pillow-decoded photos);
- every image that is not a complete 8-bit YCbCr JPEG (PNG, CMYK or grayscale JPEG, MPO, a file that
  does not end in an EOI marker), and any JPEG that nvImageCodec cannot decode: Pillow then decodes it,
  or names what is wrong with it.

Parity: nvImageCodec is asked for libjpeg's fancy chroma upsampling, which Pillow uses. Its libjpeg-turbo
CPU backend gives pixels identical to Pillow's (tests/test_gpu_decode.py runs it on the CPU); how far
nvJPEG's GPU decode lands from Pillow's pixels is measured by ``make bench-gpu`` ("decode" rows).
"""

from __future__ import annotations

import ctypes
import logging
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from .image import SWAPS_AXES, LoadedImage, load_image, plain_jpeg_orientation, read_upload

log = logging.getLogger(__name__)

DECODERS = ("auto", "pillow")  # $SAM2ENC_DECODE: auto = the GPU's when it loads, else Pillow
DECODE_ENV = "SAM2ENC_DECODE"
# libjpeg's default chroma upsampling (what Pillow gets); nvImageCodec's own default is the faster,
# blockier one.
OPTIONS = ":fancy_upsampling=1"


@dataclass(frozen=True)
class DecodedJpeg:
    """A JPEG decoded by nvImageCodec: interleaved RGB uint8, (H, W, 3) as stored, on the GPU (or in
    host memory for the CPU backend), plus the transpose that makes it upright."""

    pixels: Any  # nvidia.nvimgcodec.Image
    orientation: Image.Transpose | None
    format: str = "JPEG"
    source_mode: str = "RGB"

    @property
    def stored_shape(self) -> tuple[int, int, int]:
        return int(self.pixels.height), int(self.pixels.width), 3

    @property
    def width(self) -> int:
        height, width, _ = self.stored_shape
        return height if self.orientation in SWAPS_AXES else width

    @property
    def height(self) -> int:
        height, width, _ = self.stored_shape
        return width if self.orientation in SWAPS_AXES else height

    @property
    def on_device(self) -> bool:
        return _is_device(self.pixels)

    @property
    def rgb(self) -> np.ndarray:
        """The upright image as an (H, W, 3) uint8 array in host memory (a copy: for tests and the bench)."""
        stored = Image.fromarray(np.asarray(self.pixels.cpu(), dtype=np.uint8))
        upright = stored.transpose(self.orientation) if self.orientation is not None else stored
        return np.asarray(upright, dtype=np.uint8)


def _is_device(image: Any) -> bool:
    return "DEVICE" in str(image.buffer_kind)  # ImageBufferKind.STRIDED_DEVICE / STRIDED_HOST


def decode_from_env() -> str:
    value = os.environ.get(DECODE_ENV, "").strip().lower() or "auto"
    if value not in DECODERS:
        raise ValueError(f"${DECODE_ENV} must be one of {', '.join(DECODERS)}, got {value!r}")
    return value


class JpegDecoder:
    """nvImageCodec, made once per process. ``device_id=None`` takes its libjpeg-turbo CPU backend
    (tests, and the pixel-identity check); otherwise the GPU backends only, on that device."""

    def __init__(self, device_id: int | None = 0) -> None:
        os.environ.setdefault("PYNVIMGCODEC_VERBOSITY", "0")  # our log line says whether it loaded
        from nvidia import nvimgcodec

        if device_id is None:
            backends = [nvimgcodec.Backend(nvimgcodec.BackendKind.CPU_ONLY)]
            device = nvimgcodec.NVIMGCODEC_DEVICE_CPU_ONLY
        else:
            kinds = ("HW_GPU_ONLY", "GPU_ONLY", "HYBRID_CPU_GPU")
            backends = [nvimgcodec.Backend(getattr(nvimgcodec.BackendKind, kind)) for kind in kinds]
            device = device_id
        self.device_id = device_id
        self.decoder = nvimgcodec.Decoder(device_id=device, backends=backends, options=OPTIONS)
        self.params = nvimgcodec.DecodeParams(
            apply_exif_orientation=False,  # the orientation goes into the resize weights instead
            color_spec=nvimgcodec.ColorSpec.SRGB,
            sample_format=nvimgcodec.SampleFormat.I_RGB,
        )
        self._sync = _stream_synchronize() if device_id is not None else None

    def load(self, source: str | os.PathLike | bytes, name: str | None = None) -> DecodedJpeg | LoadedImage:
        """Like ``image.load_image``; a plain JPEG comes back decoded by nvImageCodec."""
        data, name = read_upload(source, name)
        plain, orientation = plain_jpeg_orientation(data, name)
        decoded = self.decoder.decode(data, params=self.params) if plain else None
        if decoded is None or not _interleaved_rgb(decoded):
            return load_image(data, name)  # Pillow decodes it, or says what is wrong with it
        if self._sync is not None and _is_device(decoded):
            self._sync(decoded.cuda_stream)  # the decode is queued on its stream: finish it first
        return DecodedJpeg(decoded, orientation)


def _interleaved_rgb(image: Any) -> bool:
    """(H, W, 3) uint8 rows with no padding: what the graph's ``pixels`` input is bound to."""
    shape = tuple(image.shape)
    strides = tuple(image.strides) if image.strides is not None else None
    contiguous = strides is None or strides == (shape[1] * 3, 3, 1)
    return len(shape) == 3 and shape[2] == 3 and str(image.dtype) == "uint8" and contiguous


def _stream_synchronize():
    """cudaStreamSynchronize from the CUDA runtime that onnxruntime-gpu was built for (its major)."""
    from onnxruntime.capi import build_and_package_info

    major = str(getattr(build_and_package_info, "cuda_version", "13")).split(".")[0]
    cudart = ctypes.CDLL(f"libcudart.so.{major}")
    cudart.cudaStreamSynchronize.argtypes = [ctypes.c_void_p]

    def synchronize(stream: int | None) -> None:
        if (status := cudart.cudaStreamSynchronize(ctypes.c_void_p(stream or 0))) != 0:
            raise RuntimeError(f"cudaStreamSynchronize failed with CUDA error {status}")

    return synchronize


def gpu_jpeg_decoder(device_id: int = 0) -> JpegDecoder | None:
    """The GPU decoder when nvImageCodec and nvJPEG load on this machine; else None (one log line why)."""
    try:
        return JpegDecoder(device_id)
    except Exception as exc:  # not installed, no nvJPEG, no CUDA runtime: Pillow decodes
        log.warning("JPEG decoding stays on the CPU (Pillow): nvImageCodec did not load (%s)", exc)
        return None
