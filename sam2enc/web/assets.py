"""What the proxy serves besides the API: the app, onnxruntime-web, the decoder graphs and the demo.

Every file is served with a strong ``ETag`` (its sha256) and ``Cache-Control: no-cache``: the browser
keeps its copy and revalidates it, so a second visit costs a few 304s instead of ~30 MB. The demo photo
is encoded at startup with the very models this server serves (``demo_bundle``), so "Try the demo
photo" needs no token and no network; ``model.json`` tells the page when those models are random.

The page reads the same ``config.json`` and ``demos/index.json`` here as on a static site built by
``python -m sam2enc.web build`` (``site_config``, ``Demo.entry``: one shape, one code path in the
page); ``config.json`` says ``"proxy": "same-origin"``: this server answers the page's ``api/`` calls.
"""

from __future__ import annotations

import hashlib
import json
import logging
import mimetypes
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from ..modeldir import DECODER_FILE, DECODER_HIRES_FILE, MODEL_INFO_FILE, ModelInfo

log = logging.getLogger("sam2enc.web")

STATIC = Path(__file__).parent / "static"
ROOT = Path(__file__).resolve().parents[2]
ORT_DIST = ROOT / "node_modules" / "onnxruntime-web" / "dist"
DEMO_PHOTO = ROOT / "assets" / "astronaut.jpg"
RANDOM_MODELS = ROOT / ".cache" / "random-models"  # shared with `make demo`
MODEL_FILES = (DECODER_FILE, DECODER_HIRES_FILE, MODEL_INFO_FILE)
TYPES = {".mjs": "text/javascript", ".js": "text/javascript", ".wasm": "application/wasm"}
DEMOS_INDEX = "demos/index.json"
# What worker.js imports (app/site.js): WebGPU + WASM for browsers with JS Promise Integration, WASM only.
ORT_ENTRIES = ("ort.jspi.min.mjs", "ort.wasm.min.mjs")
WEBGPU_ENTRY = ORT_ENTRIES[0]
SAME_ORIGIN = "same-origin"  # config.json's proxy: the site's own api/ (this server's)


@dataclass(frozen=True)
class Demo:
    photo: bytes
    photo_type: str
    embedding: bytes
    manifest: bytes
    random_weights: bool
    model: str
    title: str = "demo"  # the photo's file name without its extension
    suffix: str = ".jpg"

    def files(self, slug: str) -> dict[str, tuple[bytes, str]]:
        """The demo's files by path relative to the site's root, with their content types."""
        return {
            f"demos/{slug}/photo{self.suffix}": (self.photo, self.photo_type),
            f"demos/{slug}/embedding.bin": (self.embedding, "application/octet-stream"),
            f"demos/{slug}/manifest.json": (self.manifest, "application/json"),
        }

    def entry(self, slug: str) -> dict:
        """The demo in ``demos/index.json``: paths relative to the site's root, never "/…" (the site
        may live under a sub-path)."""
        photo, embedding, manifest = self.files(slug)
        return {
            "slug": slug,
            "title": self.title,
            "photo": photo,
            "embedding": embedding,
            "manifest": manifest,
            "model": self.model,
            "randomWeights": self.random_weights,
        }


def slug(name: str) -> str:
    """A demo's folder name: lower case letters, digits and dashes."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "photo"


def site_config(generator: str, proxy: str | None, ort: list[str]) -> dict:
    """config.json: where the demos and models are, the onnxruntime-web entries shipped, the proxy
    (None: none, so the page sends no API call; a URL; or SAME_ORIGIN)."""
    webgpu = WEBGPU_ENTRY in ort
    return {
        "generator": generator,
        "proxy": proxy,
        "demos": DEMOS_INDEX,
        "models": "models/",
        "ort": {"entries": list(ort), "webgpu": webgpu},
    }


def demo_bundle(models_dir: Path, photo: Path = DEMO_PHOTO) -> Demo:
    """Encode the demo photo with ``models_dir``'s encoder (CPU, a few seconds for tiny)."""
    from ..encoder import Encoder
    from ..pipeline import encode

    info = ModelInfo.read(models_dir)
    bundle = encode(photo, Encoder(models_dir, device="cpu"))
    payload = bundle.to_bytes()
    manifest = json.dumps(bundle.manifest(payload), indent=2).encode()
    kind = mimetypes.guess_type(photo.name)[0] or "application/octet-stream"
    suffix = photo.suffix.lower() or ".jpg"
    return Demo(
        photo.read_bytes(), kind, payload, manifest, info.random_weights, info.model, photo.stem, suffix
    )


def models_ready(models_dir: Path) -> str | None:
    """None when ``models_dir`` can serve the page, else one sentence saying why not."""
    missing = [name for name in (DECODER_FILE, MODEL_INFO_FILE) if not (Path(models_dir) / name).is_file()]
    if missing:
        return (
            f"{models_dir} has no {' or '.join(missing)}: export a model first (`make weights MODEL=tiny`), "
            "or pass --random-if-missing to serve a random-weight export"
        )
    return None


def random_models(cache: Path, doing: str = "serving") -> Path:
    """The loudly labelled random-weight SAM2.1 tiny that `make demo` uses, exported once into ``cache``.
    ``doing`` is what the command does with it ("serving", "building the site with"): said as it is."""
    from ..testing import cached_random_export

    banner = "!" * 78
    log.warning(
        "\n%s\nNo exported model: %s a RANDOMLY INITIALISED SAM2.1 tiny (exported once into %s).\n"
        "Every step runs, but the MASKS ARE MEANINGLESS. `make weights MODEL=tiny` for real ones.\n%s",
        banner,
        doing,
        cache,
        banner,
    )
    models_dir = cached_random_export(cache)
    log.warning("the random-weight export is %s (sam2enc decode --models-dir %s)", models_dir, models_dir)
    return models_dir


class Assets:
    """Static files with ETags, plus the demo; ``bytes_sent`` counts body bytes (tests, bench)."""

    def __init__(self, models_dir: Path, demo: Demo | None = None, demo_reason: str = "") -> None:
        self.models_dir = Path(models_dir)
        self.demo = demo
        self.demo_reason = demo_reason or "this server was started without a demo photo"
        self.bytes_sent = 0
        self._etags: dict[tuple[str, int, int], str] = {}
        self._lock = threading.Lock()

    def routes(self, path: str) -> tuple[bytes | Path, str] | None:
        """What a GET of ``path`` answers with, or None when it is not a static path."""
        if path in ("/", "/index.html"):
            return STATIC / "index.html", "text/html; charset=utf-8"
        for prefix, root in (("/static/", STATIC), ("/vendor/ort/", ORT_DIST)):
            if path.startswith(prefix):
                return self._file(root, path[len(prefix) :])
        if path.startswith("/models/") and path[len("/models/") :] in MODEL_FILES:
            return self._file(self.models_dir, path[len("/models/") :])
        if path == "/config.json":
            entries = [name for name in ORT_ENTRIES if (ORT_DIST / name).is_file()]
            return _json(site_config("sam2enc web serve", SAME_ORIGIN, entries))
        if path == f"/{DEMOS_INDEX}":
            return _json(self._demos())
        if self.demo and path.startswith("/demos/"):
            return self.demo.files(slug(self.demo.title)).get(path[1:])
        return None

    def _demos(self) -> dict:
        if not self.demo:
            return {"demos": [], "reason": f"No demo photo: {self.demo_reason}."}
        return {"demos": [self.demo.entry(slug(self.demo.title))]}

    @staticmethod
    def _file(root: Path, relative: str) -> tuple[Path, str] | None:
        path = (root / relative).resolve()
        if root.resolve() not in path.parents or not path.is_file():
            return None
        kind = TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return path, kind

    def etag(self, body: bytes | Path) -> tuple[bytes, str]:
        if isinstance(body, bytes):
            return body, f'"{hashlib.sha256(body).hexdigest()[:32]}"'
        stat = body.stat()
        key = (str(body), stat.st_mtime_ns, stat.st_size)
        data = body.read_bytes()
        with self._lock:
            tag = self._etags.get(key)
        if tag is None:
            tag = f'"{hashlib.sha256(data).hexdigest()[:32]}"'
            with self._lock:
                self._etags[key] = tag
        return data, tag

    def serve(self, handler, path: str) -> bool:
        """Answer a GET for ``path`` on ``handler`` (a BaseHTTPRequestHandler); False if not ours."""
        found = self.routes(path)
        if found is None:
            if path.startswith(("/static/", "/vendor/", "/models/", "/demos/")):
                handler._error(404, "not found")
                return True
            return False
        body, kind = found
        data, tag = self.etag(body)
        fresh = tag in [t.strip() for t in (handler.headers.get("If-None-Match") or "").split(",")]
        handler.send_response(304 if fresh else 200)
        handler.send_header("Content-Type", kind)
        handler.send_header("ETag", tag)
        handler.send_header("Cache-Control", "no-cache")  # keep it, but ask before each use
        handler.send_header("Content-Length", "0" if fresh else str(len(data)))
        # Cross-origin isolation lets onnxruntime-web use WASM threads (SharedArrayBuffer).
        handler.send_header("Cross-Origin-Opener-Policy", "same-origin")
        handler.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        handler.send_header("Cross-Origin-Resource-Policy", "same-origin")
        handler.end_headers()
        if not fresh and handler.command != "HEAD":
            handler.wfile.write(data)
            with self._lock:
                self.bytes_sent += len(data)
        return True


def _json(data: dict) -> tuple[bytes, str]:
    return json.dumps(data, indent=2).encode(), "application/json"


def for_server(server) -> Assets:
    """The server's Assets, created on first use (no demo) when ``install`` was not called."""
    assets = getattr(server, "assets", None)
    if assets is None:
        assets = server.assets = Assets(server.models_dir)
    return assets


def install(server, demo: Demo | None = None, demo_reason: str = "") -> Assets:
    server.assets = Assets(server.models_dir, demo, demo_reason)
    return server.assets


__all__ = ["Assets", "Demo", "demo_bundle", "for_server", "install", "models_ready", "site_config", "slug"]
