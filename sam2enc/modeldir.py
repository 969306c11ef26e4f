"""The model directory: what `export` writes and every reader opens, named in one place.

One directory holds one exported SAM2.1 variant: ``encoder.onnx`` (served by Cog), ``decoder.onnx`` and
``decoder_hires.onnx`` (run locally or in the browser) and ``model.json`` (written last, so its presence
means the export finished). The directory is ``weights/`` unless ``models_dir`` says otherwise, or
``$SAM2ENC_MODELS_DIR`` for the Cog server, which takes no arguments.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ModelError

log = logging.getLogger(__name__)

DEFAULT_MODELS_DIR = Path("weights")
MODELS_DIR_ENV = "SAM2ENC_MODELS_DIR"
LEGACY_MODELS_DIR_ENV = "SAM2ENC_MODELS"  # released in 0.1.0; still read, with a warning

ENCODER_FILE = "encoder.onnx"
DECODER_FILE = "decoder.onnx"
DECODER_HIRES_FILE = "decoder_hires.onnx"
MODEL_INFO_FILE = "model.json"
DECODER_FILES = (DECODER_FILE, DECODER_HIRES_FILE)
GRAPH_FILES = (ENCODER_FILE, *DECODER_FILES)


def models_dir_from_env() -> Path:
    """The model directory a process without arguments (the Cog server) should use."""
    if value := os.environ.get(MODELS_DIR_ENV):
        return Path(value)
    if value := os.environ.get(LEGACY_MODELS_DIR_ENV):
        log.warning("$%s is deprecated: set $%s instead", LEGACY_MODELS_DIR_ENV, MODELS_DIR_ENV)
        return Path(value)
    return DEFAULT_MODELS_DIR


@dataclass(frozen=True)
class ModelInfo:
    """model.json: which variant was exported, from which checkpoint, and each graph's inputs/outputs."""

    model: str  # "sam2.1_hiera_tiny"
    size: str  # "tiny", the name `export --model` takes
    checkpoint_sha256: str | None = None
    random_weights: bool = False

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModelInfo:
        return cls(
            model=data["model"],
            size=data["size"],
            checkpoint_sha256=data.get("checkpointSha256"),
            random_weights=bool(data.get("randomWeights", False)),
        )

    @classmethod
    def read(cls, models_dir: str | os.PathLike) -> ModelInfo:
        path = Path(models_dir) / MODEL_INFO_FILE
        try:
            return cls.from_json(json.loads(path.read_text()))
        except FileNotFoundError:
            raise ModelError(
                f"{path} is missing: export the model first (`make weights MODEL=tiny` or "
                "`sam2enc export ...`)"
            ) from None
        except (json.JSONDecodeError, KeyError) as exc:
            raise ModelError(f"{path} is not a model.json written by sam2enc export: {exc}") from None
