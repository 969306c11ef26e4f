"""Cog entry point: a thin shell over sam2enc. The work happens in sam2enc/service.py."""

from cog import BaseRunner, Input, Path

from sam2enc.service import EncoderService


class Predictor(BaseRunner):
    def setup(self) -> None:
        """Load the exported encoder from weights/ (or $SAM2ENC_MODELS) on the GPU and warm it up."""
        self.service = EncoderService()

    def run(
        self,
        image: Path = Input(
            description="Photo to encode (JPEG, PNG, WebP, GIF, BMP, TIFF, AVIF; EXIF orientation is "
            "applied, transparency is composited over white). At most 120 megapixels."
        ),
    ) -> list[Path]:
        """Return [embedding.bin, manifest.json]: the SAM2 feature bundle for the browser decoder."""
        files = self.service.encode(image)
        return [Path(files.embedding), Path(files.manifest)]
