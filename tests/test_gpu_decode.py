"""JPEG decoding by nvImageCodec (sam2enc/gpu_decode.py), run here on its libjpeg-turbo CPU backend.

The GPU backend is what the Cog image uses; everything around it is the same code and is checked here:
the same pixels as Pillow, the same upright size, the same refusals in the same words, the fallbacks to
Pillow, and a bundle byte-identical to the one made from Pillow's pixels. How far nvJPEG's GPU pixels
land from Pillow's is measured by `make bench-gpu` (docs/gpu-serving.md).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from sam2enc.encoder import Encoder
from sam2enc.errors import ImageError, SettingError
from sam2enc.gpu_decode import DecodedJpeg, JpegDecoder, decode_from_env, gpu_jpeg_decoder, pixel_distance
from sam2enc.image import LoadedImage, load_image
from sam2enc.pipeline import encode
from tests.test_image_inputs import ACCEPTED, REJECTED, assert_matches, expected_rgb, files  # noqa: F401

PHOTOS = ["rocket", "chelsea_exif6", "coffee_12mp", "gravel_12mp"]


@pytest.fixture(scope="module")
def jpeg() -> JpegDecoder:
    return JpegDecoder(device_id=None)


@pytest.mark.parametrize("name", PHOTOS)
def test_same_pixels_as_pillow(name, jpeg, photos):
    ours, pillow = jpeg.load(photos[name]), load_image(photos[name])
    assert isinstance(ours, DecodedJpeg)
    assert (ours.width, ours.height, ours.orientation) == (pillow.width, pillow.height, pillow.orientation)
    assert np.array_equal(ours.rgb, pillow.rgb)


@pytest.mark.parametrize("case", ACCEPTED, ids=lambda c: c.name)
def test_every_accepted_upload_decodes_upright(case, files, jpeg):  # noqa: F811
    loaded = jpeg.load(files[case.name])
    assert_matches(loaded.rgb, case)
    height, width = expected_rgb(case).shape[:2]
    assert (loaded.width, loaded.height) == (width, height), case.name


def test_what_is_not_a_plain_jpeg_goes_to_pillow(files, jpeg):  # noqa: F811
    for name in ("jpeg cmyk", "jpeg grayscale", "png named .jpg", "gif static"):
        assert isinstance(jpeg.load(files[name]), LoadedImage), name
    for name in ("jpeg baseline", "jpeg progressive", "jpeg exif orientation 6"):
        assert isinstance(jpeg.load(files[name]), DecodedJpeg), name


def fails(data, params):
    raise RuntimeError("nvjpegStatus 6")


@pytest.mark.parametrize("decode", [lambda data, params: None, fails], ids=["answers None", "raises"])
def test_a_jpeg_the_gpu_decoder_refuses_is_decoded_by_pillow(decode, jpeg, photos, monkeypatch):
    """nvJPEG answers None for JPEG variants it does not take, or fails: Pillow decodes that photo."""
    monkeypatch.setattr(jpeg, "decoder", SimpleNamespace(decode=decode))
    loaded = jpeg.load(photos["chelsea_exif6"])
    assert isinstance(loaded, LoadedImage)
    assert np.array_equal(loaded.rgb, load_image(photos["chelsea_exif6"]).rgb)


@pytest.mark.parametrize("case", REJECTED, ids=lambda c: c.name)
def test_refusals_in_the_same_words(case, files, jpeg):  # noqa: F811
    with pytest.raises(ImageError) as ours:
        jpeg.load(files[case.name])
    with pytest.raises(ImageError) as pillow:
        load_image(files[case.name])
    assert str(ours.value) == str(pillow.value)


@pytest.fixture(scope="module")
def graph_encoders(models_dir, jpeg):
    return (
        Encoder(models_dir, device="cpu", preprocessing="graph", jpeg=jpeg),
        Encoder(models_dir, device="cpu", preprocessing="graph"),
    )


@pytest.mark.parametrize("name", ["chelsea_exif6", "coffee_12mp"])
def test_bundle_identical_to_pillow_decoding(name, graph_encoders, photos):
    ours, pillow = graph_encoders
    assert (ours.decoding, pillow.decoding) == ("nvimgcodec-cpu", "pillow")
    assert encode(photos[name], ours).to_bytes() == encode(photos[name], pillow).to_bytes()


def test_a_jpeg_decoder_needs_the_graph(models_dir, jpeg):
    with pytest.raises(ValueError, match="preprocessing='graph'"):
        Encoder(models_dir, device="cpu", preprocessing="host", jpeg=jpeg)


def test_decode_setting_is_checked(monkeypatch):
    monkeypatch.setenv("SAM2ENC_DECODE", "nvjpeg")
    with pytest.raises(SettingError, match=r"\$SAM2ENC_DECODE must be one of auto, gpu, pillow, got"):
        decode_from_env()
    monkeypatch.setenv("SAM2ENC_DECODE", "Pillow")
    assert decode_from_env() == "pillow"


class OffByOneLevel:
    """A decoder whose pixels sit one level above Pillow's: what an IDCT that rounds differently does."""

    device_id = None

    def __init__(self, real: JpegDecoder) -> None:
        self.real = real

    def load(self, source, name=None):
        from nvidia import nvimgcodec

        decoded = self.real.load(source, name)
        stored = np.asarray(decoded.pixels.cpu()).astype(np.int16) + 1
        return DecodedJpeg(nvimgcodec.as_image(np.clip(stored, 0, 255).astype(np.uint8)), decoded.orientation)


def test_auto_takes_only_a_decoder_that_gives_pillows_exact_pixels(jpeg, caplog):
    """One level on some pixels moves the random-weight encoder's features by 1.4e-3 to 2.7e-3
    (gpu_decode.py): parity first, so ``auto`` leaves such a decoder out and says why."""
    assert pixel_distance(jpeg) == (0, 0.0)
    assert gpu_jpeg_decoder("auto", make=lambda: jpeg) is jpeg
    off = OffByOneLevel(jpeg)
    assert pixel_distance(off)[0] == 1
    with caplog.at_level("WARNING", logger="sam2enc"):
        assert gpu_jpeg_decoder("auto", make=lambda: off) is None
    assert "differ from Pillow's by up to 1 levels" in caplog.text
    assert gpu_jpeg_decoder("gpu", make=lambda: off) is off  # asked for: taken, distance logged
    assert gpu_jpeg_decoder("pillow", make=lambda: pytest.fail("not even made")) is None


def test_a_decoder_that_fails_its_warm_up_leaves_jpegs_to_pillow(models_dir, caplog):
    class Broken:
        device_id = 0

        def load(self, source, name=None):
            raise RuntimeError("cudaErrorIllegalAddress")

    encoder = Encoder(models_dir, device="cpu", preprocessing="graph", jpeg=Broken())
    with caplog.at_level("WARNING", logger="sam2enc"):
        encoder.warm_up()
    assert encoder.decoding == "pillow"
    assert "the GPU path failed (cudaErrorIllegalAddress)" in caplog.text
