"""sam2enc: the SAM2 image encoder as ONNX, served as a bundle a browser-side decoder can use.

The public surface, in the order data flows through it::

    encoder = Encoder("weights/")                 # ONNX Runtime session, CUDA when it loads
    bundle = encode("photo.jpg", encoder)          # upload → features (float16)
    write_bundle(bundle, "out/")                   # embedding.bin + manifest.json, whole or nothing
    bundle = read_bundle("out/")                   # verified: size, checksum, version
    masks = Decoder("weights/").predict(bundle, points=[(410, 300, 1)])
"""

from .bundle import Bundle, read_bundle, write_bundle
from .decoder import Decoder, Prediction
from .encoder import Encoder
from .errors import BundleError, ImageError, ModelError, PromptError, ProviderError, Sam2EncError
from .image import load_image
from .pipeline import encode, encode_to_dir

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
