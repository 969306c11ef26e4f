"""The serving side of the package: what predict.py wires to Cog, kept out of predict.py.

One ``EncoderService`` per process: it loads the encoder once (CUDA when it loads), warms it up, and
turns each upload into a bundle in a directory of its own. Output directories of earlier predictions
are pruned so that a long-running server's disk use stays bounded (``KEEP_PREDICTIONS`` × 8 MiB).
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .bundle import EMBEDDING_FILE, MANIFEST_FILE
from .encoder import Encoder, device_from_env
from .modeldir import models_dir_from_env
from .pipeline import Timings, encode_to_dir

log = logging.getLogger(__name__)

# Newest prediction directories kept on disk; older ones are deleted. Must exceed the number of
# predictions whose files can still be uploading at once (predict.py's MAX_CONCURRENCY, 4).
KEEP_PREDICTIONS = 16
UPLOAD_NAME = "the uploaded image"  # Cog hands us a temporary file name that means nothing to users


@dataclass(frozen=True)
class EncodedFiles:
    embedding: Path
    manifest: Path
    timings: Timings


class EncoderService:
    """Load once, encode many; safe to call from several threads at once."""

    def __init__(
        self,
        models_dir: str | os.PathLike | None = None,
        device: str | None = None,
        precision: str | None = None,
        cuda_graph: bool | None = None,
    ) -> None:
        """``models_dir``, ``device``, ``precision`` and ``cuda_graph`` default to ``$SAM2ENC_MODELS_DIR``
        (else weights/), ``$SAM2ENC_DEVICE`` (else auto), ``$SAM2ENC_PRECISION`` (else fp32) and
        ``$SAM2ENC_CUDA_GRAPH`` (else off): the Cog image sets
        ``SAM2ENC_DEVICE=cuda`` in cog.yaml so that it fails at setup rather than serve on the CPU of a
        GPU machine."""
        start = time.perf_counter()
        models_dir = Path(models_dir) if models_dir else models_dir_from_env()
        self.encoder = Encoder(
            models_dir, device=device or device_from_env(), precision=precision, cuda_graph=cuda_graph
        )
        warm = self.encoder.warm_up()
        self.root = Path(tempfile.mkdtemp(prefix="sam2enc-predictions-"))
        atexit.register(shutil.rmtree, self.root, ignore_errors=True)
        self._lock = threading.Lock()
        self.setup_seconds = time.perf_counter() - start
        info = self.encoder.info
        if info.random_weights:
            log.warning("%s carries RANDOM weights: its bundles are meaningless", models_dir)
        log.info(
            "sam2enc ready: %s, %s on %s (%s), %s preprocessing, JPEGs decoded by %s "
            "(session %.2f s, warm-up %.2f s, setup %.2f s)",
            info.model,
            self.encoder.precision,
            self.encoder.provider,
            self.encoder.execution,
            self.encoder.preprocessing,
            self.encoder.decoding,
            self.encoder.setup_seconds,
            warm,
            self.setup_seconds,
        )

    def encode(self, image: str | os.PathLike) -> EncodedFiles:
        """Encode one upload into a fresh directory; on any error nothing is left behind."""
        directory = Path(tempfile.mkdtemp(prefix=f"{time.time_ns()}-", dir=self.root))
        timings = Timings()
        try:
            bundle_dir = encode_to_dir(image, self.encoder, directory / "bundle", timings, UPLOAD_NAME)
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise
        self._prune(keep=directory)
        log.info("encoded on %s: %s", self.encoder.provider, timings)
        return EncodedFiles(bundle_dir / EMBEDDING_FILE, bundle_dir / MANIFEST_FILE, timings)

    def _prune(self, keep: Path) -> None:
        with self._lock:
            directories = sorted(self.root.iterdir(), key=lambda p: p.name, reverse=True)
            for old in directories[KEEP_PREDICTIONS:]:
                if old != keep:
                    shutil.rmtree(old, ignore_errors=True)
