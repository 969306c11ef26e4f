"""Whatever people upload gets a correct bundle or one clear sentence — never a traceback or half a bundle.

Each accepted case names the upright RGB array it must decode to, built independently of sam2enc (from
the array the test file was made from); each rejected case names the message. The library, the CLI and
(in test_server.py) Cog's HTTP server are checked against the same table.
"""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sam2enc.bundle import EMBEDDING_FILE, Bundle, read_bundle
from sam2enc.errors import ImageError
from sam2enc.image import MAX_PIXELS, load_image
from sam2enc.pipeline import encode_to_dir
from sam2enc.preprocess import preprocess
from tests.conftest import skimage_data

ROOT = Path(__file__).resolve().parents[1]
T = Image.Transpose
# EXIF orientation → the transpose that *stores* an upright image so a viewer shows it upright again
STORE = {
    2: T.FLIP_LEFT_RIGHT,
    3: T.ROTATE_180,
    4: T.FLIP_TOP_BOTTOM,
    5: T.TRANSPOSE,
    6: T.ROTATE_90,
    7: T.TRANSVERSE,
    8: T.ROTATE_270,
}


def photo() -> np.ndarray:
    """A real photo, small so the table stays fast: chelsea the cat, 451×300, cropped to 160×120."""
    return np.asarray(Image.open(skimage_data() / "chelsea.png").convert("RGB"))[60:180, 150:310].copy()


def png_bytes(width: int, height: int, bit_depth: int, color_type: int, raw_rows: bytes) -> bytes:
    """A PNG written by hand, for what Pillow cannot save (16-bit RGB) or refuses to (width 0, bombs)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw_rows))
        + chunk(b"IEND", b"")
    )


def save(img: Image.Image, fmt: str, **kwargs) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt, **kwargs)
    return out.getvalue()


def over_white(rgba: np.ndarray) -> np.ndarray:
    alpha = rgba[..., 3:4].astype(np.float64) / 255
    return np.round(rgba[..., :3] * alpha + 255 * (1 - alpha)).astype(np.uint8)


@dataclass
class Case:
    name: str
    make: Callable[[], bytes]
    expect: Callable[[], np.ndarray] | str  # the upright RGB, or a fragment of the error message
    filename: str = "upload"
    tolerance: int = 0  # grey levels, for lossy codecs and Pillow's integer compositing


def _accepted() -> list[Case]:
    rgb = photo()
    rgba = np.dstack([rgb, np.linspace(0, 255, rgb.shape[1], dtype=np.uint8)[None].repeat(rgb.shape[0], 0)])
    gray = rgb[..., 1]
    palette = Image.fromarray(rgb).quantize(16)
    pal_rgb = np.asarray(palette.convert("RGB"))
    sixteen = (np.arange(120 * 160, dtype=np.uint32).reshape(120, 160) * 3).astype(np.uint16)
    rgb16 = (rgb.astype(np.uint16) * 257 + 128).astype(">u2")
    unit = (gray / 255).astype(np.float32)  # a float image in [0, 1] ...
    unit[0, 0] = 1.0  # ... whose maximum is exactly 1.0 (white): still a [0, 1] image, not 0-255
    gray_of_unit = np.round(unit.astype(np.float64) * 255).astype(np.uint8)
    cases = [
        Case("jpeg baseline", lambda: save(Image.fromarray(rgb), "JPEG", quality=95), rgb, tolerance=40),
        Case(
            "jpeg progressive",
            lambda: save(Image.fromarray(rgb), "JPEG", quality=95, progressive=True),
            rgb,
            tolerance=40,
        ),
        Case(
            "jpeg cmyk",
            lambda: save(Image.fromarray(rgb).convert("CMYK"), "JPEG", quality=95),
            rgb,
            tolerance=60,
        ),
        Case(
            "jpeg grayscale",
            lambda: save(Image.fromarray(gray), "JPEG", quality=95),
            np.dstack([gray] * 3),
            tolerance=40,
        ),
        Case("png rgb", lambda: save(Image.fromarray(rgb), "PNG"), rgb),
        Case(
            "png rgba over white", lambda: save(Image.fromarray(rgba), "PNG"), over_white(rgba), tolerance=1
        ),
        Case(
            "png la over white",
            lambda: save(Image.fromarray(rgba).convert("LA"), "PNG"),
            lambda: over_white(np.asarray(Image.fromarray(rgba).convert("LA").convert("RGBA"))),
            tolerance=1,
        ),
        Case("png grayscale", lambda: save(Image.fromarray(gray), "PNG"), np.dstack([gray] * 3)),
        Case("png palette", lambda: save(palette, "PNG"), pal_rgb),
        Case(
            "png palette transparent",
            lambda: save(palette, "PNG", transparency=0),
            lambda: np.where(np.asarray(palette)[..., None] == 0, 255, pal_rgb).astype(np.uint8),
        ),
        Case(
            "png 16-bit gray",
            lambda: save(Image.fromarray(sixteen), "PNG"),
            np.dstack([np.round(sixteen / 257).astype(np.uint8)] * 3),
        ),
        Case(
            "png 16-bit rgb",
            lambda: png_bytes(160, 120, 16, 2, b"".join(b"\0" + row.tobytes() for row in rgb16)),
            rgb,
            tolerance=1,
        ),
        Case("gif static", lambda: save(palette, "GIF"), pal_rgb),
        Case(
            "gif animated: first frame",
            lambda: save(palette, "GIF", save_all=True, append_images=[palette.rotate(180)]),
            pal_rgb,
        ),
        Case("webp lossless", lambda: save(Image.fromarray(rgb), "WEBP", lossless=True), rgb),
        Case("webp lossy", lambda: save(Image.fromarray(rgb), "WEBP", quality=95), rgb, tolerance=60),
        Case("bmp", lambda: save(Image.fromarray(rgb), "BMP"), rgb),
        Case(
            "tiff float32 in [0, 1], max exactly 1.0",
            lambda: save(Image.fromarray(unit), "TIFF"),
            np.dstack([gray_of_unit] * 3),
        ),
        Case("tiff", lambda: save(Image.fromarray(rgb), "TIFF"), rgb),
        Case("png named .jpg", lambda: save(Image.fromarray(rgb), "PNG"), rgb, filename="photo.jpg"),
    ]
    for orientation, store in STORE.items():
        exif = Image.Exif()
        exif[0x0112] = orientation
        stored = Image.fromarray(rgb).transpose(store)
        cases.append(
            Case(f"exif orientation {orientation}", lambda s=stored, e=exif: save(s, "PNG", exif=e), rgb)
        )
    exif = Image.Exif()
    exif[0x0112] = 6
    cases.append(
        Case(
            "jpeg exif orientation 6",
            lambda: save(Image.fromarray(rgb).transpose(T.ROTATE_90), "JPEG", quality=95, exif=exif),
            rgb,
            tolerance=40,
        )
    )
    return cases


def _rejected() -> list[Case]:
    rgb = photo()
    return [
        Case("empty file", lambda: b"", "is empty (0 bytes)"),
        Case(
            "truncated jpeg",
            lambda: save(Image.fromarray(rgb), "JPEG")[:1500],
            "could not be decoded: truncated or corrupted",
        ),
        Case(
            "truncated png",
            lambda: save(Image.fromarray(rgb), "PNG")[:3000],
            "could not be decoded: truncated or corrupted",
        ),
        Case(
            "jpeg header only",
            lambda: b"\xff\xd8\xff\xe0" + bytes(40),
            "starts like a JPEG but its header is corrupted",
        ),
        Case("text file", lambda: b"name,age\nada,36\n", "is not a supported image: it is a text file"),
        Case(
            "html page",
            lambda: b"<!DOCTYPE html><html><body>Not found</body></html>",
            "it is an HTML page, not an image",
        ),
        Case(
            "svg",
            lambda: b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>',
            "it is an SVG (vector) file",
        ),
        Case("pdf", lambda: b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "it is a PDF document"),
        Case("heic", lambda: b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", "HEIC is not supported"),
        Case(
            "random bytes",
            lambda: bytes(np.random.default_rng(1).integers(128, 256, 300, dtype=np.uint8)),
            "unrecognised content",
        ),
        Case("width 0", lambda: png_bytes(0, 10, 8, 2, b""), "a side of 0 pixels (0×10)"),
        Case(
            "aspect ratio 21:1", lambda: save(Image.new("RGB", (2100, 100)), "PNG"), "an aspect ratio of 21:1"
        ),
        Case(
            "decompression bomb",
            lambda: png_bytes(40000, 30000, 8, 2, b"\0" * 10),
            f"over the limit of {MAX_PIXELS:,} pixels",
        ),
    ]


ACCEPTED, REJECTED = _accepted(), _rejected()


def expected_rgb(case: Case) -> np.ndarray:
    return case.expect() if callable(case.expect) else case.expect


def assert_matches(actual: np.ndarray, case: Case) -> None:
    expected = expected_rgb(case)
    assert actual.shape == expected.shape and actual.dtype == np.uint8
    worst = np.abs(actual.astype(int) - expected.astype(int)).max()
    if case.tolerance > 2:  # lossy codecs: pixels may move, the picture may not
        assert np.abs(actual.astype(int) - expected.astype(int)).mean() < 4, case.name
    else:
        assert worst <= case.tolerance, f"{case.name}: off by {worst}"


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("uploads")
    paths = {}
    for i, case in enumerate(ACCEPTED + REJECTED):
        path = directory / f"{i:02d}" / case.filename
        path.parent.mkdir()
        path.write_bytes(case.make())
        paths[case.name] = path
    return paths


@pytest.mark.parametrize("case", ACCEPTED, ids=lambda c: c.name)
def test_library_decodes_to_the_upright_rgb(case, files):
    loaded = load_image(files[case.name])
    assert_matches(loaded.rgb, case)
    # the size the manifest reports (originalWidth/Height) is the upright one: orientations 5-8 swap it
    height, width = expected_rgb(case).shape[:2]
    assert (loaded.width, loaded.height) == (width, height), case.name


@pytest.mark.parametrize("case", REJECTED, ids=lambda c: c.name)
def test_library_rejects_with_one_clear_sentence(case, files, encoder, tmp_path):
    with pytest.raises(ImageError) as info:
        encode_to_dir(files[case.name], encoder, tmp_path / "bundle")
    message = str(info.value)
    assert case.expect in message and "\n" not in message
    assert list(tmp_path.iterdir()) == [], "nothing may be written for a rejected upload"


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(ImageError, match="does not exist"):
        load_image(tmp_path / "nope.jpg")
    with pytest.raises(ImageError, match="is a directory, not an image file"):
        load_image(tmp_path)


def test_cli_matrix(files, encoder, tmp_path):
    """One CLI run over every upload: a bundle for each accepted one, one error line for each rejected."""
    cases = [
        c
        for c in ACCEPTED
        if c.name in ("png rgba over white", "exif orientation 5", "jpeg cmyk", "gif animated: first frame")
    ]
    cases += REJECTED
    links = tmp_path / "in"
    links.mkdir()
    for i, case in enumerate(cases):
        (links / f"case{i:02d}{Path(case.filename).suffix}").symlink_to(files[case.name])
    out = tmp_path / "out"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sam2enc",
            "encode",
            *sorted(map(str, links.iterdir())),
            "--models",
            str(encoder.models_dir),
            "--out",
            str(out),
            "--device",
            "cpu",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == len(REJECTED)
    for i, case in enumerate(cases):
        bundle_dir = out / f"case{i:02d}"
        if isinstance(case.expect, str):
            assert any(case.expect in line for line in errors), case.name
            assert not bundle_dir.exists(), case.name
        else:
            bundle = read_bundle(bundle_dir)
            rgb = load_image(files[case.name]).rgb
            assert (bundle.original_height, bundle.original_width) == expected_rgb(case).shape[:2]
            reference = Bundle(
                encoder.run(preprocess(rgb)), rgb.shape[1], rgb.shape[0], encoder.model, encoder.provider
            )
            assert (bundle_dir / EMBEDDING_FILE).read_bytes() == reference.to_bytes(), case.name
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"case{i:02d}" for i, c in enumerate(cases) if not isinstance(c.expect, str)
    )
