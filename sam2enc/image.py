"""Turn whatever a user uploads into an upright RGB uint8 array — the only module that knows Pillow.

Decisions, documented in the README:
- The decoder is chosen by content, never by file name; only the formats in ``FORMATS`` are opened.
- EXIF orientation is applied first, so ``originalWidth``/``originalHeight`` and click coordinates
  refer to the image as a viewer shows it.
- Transparency is composited over white (what a browser shows on a white page), for every mode
  with alpha: RGBA, LA, PA and P with a transparent palette entry.
- 16-bit images are scaled to 8 bits (value / 257), not clipped.
- Animated images: the first frame.
- At most ``MAX_PIXELS`` pixels and an aspect ratio of at most ``MAX_ASPECT``:1.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

from .errors import ImageError

FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "AVIF", "BMP", "TIFF")  # JPEG covers MPO
# A 108 MP phone photo fits. Measured: a 12000×10000 JPEG peaks at 1.4 GB resident while encoding.
MAX_PIXELS = 120_000_000
MAX_ASPECT = 20.0
MAX_FILE_BYTES = 200 * 1024 * 1024

# Pillow's own bomb guard warns at MAX_IMAGE_PIXELS and refuses at twice that; we check the header
# against MAX_PIXELS ourselves before decoding, with a message that names our limit.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
ImageFile.LOAD_TRUNCATED_IMAGES = False


# EXIF orientation → the transpose that shows the stored pixels upright (as ImageOps.exif_transpose).
ORIENTATIONS = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
SWAPS_AXES = {
    Image.Transpose.TRANSPOSE,
    Image.Transpose.TRANSVERSE,
    Image.Transpose.ROTATE_90,
    Image.Transpose.ROTATE_270,
}


@dataclass(frozen=True)
class LoadedImage:
    """A decoded upload: RGB pixels as stored, plus the transpose that makes them upright.

    The orientation is applied after resizing (see preprocess.py): a transpose commutes with the
    square resize, and turning 1024×1024 floats costs a fraction of turning a 12 MP photo.
    """

    pixels: Image.Image  # mode RGB, in the file's stored orientation
    orientation: Image.Transpose | None
    format: str  # the container Pillow recognised, e.g. "JPEG"
    source_mode: str  # Pillow mode before conversion, e.g. "CMYK"

    @property
    def width(self) -> int:
        return self.pixels.height if self.orientation in SWAPS_AXES else self.pixels.width

    @property
    def height(self) -> int:
        return self.pixels.width if self.orientation in SWAPS_AXES else self.pixels.height

    @property
    def rgb(self) -> np.ndarray:
        """The upright image as an (H, W, 3) uint8 array (a copy: for tests, previews, the demo)."""
        upright = self.pixels.transpose(self.orientation) if self.orientation is not None else self.pixels
        return np.asarray(upright, dtype=np.uint8)


def load_image(source: str | os.PathLike | bytes, name: str | None = None) -> LoadedImage:
    """Decode an upload (a path or its bytes) into RGB pixels and their orientation, or raise ImageError.

    ``name`` is how error messages refer to the input (default: the file name).
    """
    data, name = read_upload(source, name)
    try:
        with Image.open(io.BytesIO(data), formats=FORMATS) as img:
            _check_size(img, name)
            img.seek(0)
            img.load()
            source_mode, fmt = img.mode, img.format or "unknown"
            orientation = ORIENTATIONS.get(img.getexif().get(0x0112))
            pixels = _to_rgb(img)
    except UnidentifiedImageError:
        raise ImageError(f"{name} is not a supported image: {_describe(data)}") from None
    except Image.DecompressionBombError:
        raise ImageError(f"{name} is over the limit of {MAX_PIXELS:,} pixels (decompression bomb?)") from None
    except ImageError:
        raise
    except (OSError, SyntaxError, ValueError, EOFError, IndexError) as exc:
        raise ImageError(f"{name} could not be decoded: truncated or corrupted ({exc})") from None
    return LoadedImage(pixels=pixels, orientation=orientation, format=fmt, source_mode=source_mode)


def read_upload(source: str | os.PathLike | bytes, name: str | None = None) -> tuple[bytes, str]:
    """An upload's bytes and how messages name it; raises ImageError for a missing, empty or huge file."""
    data = _read_bytes(source)
    if name is None:
        name = "the upload" if isinstance(source, bytes) else Path(source).name
    if not data:
        raise ImageError(f"{name} is empty (0 bytes)")
    return data, name


def plain_jpeg_orientation(data: bytes, name: str) -> tuple[bool, Image.Transpose | None]:
    """Read the header only: (True, orientation) for a complete 8-bit YCbCr JPEG within the limits,
    which a GPU decoder can take; (False, None) for anything else, which ``load_image`` decodes (and
    names the problem, if there is one). Raises ImageError for a JPEG over the size limits, like
    ``load_image``, so that both paths refuse the same uploads with the same words."""
    try:
        with Image.open(io.BytesIO(data), formats=("JPEG",)) as img:
            _check_size(img, name)
            plain = img.format == "JPEG" and img.mode == "RGB" and data.endswith(b"\xff\xd9")
            return plain, ORIENTATIONS.get(img.getexif().get(0x0112)) if plain else None
    except ImageError:
        raise
    except Exception:  # not a JPEG, or a header Pillow cannot read: load_image says which
        return False, None


def _read_bytes(source: str | os.PathLike | bytes) -> bytes:
    if isinstance(source, bytes):
        data = source
    else:
        path = Path(source)
        try:
            size = path.stat().st_size
            if size > MAX_FILE_BYTES:
                raise ImageError(f"{path.name} is {size:,} bytes, over the limit of {MAX_FILE_BYTES:,} bytes")
            data = path.read_bytes()
        except FileNotFoundError:
            raise ImageError(f"{path} does not exist") from None
        except IsADirectoryError:
            raise ImageError(f"{path} is a directory, not an image file") from None
        except PermissionError:
            raise ImageError(f"{path} cannot be read (permission denied)") from None
        except OSError as exc:
            raise ImageError(f"{path} cannot be read ({exc.strerror or exc})") from None
    if len(data) > MAX_FILE_BYTES:
        raise ImageError(f"the upload is {len(data):,} bytes, over the limit of {MAX_FILE_BYTES:,}")
    return data


def _check_size(img: Image.Image, name: str) -> None:
    width, height = img.size
    if width < 1 or height < 1:
        raise ImageError(f"{name} has a side of 0 pixels ({width}×{height})")
    if width * height > MAX_PIXELS:
        raise ImageError(
            f"{name} is {width}×{height} = {width * height:,} pixels, over the limit of {MAX_PIXELS:,} pixels"
        )
    aspect = max(width, height) / min(width, height)
    if aspect > MAX_ASPECT:
        raise ImageError(
            f"{name} is {width}×{height}, an aspect ratio of {aspect:.0f}:1; SAM2 squashes every image "
            f"to a square, so at most {MAX_ASPECT:.0f}:1 is accepted"
        )


def _to_rgb(img: Image.Image) -> Image.Image:
    mode = img.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        gray = _sixteen_to_eight(np.asarray(img).astype(np.float64))
        return Image.fromarray(gray).convert("RGB")
    if mode == "F":
        gray = np.asarray(img, dtype=np.float64)
        scale = 255.0 if np.nanmax(gray, initial=0.0) <= 1.0 else 1.0
        gray = np.clip(np.nan_to_num(gray) * scale, 0, 255).round().astype(np.uint8)
        return Image.fromarray(gray).convert("RGB")
    if (mode == "P" and "transparency" in img.info) or mode == "PA":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return img if img.mode == "RGB" else img.convert("RGB")


def _sixteen_to_eight(values: np.ndarray) -> np.ndarray:
    return np.clip(values / 257.0, 0, 255).round().astype(np.uint8)


def _describe(data: bytes) -> str:
    """Say what the bytes look like, so the error tells the user what they actually sent."""
    head = data[:512].lstrip().lower()
    if head.startswith((b"<svg", b"<?xml")) and b"<svg" in data[:4096].lower():
        return "it is an SVG (vector) file; export it as PNG or JPEG"
    if head.startswith((b"<!doctype html", b"<html")) or b"<html" in head:
        return "it is an HTML page, not an image (did a link return a web page?)"
    if data[4:12] in (b"ftypheic", b"ftypheix", b"ftyphevc"):
        return "HEIC is not supported; convert it to JPEG or PNG"
    if data.startswith(b"\x89PNG") and len(data) >= 24:
        width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        if width == 0 or height == 0:
            return f"it is a PNG with a side of 0 pixels ({width}×{height})"
    for magic, kind in ((b"\xff\xd8\xff", "JPEG"), (b"\x89PNG", "PNG"), (b"GIF8", "GIF")):
        if data.startswith(magic):
            return f"it starts like a {kind} but its header is corrupted or truncated"
    if data.startswith(b"%PDF"):
        return "it is a PDF document"
    try:
        data[:4096].decode("utf-8")
        return "it is a text file"
    except UnicodeDecodeError:
        pass
    return f"unrecognised content (accepted formats: {', '.join(FORMATS)})"
