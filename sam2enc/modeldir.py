"""The model directory: what `export` writes and every reader opens, named in one place.

One directory holds one exported SAM2.1 variant: ``encoder.onnx`` (served by Cog), ``decoder.onnx`` and
``decoder_hires.onnx`` (run locally or in the browser) and ``model.json`` (written last, so its presence
means the export finished). The directory is ``weights/`` unless ``models_dir`` says otherwise, or
``$SAM2ENC_MODELS_DIR`` for the Cog server, which takes no arguments.

A model's identity is model.json's ``checkpointSha256``: the sha256 of the checkpoint file it was exported
from. Every bundle's manifest copies it (``model.checkpointSha256``) and every decoder, Python's
``Decoder`` and the JS ``segment``, refuses a bundle whose identity differs from its own: all SAM2.1 sizes
share the decoder's input shapes, so the wrong decoder would draw wrong masks without complaint. Random-
weight exports (``export --random-weights``) save their checkpoint (``random_<size>.pt``) before exporting
it, so they carry that file's sha256 too and two random exports are told apart. Only a model exported
from no checkpoint file at all (``export_model(name, None, ...)`` from Python) records null; then the
check falls back to the model name, the only identity there is.
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

    @property
    def identity(self) -> dict[str, Any]:
        """The manifest's ``model`` entry for bundles this model encodes, and what a decoder compares."""
        return {"name": self.model, "checkpointSha256": self.checkpoint_sha256}

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
                f"`sam2enc export ...`){_random_exports_hint()}"
            ) from None
        except (json.JSONDecodeError, KeyError) as exc:
            raise ModelError(f"{path} is not a model.json written by sam2enc export: {exc}") from None


def _random_exports_hint() -> str:
    """Where the random-weight exports of `make web`/`make demo` are (run from the repository), as the
    end of a sentence: the README's decode commands then work without real weights."""
    found = sorted(Path(".cache/random-models").glob("*/" + MODEL_INFO_FILE))
    if not found:
        return ""
    return f", or pass --models-dir {found[-1].parent} (the random-weight export `make web` serves)"


def same_model(bundle_model: dict[str, Any], decoder_model: dict[str, Any]) -> bool:
    """Compare two ``{"name", "checkpointSha256"}`` identities: the sha256 when both have one, else the name.

    A bundle that names no model at all cannot be checked and passes (the JS ``sameModel`` agrees).
    """
    a, b = bundle_model or {}, decoder_model or {}
    if a.get("checkpointSha256") and b.get("checkpointSha256"):
        return a["checkpointSha256"] == b["checkpointSha256"]
    if a.get("name") and b.get("name"):
        return a["name"] == b["name"]
    return True


def model_mismatch(bundle_model: dict[str, Any], decoder_model: dict[str, Any]) -> str:
    """The one sentence both decoders say when a bundle belongs to another model (JS: modelMismatch)."""
    return (
        f"this bundle was encoded by {_describe(bundle_model)} but the decoder is "
        f"{_describe(decoder_model)}: decode it with the model that encoded it"
    )


def _describe(model: dict[str, Any]) -> str:
    sha = (model or {}).get("checkpointSha256")
    recorded = f"checkpoint sha256 {sha[:12]}" if sha else "no checkpoint recorded"
    return f"{(model or {}).get('name') or 'an unnamed model'} ({recorded})"
