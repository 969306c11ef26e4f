"""The few errors a user of sam2enc can meet.

Each carries a message written for the person who sent the input: what was wrong and, where there is
one, the limit it crossed. They subclass ValueError so that Cog reports them as a failed prediction
with that message, and the CLI prints them without a traceback.
"""

from __future__ import annotations


class Sam2EncError(ValueError):
    """Base class: a problem with the input or the installation, explained in one sentence."""


class ImageError(Sam2EncError):
    """The upload is not an image we can encode (empty, truncated, not an image, too large...)."""


class BundleError(Sam2EncError):
    """A bundle on disk is incomplete, corrupted or of a version this reader does not know."""


class ModelError(Sam2EncError):
    """The exported ONNX files are missing or do not match what sam2enc expects."""


class ModelMismatchError(Sam2EncError):
    """A bundle was encoded by another model than the decoder's: its masks would be silently wrong.

    The inputs are each valid, they just do not belong together, so the CLI exits 1 rather than 2.
    """

    exit_code = 1


class ProviderError(Sam2EncError):
    """The requested ONNX Runtime execution provider could not be loaded."""


class PromptError(Sam2EncError):
    """A click or box prompt is malformed or outside the image."""


class RemoteError(Sam2EncError):
    """The remote prediction failed, could not be reached, or did not return a bundle."""


class Terminated(BaseException):
    """SIGTERM, raised in the main thread where a command asked for it (``sam2enc encode --remote``), as
    SIGINT raises KeyboardInterrupt: not an ``Exception``, so that no handler of failures swallows it."""

    exit_code = 143  # 128 + SIGTERM, as shells report a process it ended


class SettingError(Sam2EncError):
    """A ``SAM2ENC_*`` environment variable holds a value it cannot take (sam2enc/settings.py)."""
