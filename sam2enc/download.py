"""Official SAM2.1 checkpoints: download through a .part file and keep them only if their sha256 matches.

A checkpoint whose sha256 does not match is deleted and reported, never exported: the package never
serves weights it cannot vouch for, and never falls back to random ones. ``sam2enc weights`` chains this
download with ``export`` (sam2enc/__main__.py).
"""

from __future__ import annotations

import hashlib
import logging
import os
import urllib.request
from pathlib import Path

from .errors import ModelError

log = logging.getLogger(__name__)

CHUNK = 1 << 20


def download(url: str, dest: Path, sha256: str, timeout: float = 60.0, progress: bool = True) -> Path:
    """Fetch ``url`` into ``dest`` through a .part file; keep it only if its sha256 matches."""
    from tqdm import tqdm

    if dest.exists() and sha256_file(dest) == sha256:
        log.info("%s already present, sha256 verified", dest)
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".part")
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(partial, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name, disable=not progress) as bar:
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
    log.info("downloaded %s (%d bytes, sha256 verified)", dest, dest.stat().st_size)
    return dest


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()
