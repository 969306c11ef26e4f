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

Parity first. SAM2's predictor is compared on Pillow's pixels, and the encoder is sensitive to them:
measured with the random-weight tiny, one level of difference on 10% of the pixels moves the features
by 1.4e-3 (gravel, 12 MP) to 2.7e-3 (rocket), over the 1e-3 promise. So at setup the decoder must turn a
check photo made here into Pillow's exact pixels, and run through the preprocessing graph, before it
decodes any upload (``SAM2ENC_DECODE=auto``, the default); otherwise Pillow decodes and the log says by
how many levels it missed. ``SAM2ENC_DECODE=gpu`` takes it whatever its distance (logged),
``pillow`` never. nvImageCodec is asked for libjpeg's fancy chroma upsampling, which Pillow uses; its
libjpeg-turbo CPU backend gives Pillow's exact pixels (tests/test_gpu_decode.py runs it here); nvJPEG's
distance on the GPU is measured by ``make bench-gpu`` ("decode" rows) — pending a GPU.
"""

from __future__ import annotations

import ctypes
import functools
import io
import logging
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from .image import SWAPS_AXES, LoadedImage, load_image, plain_jpeg_orientation, read_upload
from .settings import choice

log = logging.getLogger(__name__)

# $SAM2ENC_DECODE: auto = the GPU's when it gives Pillow's exact pixels on the check photo; gpu = the
# GPU's whenever it loads; pillow = never.
DECODERS = ("auto", "gpu", "pillow")
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
    """``$SAM2ENC_DECODE``, else auto."""
    return choice(DECODE_ENV, DECODERS, "auto")


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
        decoded = self._decode(data) if plain else None
        if decoded is None or not _interleaved_rgb(decoded):
            return load_image(data, name)  # Pillow decodes it, or says what is wrong with it
        if self._sync is not None and _is_device(decoded):
            self._sync(decoded.cuda_stream)  # the decode is queued on its stream: finish it first
        return DecodedJpeg(decoded, orientation)

    def _decode(self, data: bytes) -> Any:
        """nvImageCodec's image, or None: a JPEG that nvJPEG fails on costs this photo Pillow's decode,
        never the prediction."""
        try:
            return self.decoder.decode(data, params=self.params)
        except Exception as exc:
            log.warning("nvImageCodec failed on this JPEG (%s): Pillow decodes it", exc)
            return None


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


@functools.cache
def check_photo() -> bytes:
    """A 1024×768 JPEG made here, the same on every machine: colour ramps under fine noise, 4:2:0 chroma,
    quality 90 — every IDCT coefficient and the chroma upsampling in use."""
    rng = np.random.default_rng(21)
    y, x = np.mgrid[0:768, 0:1024]
    ramps = np.stack([x / 4, y / 3, (x + y) / 7], axis=-1) % 256
    rgb = np.clip(ramps + rng.normal(0, 24, ramps.shape), 0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, "JPEG", quality=90, subsampling=2)
    return out.getvalue()


def pixel_distance(decoder: JpegDecoder) -> tuple[int, float]:
    """How far ``decoder`` lands from Pillow on the check photo: (max, mean) levels over all samples."""
    data = check_photo()
    ours = decoder.load(data, "the decoder check photo")
    if not isinstance(ours, DecodedJpeg):
        raise RuntimeError("it left the check photo to Pillow")
    return levels_apart(ours.rgb, load_image(data).rgb)


def levels_apart(a: np.ndarray, b: np.ndarray) -> tuple[int, float]:
    """(max, mean) absolute difference of two uint8 images, in levels."""
    difference = np.abs(a.astype(np.int16) - b.astype(np.int16))
    return int(difference.max()), float(difference.mean())


def gpu_jpeg_decoder(mode: str = "auto", make=lambda: JpegDecoder(0)) -> JpegDecoder | None:
    """The GPU decoder when nvImageCodec loads and (``auto``) gives Pillow's exact pixels on the check
    photo; else None, with one log line saying why: Pillow decodes."""
    if mode == "pillow":
        return None
    try:
        decoder = make()
        worst, mean = pixel_distance(decoder)
    except Exception as exc:  # not installed, no nvJPEG, no CUDA runtime
        log.warning("JPEG decoding stays on the CPU (Pillow): nvImageCodec is not usable here (%s)", exc)
        return None
    if worst and mode == "auto":
        log.warning(
            "JPEG decoding stays on the CPU (Pillow): nvJPEG's pixels differ from Pillow's by up to %d "
            "levels (mean %.4f) on the check photo, which would move the features past the parity "
            "promise (SAM2ENC_DECODE=gpu takes it anyway)",
            worst,
            mean,
        )
        return None
    log.info("JPEGs decoded on the GPU (nvJPEG): check photo off Pillow by max %d, mean %.4f", worst, mean)
    return decoder
