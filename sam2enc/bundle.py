"""The bundle format, version 1 — the single specification. Every reader and writer imports this.

A bundle is a directory (or two files served side by side) holding:

``embedding.bin``
    The three feature tensors, float16, little-endian, C order, concatenated without padding in the
    order of ``TENSORS`` below: image_embed (1,256,64,64) at byte 0, high_res_feats_0 (1,32,256,256)
    at 2,097,152, high_res_feats_1 (1,64,128,128) at 6,291,456; 8,388,608 bytes in all.

``manifest.json``
    ``format``          always "sam2enc-bundle"
    ``version``         1; a reader refuses a version it does not know
    ``tensors``         {name: {"offset": bytes, "shape": [..], "dtype": "float16"}}
    ``byteLength``      size of embedding.bin (8,388,608)
    ``sha256``          hex sha256 of embedding.bin
    ``originalWidth``   width of the upright (EXIF-rotated) image in pixels
    ``originalHeight``  height of the upright image in pixels
    ``inputSize``       1024: clicks map to model space as x·1024/originalWidth, y·1024/originalHeight
    ``model``           {"name": "sam2.1_hiera_tiny", "checkpointSha256": hex or null}: the identity of
                        the model that encoded it, copied from its model.json. Decoders (Python's
                        ``Decoder``, the JS ``segment``) refuse a bundle whose identity is not their
                        model's: the checkpoint sha256 when both sides record one, else the name
                        (sam2enc/modeldir.py explains, random-weight exports included)
    ``provider``        the ONNX Runtime execution provider that computed it
    ``precision``       the encoder's arithmetic: "fp32", "tf32" or "fp16" (sam2enc/precision.py);
                        added within version 1, so a reader takes a manifest without it as "fp32"
    ``source``          {"sha256": hex}: the sha256 of the photo's bytes as uploaded (before any
                        decoding), so that a bundle can be matched to its photo: ``encode --remote``
                        re-encodes a photo whose bytes changed, the page and the JS module refuse a
                        photo that is not the bundle's. Added within version 1: readers accept a
                        manifest without it (and then match by originalWidth/originalHeight)
    ``replicate``       {"model": "owner/name", "version": id}: the Replicate model that encoded it,
                        written by ``sam2enc encode --remote`` only; a rerun asked for another model
                        encodes the photo again. Added within version 1, optional

The keys ``tensors``, ``originalWidth`` and ``originalHeight`` are what existing browser code reads;
version 1 promises they keep their meaning. Additions that old readers can ignore keep version 1;
anything else bumps the version.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import BundleError
from .publish import foreign_entries, remove_files, staging_dir, swap_in

FORMAT = "sam2enc-bundle"
VERSION = 1
INPUT_SIZE = 1024
EMBEDDING_FILE = "embedding.bin"
MANIFEST_FILE = "manifest.json"
DTYPE = np.dtype("<f2")

TENSORS: dict[str, tuple[int, ...]] = {
    "image_embed": (1, 256, 64, 64),
    "high_res_feats_0": (1, 32, 256, 256),
    "high_res_feats_1": (1, 64, 128, 128),
}
FILES = frozenset({EMBEDDING_FILE, MANIFEST_FILE})  # all a bundle directory ever holds
SHA256 = re.compile(r"[0-9a-f]{64}")


def _layout() -> dict[str, dict]:
    layout, offset = {}, 0
    for name, shape in TENSORS.items():
        layout[name] = {"offset": offset, "shape": list(shape), "dtype": "float16"}
        offset += int(np.prod(shape)) * DTYPE.itemsize
    return layout


LAYOUT = _layout()
BYTE_LENGTH = sum(int(np.prod(s)) for s in TENSORS.values()) * DTYPE.itemsize  # 8,388,608


@dataclass(frozen=True)
class Bundle:
    """Features of one image plus what a decoder needs to map clicks onto them."""

    features: dict[str, np.ndarray]  # float16 arrays with the shapes of TENSORS
    original_width: int
    original_height: int
    model: dict
    provider: str
    precision: str = "fp32"
    source_sha256: str | None = None  # the photo's bytes as uploaded; None for bundles older than it
    replicate: dict | None = None  # {"model", "version"}: written by `encode --remote`

    def to_bytes(self) -> bytes:
        parts = []
        for name, shape in TENSORS.items():
            array = self.features[name]
            if array.shape != shape:
                raise BundleError(f"{name} has shape {array.shape}, the format needs {shape}")
            parts.append(np.ascontiguousarray(array, dtype=DTYPE).tobytes())
        return b"".join(parts)

    def manifest(self, payload: bytes) -> dict:
        optional = {"source": {"sha256": self.source_sha256}} if self.source_sha256 else {}
        if self.replicate:
            optional["replicate"] = self.replicate
        return {
            "format": FORMAT,
            "version": VERSION,
            "tensors": LAYOUT,
            "byteLength": len(payload),
            "sha256": hashlib.sha256(payload).hexdigest(),
            "originalWidth": self.original_width,
            "originalHeight": self.original_height,
            "inputSize": INPUT_SIZE,
            "model": self.model,
            "provider": self.provider,
            "precision": self.precision,
            **optional,
        }

    def features_f32(self) -> dict[str, np.ndarray]:
        return {name: array.astype(np.float32) for name, array in self.features.items()}


def write_bundle(bundle: Bundle, out_dir: str | os.PathLike) -> Path:
    """Write the two files into ``out_dir`` whole or not at all (``write_files``)."""
    out_dir = Path(out_dir)
    check_writable(out_dir)  # before the payload is made: a refusal costs nothing
    payload = bundle.to_bytes()
    manifest = json.dumps(bundle.manifest(payload), indent=2) + "\n"
    return write_files({EMBEDDING_FILE: payload, MANIFEST_FILE: manifest.encode()}, out_dir)


def write_files(files: dict[str, bytes], out_dir: str | os.PathLike) -> Path:
    """A bundle's two files, as bytes, into ``out_dir`` whole or not at all.

    Both files go to a temporary sibling directory first, which is renamed into place once complete:
    a reader never sees one file without the other or a short file. ``out_dir`` may be missing, empty,
    or an earlier bundle (a directory holding nothing but a bundle's two files), which is replaced only
    once the new one is complete and stays as it was if the write fails. A directory holding anything
    else is the user's: it is refused before anything is written.
    """
    out_dir = Path(out_dir)
    check_writable(out_dir)
    staging = staging_dir(out_dir)
    try:
        for name in FILES:
            (staging / name).write_bytes(files[name])
        check_writable(out_dir)  # again: something may have appeared there while we wrote
        swap_in(staging, out_dir, lambda old: remove_files(old, FILES))
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir


def check_writable(out_dir: Path) -> None:
    """Raise BundleError unless ``out_dir`` is missing, empty or holds only a bundle's files."""
    if not out_dir.exists() and not out_dir.is_symlink():
        return
    if not out_dir.is_dir() or out_dir.is_symlink():
        raise BundleError(f"{out_dir} exists and is not a bundle directory: it was left as it is")
    if others := foreign_entries(out_dir, FILES):
        shown = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
        raise BundleError(
            f"{out_dir} holds files that are not a bundle's ({shown}): it was left as it is; "
            "write the bundle somewhere else"
        )


def read_bundle(path: str | os.PathLike) -> Bundle:
    """Read and verify a bundle directory (or the path of either of its two files)."""
    path = Path(path)
    directory = path.parent if path.name in (EMBEDDING_FILE, MANIFEST_FILE) else path
    try:
        manifest_text = (directory / MANIFEST_FILE).read_text()
        payload = (directory / EMBEDDING_FILE).read_bytes()
    except FileNotFoundError as exc:
        raise BundleError(f"{directory} is not a bundle: {Path(exc.filename).name} is missing") from None
    try:
        manifest = json.loads(manifest_text)
    except json.JSONDecodeError as exc:
        raise BundleError(f"{directory / MANIFEST_FILE} is not valid JSON ({exc.msg})") from None
    return parse_bundle(manifest, payload, source=str(directory))


def parse_bundle(manifest: dict, payload: bytes, source: str = "bundle") -> Bundle:
    """Verify a manifest and its payload against the format and return the decoded bundle."""
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BundleError(f"{source}: manifest.json does not describe a {FORMAT}")
    if manifest.get("version") != VERSION:
        raise BundleError(
            f"{source}: bundle version {manifest.get('version')!r} is not supported "
            f"(this reader knows version {VERSION})"
        )
    if len(payload) != BYTE_LENGTH:
        raise BundleError(
            f"{source}: embedding.bin has {len(payload):,} bytes, expected {BYTE_LENGTH:,} "
            "(truncated or not a bundle)"
        )
    if manifest.get("tensors") != LAYOUT:
        raise BundleError(f"{source}: manifest tensors do not match the version {VERSION} layout")
    digest = hashlib.sha256(payload).hexdigest()
    if manifest.get("sha256") != digest:
        raise BundleError(f"{source}: embedding.bin does not match the manifest's sha256 (corrupted)")
    width, height = manifest.get("originalWidth"), manifest.get("originalHeight")
    if not (isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0):
        raise BundleError(f"{source}: originalWidth/originalHeight must be positive integers")
    features = {
        name: np.frombuffer(payload, DTYPE, int(np.prod(shape)), spec["offset"]).reshape(shape)
        for (name, shape), spec in zip(TENSORS.items(), LAYOUT.values())
    }
    return Bundle(
        features=features,
        original_width=width,
        original_height=height,
        model=manifest.get("model") or {},
        provider=manifest.get("provider", "unknown"),
        precision=manifest.get("precision", "fp32"),
        source_sha256=_source_sha256(manifest, source),
        replicate=manifest.get("replicate") if isinstance(manifest.get("replicate"), dict) else None,
    )


def _source_sha256(manifest: dict, source: str) -> str | None:
    """The photo's sha256 from ``source``, None where the manifest predates it; BundleError if malformed."""
    if "source" not in manifest:
        return None
    digest = manifest["source"].get("sha256") if isinstance(manifest["source"], dict) else None
    if not (isinstance(digest, str) and SHA256.fullmatch(digest)):
        raise BundleError(f"{source}: manifest source.sha256 must be 64 lowercase hex digits")
    return digest


def photo_sha256(data: bytes) -> str:
    """What ``source.sha256`` records: the hex sha256 of the photo's bytes as uploaded."""
    return hashlib.sha256(data).hexdigest()
