"""Official SAM2.1 checkpoints: download with a progress bar, check sha256, export into weights/.

A checkpoint whose sha256 does not match is deleted and reported, never exported: the package never
serves weights it cannot vouch for, and never falls back to random ones.
"""

from __future__ import annotations

import hashlib
import os
import urllib.request
from pathlib import Path

from .errors import ModelError
from .models import get_model

CHUNK = 1 << 20


def download(url: str, dest: Path, sha256: str, timeout: float = 60.0) -> Path:
    """Fetch ``url`` into ``dest`` through a .part file; keep it only if its sha256 matches."""
    from tqdm import tqdm

    if dest.exists() and sha256_file(dest) == sha256:
        print(f"{dest} already present, sha256 verified")
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".part")
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(partial, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name) as bar:
                while block := response.read(CHUNK):
                    out.write(block)
                    digest.update(block)
                    bar.update(len(block))
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise ModelError(f"could not download {url}: {exc}") from None
    if digest.hexdigest() != sha256:
        partial.unlink(missing_ok=True)
        raise ModelError(f"{url} has sha256 {digest.hexdigest()}, expected {sha256}: download discarded")
    os.replace(partial, dest)
    return dest


def fetch_and_export(model_name: str, out_dir: str | os.PathLike, url: str | None = None) -> Path:
    """``make weights MODEL=...``: the checkpoint into out_dir, then the ONNX export beside it."""
    from .export import export_model

    spec = get_model(model_name)
    out_dir = Path(out_dir)
    checkpoint = download(url or spec.checkpoint_url, out_dir / spec.checkpoint_filename, spec.sha256)
    export_model(model_name, checkpoint, out_dir)
    return out_dir


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()
