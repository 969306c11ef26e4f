"""Upload → bundle: the whole per-image path, in the order the data takes it.

Concurrent predictions (Cog's ``COG_MAX_CONCURRENCY``, threads) form a pipeline: decoding and host
preprocessing run on the CPU in parallel, while the device stage (in-graph preprocessing and the encoder)
takes one photo at a time under ``Encoder.device_lock``. So one photo's JPEG decode overlaps another's
encoder instead of queueing behind it, and two encoder runs never share the GPU's memory or time.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from .bundle import Bundle, photo_sha256, write_bundle
from .encoder import Encoder
from .image import read_upload


@dataclass
class Timings:
    """Seconds spent in each step of one encode, for logs and the benchmark."""

    steps: dict[str, float] = field(default_factory=dict)
    # (start, end) of each step on time.perf_counter's clock: how steps of concurrent encodes overlap.
    spans: dict[str, tuple[float, float]] = field(default_factory=dict)

    def add(self, name: str, start: float) -> float:
        now = time.perf_counter()
        self.steps[name] = now - start
        self.spans[name] = (start, now)
        return now

    def __str__(self) -> str:
        return ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in self.steps.items())


def encode(
    source: str | os.PathLike | bytes,
    encoder: Encoder,
    timings: Timings | None = None,
    name: str | None = None,
) -> Bundle:
    """Decode, preprocess and encode one image; raises ImageError for anything that is not one.

    Steps timed: decode, preprocess, wait (for the device, held by another photo) and encoder; with
    in-graph preprocessing, ``preprocess`` is the graph's run on the device, inside the lock. The
    upload is read once: its bytes are both decoded and hashed into the manifest's ``source``."""
    timings = timings if timings is not None else Timings()
    start = time.perf_counter()
    data, name = read_upload(source, name)
    image = encoder.load(data, name)
    start = timings.add("decode", start)
    on_host = encoder.preprocessing == "host"
    if on_host:
        pixels = encoder.preprocess(image)
        start = timings.add("preprocess", start)
    with encoder.device_lock:
        start = timings.add("wait", start)
        if not on_host:
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
        source_sha256=photo_sha256(data),
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
