"""Shared fixtures: one random-weight SAM2.1 tiny checkpoint, exported once and cached; real photos.

The export is cached under .cache/test-models/tiny-random-<key>/ (sam2enc.testing), keyed by the source of
every sam2enc module the export imports and the torch/sam2/onnx/onnxruntime versions, so a second `make
test` skips the ~15 s export and never tests a stale one; CI starts from a fresh clone and builds it once.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "test-models"
REPORT = ROOT / "build" / "test-reports"
SEED = 0
_rows: list[dict] = []


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "2")


def skimage_data() -> Path:
    """scikit-image ships a few real photos; read them with Pillow, without importing skimage."""
    spec = importlib.util.find_spec("skimage")
    assert spec and spec.submodule_search_locations, "scikit-image is a test dependency (make install)"
    return Path(next(iter(spec.submodule_search_locations))) / "data"


@pytest.fixture(scope="session")
def model_files() -> tuple[Path, Path]:
    """(exported model dir, checkpoint) for a random-weight SAM2.1 tiny, seed 0, cached in .cache/."""
    from sam2enc.testing import cached_random_export

    directory = cached_random_export(CACHE, "tiny")
    return directory, directory / "random_tiny.pt"


@pytest.fixture(scope="session")
def models_dir(model_files) -> Path:
    return model_files[0]


@pytest.fixture(scope="session")
def sam2_model(model_files):
    """The PyTorch model the ONNX files came from, loaded from the same checkpoint file."""
    import torch

    from sam2enc.export import load_sam2

    torch.set_grad_enabled(False)
    return load_sam2("tiny", model_files[1])


@pytest.fixture(scope="session")
def predictor(sam2_model):
    from tests.reference import image_predictor

    return image_predictor(sam2_model)


@pytest.fixture(scope="session")
def encoder(models_dir):
    from sam2enc.encoder import Encoder

    return Encoder(models_dir, device="cpu")


@pytest.fixture(scope="session")
def decoder(models_dir):
    from sam2enc.decoder import Decoder

    return Decoder(models_dir)


@pytest.fixture(scope="session")
def photos(tmp_path_factory) -> dict[str, Path]:
    """Real photos, plus an EXIF-rotated phone-style JPEG and a 12 MP JPEG made from them."""
    data = skimage_data()
    out = tmp_path_factory.mktemp("photos")
    found = {
        "astronaut": data / "astronaut.png",
        "coffee": data / "coffee.png",
        "rocket": data / "rocket.jpg",
    }
    chelsea = Image.open(data / "chelsea.png").convert("RGB")
    # Stored sideways with orientation 6: a viewer rotates it 90° clockwise to show it upright.
    exif = Image.Exif()
    exif[0x0112] = 6
    rotated = out / "chelsea_exif6.jpg"
    chelsea.transpose(Image.Transpose.ROTATE_90).save(rotated, quality=92, exif=exif)
    found["chelsea_exif6"] = rotated
    big = out / "coffee_12mp.jpg"
    Image.open(data / "coffee.png").convert("RGB").resize((4032, 3024), Image.BICUBIC).save(big, quality=90)
    found["coffee_12mp"] = big
    # Fine texture at 12 MP, tiled without resampling: where a resize filter that is not torch's shows.
    gravel = np.asarray(Image.open(data / "gravel.png").convert("RGB"))
    textured = out / "gravel_12mp.jpg"
    Image.fromarray(np.ascontiguousarray(np.tile(gravel, (6, 8, 1))[:3024, :4032])).save(textured, quality=90)
    found["gravel_12mp"] = textured
    return found


def upright_rgb(path: Path) -> np.ndarray:
    """What a careful SAM2 user feeds the predictor: Pillow decode, EXIF applied, RGB."""
    from PIL import ImageOps

    with Image.open(path) as img:
        return np.asarray(ImageOps.exif_transpose(img).convert("RGB"))


@pytest.fixture(scope="session")
def report():
    """Collect measured numbers; printed at the end of the run and written to build/test-reports."""
    return _rows.append


def pytest_terminal_summary(terminalreporter) -> None:
    if not _rows:
        return
    REPORT.mkdir(parents=True, exist_ok=True)
    (REPORT / "parity.json").write_text(json.dumps(_rows, indent=2) + "\n")
    terminalreporter.section("measured parity (random-weight SAM2.1 tiny vs SAM2ImagePredictor)")
    for row in _rows:
        terminalreporter.write_line("  ".join(f"{k}={v}" for k, v in row.items()))


# Tiers are declared once, by each test file or test (pytestmark / @pytest.mark.*): server (opens a
# port), node (runs Node.js), browser, slow. `make test-fast` runs none of them; these guards make a test
# that opens a port or runs Node without saying so fail, so the fast tier stays what it says it is.
@pytest.fixture(autouse=True)
def _tier_guards(request, monkeypatch):
    import socket

    from tests import node

    if not request.node.get_closest_marker("server"):

        def listen(self, *args):
            raise AssertionError(f"{request.node.nodeid} opens a port: mark it @pytest.mark.server")

        monkeypatch.setattr(socket.socket, "listen", listen)
    if not request.node.get_closest_marker("node"):
        monkeypatch.setattr(node, "ALLOWED", False)


@pytest.fixture(scope="module")
def browser():
    """Headless chromium driven by playwright-core (tests/web/browser.py), one per test module."""
    from tests.web.browser import Browser

    chromium = Browser()
    yield chromium
    chromium.close()
