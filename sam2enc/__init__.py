"""sam2enc: the SAM2 image encoder as ONNX, served as a bundle a browser-side decoder can use.

The public surface, in the order data flows through it::

    encoder = Encoder("weights/")                 # ONNX Runtime session, CUDA when it loads
    bundle = encode("photo.jpg", encoder)          # upload → features (float16)
    write_bundle(bundle, "out/")                   # embedding.bin + manifest.json, whole or nothing
    bundle = read_bundle("out/")                   # verified: size, checksum, version
    masks = Decoder("weights/").predict(bundle, points=[(410, 300, 1)])
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

# Imported on first use, so that `import sam2enc` (and the `sam2enc` command's help, export, weights)
# works where ONNX Runtime is not installed yet; using Encoder/Decoder there names the extra to install.
_HOME = {
    "Bundle": "bundle",
    "read_bundle": "bundle",
    "write_bundle": "bundle",
    "Decoder": "decoder",
    "Prediction": "decoder",
    "Encoder": "encoder",
    "BundleError": "errors",
    "ImageError": "errors",
    "ModelError": "errors",
    "PromptError": "errors",
    "ProviderError": "errors",
    "Sam2EncError": "errors",
    "load_image": "image",
    "encode": "pipeline",
    "encode_to_dir": "pipeline",
}

if TYPE_CHECKING:
    from .bundle import Bundle, read_bundle, write_bundle
    from .decoder import Decoder, Prediction
    from .encoder import Encoder
    from .errors import BundleError, ImageError, ModelError, PromptError, ProviderError, Sam2EncError
    from .image import load_image
    from .pipeline import encode, encode_to_dir


def __getattr__(name: str) -> object:
    if name not in _HOME:
        raise AttributeError(f"module 'sam2enc' has no attribute {name!r}")
    try:
        module = importlib.import_module(f".{_HOME[name]}", __name__)
    except ModuleNotFoundError as exc:
        from .extras import explain

        if (sentence := explain(exc)) is None:
            raise
        raise ModuleNotFoundError(f"sam2enc.{name}: {sentence}", name=exc.name) from None
    return getattr(module, name)


__all__ = [
    "Bundle",
    "BundleError",
    "Decoder",
    "Encoder",
    "ImageError",
    "ModelError",
    "Prediction",
    "PromptError",
    "ProviderError",
    "Sam2EncError",
    "encode",
    "encode_to_dir",
    "load_image",
    "read_bundle",
    "write_bundle",
]
