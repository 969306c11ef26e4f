"""Small helpers several test files share: mask overlap, a downloaded mask PNG, the sam2enc command."""

from __future__ import annotations

import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def iou(mask: np.ndarray, reference: np.ndarray) -> float:
    """Intersection over union of a mask and its reference (boolean, one shape).

    The reference must cover part of the photo, not none and not all of it: against an empty or a full
    reference, an empty or full mask "agrees" whatever the code did (random weights can cover 92–95 % of
    a photo), so such a comparison fails here instead of passing vacuously."""
    assert mask.shape == reference.shape, (mask.shape, reference.shape)
    coverage = float(np.asarray(reference, dtype=bool).mean())
    assert 0 < coverage < 1, f"the reference covers {coverage:.1%} of the photo: a comparison testing nothing"
    return float(np.logical_and(mask, reference).sum() / np.logical_or(mask, reference).sum())


def best_mask(decoder, bundle, points, box=None) -> np.ndarray:
    """What ``sam2enc decode`` makes of these prompts: the Python decoder's best mask (bool, photo size)."""
    prediction = decoder.predict(bundle, points=points, box=box)
    return prediction.masks[prediction.best]


def png_mask(path: Path) -> np.ndarray:
    """A mask PNG as `sam2enc decode` and the page write it (8-bit grayscale, 0/255) → bool array."""
    with Image.open(path) as image:
        assert image.mode == "L", image.mode
        values = np.asarray(image)
    assert set(np.unique(values)) <= {0, 255}, np.unique(values)
    return values == 255


def cli(*args: object) -> subprocess.CompletedProcess:
    """``python -m sam2enc ARGS`` from the repository root, output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "sam2enc", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )


def multipart(photo: Path) -> tuple[bytes, str]:
    """A photo as Replicate's clients upload it: one multipart/form-data part named "content"."""
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="content"; filename="{photo.name}"\r\n'
        "Content-Type: image/jpeg\r\n\r\n"
    ).encode()
    body = head + photo.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


NOWHERE = "http://127.0.0.1:9/v1"  # a Replicate that is never called (port 9: discard)


@contextmanager
def page_server(models_dir: Path, demo: object = None, upstream: str = NOWHERE) -> Iterator[str]:
    """The page served by ``sam2enc.web``'s proxy on a free port, its Replicate side at ``upstream``
    (by default nowhere: never called): yields the page's URL with the WASM decoder (``?backend=wasm``)."""
    from sam2enc.web import assets
    from sam2enc.web.proxy import serve

    proxy = serve("127.0.0.1", 0, upstream, models_dir)
    assets.install(proxy, demo)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{proxy.server_address[1]}/?backend=wasm"
    finally:
        proxy.shutdown()


def encode_into(photos: list[Path], out: Path, models_dir: Path) -> None:
    """Bundles for ``photos`` under ``out/<stem>/``, written by ``sam2enc encode`` itself (in-process)."""
    from sam2enc.__main__ import main

    argv = ["encode", *map(str, photos), "--out", str(out), "--models-dir", str(models_dir)]
    assert main([*argv, "--device", "cpu"]) == 0
