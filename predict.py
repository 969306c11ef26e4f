"""Cog entry point: a thin shell over sam2enc. The work happens in sam2enc/service.py."""

import asyncio
import logging

from cog import BaseRunner, Input, Path, concurrent

from sam2enc.service import EncoderService

# Predictions this worker accepts at once (cog.yaml's concurrency.max says the same; a test holds them
# equal). They overlap one photo's decoding on the CPU with another's encoder on the GPU; the encoder
# itself takes one photo at a time (sam2enc/pipeline.py).
MAX_CONCURRENCY = 4


class Predictor(BaseRunner):
    def setup(self) -> None:
        """Load the encoder from $SAM2ENC_MODELS_DIR (default weights/) on $SAM2ENC_DEVICE and warm it up.

        cog.yaml sets SAM2ENC_DEVICE=cuda, so the image fails here, naming the missing CUDA libraries,
        rather than serve on the CPU of a GPU machine; unset (auto), a machine without CUDA warns and
        runs on the CPU.
        """
        _log_to_stderr()
        self.service = EncoderService()

    @concurrent(max=MAX_CONCURRENCY)
    async def run(
        self,
        image: Path = Input(
            description="Photo to encode (JPEG, PNG, WebP, GIF, BMP, TIFF, AVIF; EXIF orientation is "
            "applied, transparency is composited over white). At most 120 megapixels."
        ),
    ) -> list[Path]:
        """Return [embedding.bin, manifest.json]: the SAM2 feature bundle for the browser decoder."""
        files = await asyncio.to_thread(self.service.encode, image)
        return [Path(files.embedding), Path(files.manifest)]


def _log_to_stderr() -> None:
    """Cog shows what the worker prints: make sam2enc's INFO lines (model, provider, timings) reach it."""
    if not logging.getLogger().handlers:
        logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("sam2enc").setLevel(logging.INFO)
