"""Upload → bundle: the whole per-image path, in the order the data takes it."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from .bundle import Bundle, write_bundle
from .encoder import Encoder
from .image import load_image


@dataclass
class Timings:
    """Seconds spent in each step of one encode, for logs and the benchmark."""

    steps: dict[str, float] = field(default_factory=dict)

    def add(self, name: str, start: float) -> float:
        now = time.perf_counter()
        self.steps[name] = now - start
        return now

    def __str__(self) -> str:
        return ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in self.steps.items())


def encode(
    source: str | os.PathLike | bytes,
    encoder: Encoder,
    timings: Timings | None = None,
    name: str | None = None,
) -> Bundle:
    """Decode, preprocess and encode one image; raises ImageError for anything that is not one."""
    timings = timings if timings is not None else Timings()
    start = time.perf_counter()
    image = load_image(source, name)
    start = timings.add("decode", start)
    pixels = encoder.preprocess(image)
    start = timings.add("preprocess", start)
    features = encoder.run(pixels)
    timings.add("encoder", start)
    return Bundle(
        features=features,
        original_width=image.width,
        original_height=image.height,
        model=encoder.model,
        provider=encoder.provider,
        precision=encoder.precision,
    )


def encode_to_dir(
    source: str | os.PathLike | bytes,
    encoder: Encoder,
    out_dir: str | os.PathLike,
    timings: Timings | None = None,
    name: str | None = None,
) -> Path:
    """Encode one image and write its bundle into ``out_dir`` (created whole, or not at all)."""
    timings = timings if timings is not None else Timings()
    bundle = encode(source, encoder, timings, name)
    start = time.perf_counter()
    path = write_bundle(bundle, out_dir)
    timings.add("write", start)
    return path
