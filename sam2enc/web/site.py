"""``python -m sam2enc.web build OUT``: the browser app as a static site, with its demos baked in.

What a static host (Cloudflare Pages, Netlify, Vercel, GitHub Pages, ``python -m http.server``) needs
to run the page with no server of ours: the page's files (the static directory, copied as it is), the
onnxruntime-web files the worker loads, the decoder graphs with ``model.json``, one demo bundle per
photo, encoded here at build time, and ``config.json`` (where the token proxy is, if any). ``_headers``
(Netlify, Cloudflare Pages) and ``vercel.json`` ask those hosts for cross-origin isolation (COOP/COEP:
WASM threads) and caching; a host that ignores them still serves a working, single-threaded page.

Every file stays under 25 MiB, Cloudflare Pages' limit per file. onnxruntime-web comes as two builds:
the WASM-only one (14 MB of wasm) and the WebGPU one for browsers with JS Promise Integration (the JSPI
build, 17 MB; the JSEP and asyncify WebGPU builds, 28 and 27 MB, do not fit), which the worker loads
only when it will run on WebGPU. An entry whose WASM would be over the limit is left out and
``config.json`` says so. The site is written to a temporary directory and moved into place only when
complete.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ..modeldir import DECODER_FILE, MODEL_INFO_FILE
from ..publish import ordinary_modes, staging_dir, swap_in
from . import assets

log = logging.getLogger(__name__)

MAX_FILE = 25 * 1024 * 1024  # Cloudflare Pages' per-file limit
GENERATOR = "sam2enc web build"
ORT_IMPORT = re.compile(r"vendor/ort/(ort[\w.-]*\.mjs)")
ORT_RUNTIME = re.compile(r"ort-wasm[\w.-]*\.(?:wasm|mjs)")
# Cross-origin isolation lets onnxruntime-web use WASM threads (SharedArrayBuffer).
ISOLATION = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
}
# The page, models and demos change with a rebuild under the same names: revalidate (ETag) each use.
# onnxruntime-web is pinned by package.json; a week's caching keeps repeat visits to a few requests.
# One rule per path (Cloudflare Pages joins the values of every rule that matches a path).
REVALIDATE = ("/", "/index.html", "/config.json", "/static/*", "/models/*", "/demos/*")
VENDOR_CACHE = "public, max-age=604800"


class SiteError(Exception):
    """The site could not be built; the message is one sentence for the user."""


@dataclass(frozen=True)
class Built:
    out: Path
    files: dict[str, int]  # path relative to out -> size in bytes
    demos: list[str]  # slugs
    ort: list[str]  # onnxruntime-web entries shipped


def build(
    out: Path,
    models_dir: Path,
    demos: list[Path] | None = None,
    proxy: str | None = None,
    static: Path = assets.STATIC,
    ort_dist: Path = assets.ORT_DIST,
) -> Built:
    """Write the site to ``out`` (a new or empty directory, or an earlier build, which is replaced)."""
    out = Path(out)
    proxy = _proxy(proxy)
    _check_out(out)
    if problem := assets.models_ready(models_dir):
        raise SiteError(problem)
    photos = [assets.DEMO_PHOTO] if demos is None else list(demos)
    for photo in photos:
        if not Path(photo).is_file():
            raise SiteError(f"the demo photo {photo} does not exist")
    work = staging_dir(out)
    try:
        shutil.copytree(static, work / "static")
        shutil.copy2(static / "index.html", work / "index.html")
        ort = _copy_ort(static, ort_dist, work / "vendor" / "ort")
        _copy_models(Path(models_dir), work / "models")
        slugs = _write_demos(Path(models_dir), photos, work / "demos")
        _write_json(work / "config.json", assets.site_config(GENERATOR, proxy, ort))
        (work / "_headers").write_text(_netlify_headers())
        _write_json(work / "vercel.json", _vercel_json())
        (work / ".nojekyll").write_text("")  # GitHub Pages: serve the files as they are
        files = _sizes(work)
        if too_big := [f"{name} ({size / 2**20:.1f} MiB)" for name, size in files.items() if size > MAX_FILE]:
            raise SiteError(f"{', '.join(too_big)} is over the 25 MiB a static host takes per file")
        ordinary_modes(work)  # what a web server running as another user can read
        _check_out(out)  # again: something may have appeared there while we built
        swap_in(work, out, shutil.rmtree)  # the earlier build goes only once this one is in place
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    log.info("static site in %s: %d files, demos %s", out, len(files), ", ".join(slugs) or "none")
    return Built(out, files, slugs, ort)


def _proxy(proxy: str | None) -> str | None:
    """The proxy's base URL (its routes are ``<base>/api/...``), without a trailing slash; or
    ``same-origin``: the host serves the proxy's routes at ``api/`` beside the page (a Vercel project
    with the route file), which the page uses once a probe that reaches no upstream says it is there."""
    if proxy is None or proxy == assets.SAME_ORIGIN:
        return proxy
    parts = urlsplit(proxy)
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.query or parts.fragment:
        raise SiteError(
            "--proxy must be the proxy's http(s) base URL, such as https://proxy.example, "
            f"or same-origin; got {proxy!r}"
        )
    return proxy.rstrip("/")


def _check_out(out: Path) -> None:
    """Refuse to overwrite a directory that is neither empty nor an earlier build."""
    if not out.exists():
        return
    if not out.is_dir():
        raise SiteError(f"{out} exists and is not a directory")
    config = out / "config.json"
    try:
        earlier = json.loads(config.read_text()).get("generator") == GENERATOR
    except (OSError, ValueError, AttributeError):
        earlier = False
    if any(out.iterdir()) and not earlier:
        raise SiteError(f"{out} is not empty and not an earlier site build: choose a new directory")


def _copy_ort(static: Path, dist: Path, target: Path) -> list[str]:
    """The onnxruntime-web entries the worker imports, each with the runtime files it loads; an entry
    with a file over MAX_FILE is left out (the worker then falls back to the WASM build)."""
    code = "\n".join(p.read_text(errors="replace") for p in static.rglob("*.js"))
    shipped = []
    for entry in sorted(set(ORT_IMPORT.findall(code))):
        source = dist / entry
        if not source.is_file():
            raise SiteError(f"onnxruntime-web has no {entry} in {dist}: run `npm ci` first")
        files = _runtime_files(dist, entry)
        if big := [f.name for f in files if f.stat().st_size > MAX_FILE]:
            log.warning("leaving out %s: %s is over 25 MiB", entry, ", ".join(big))
            continue
        target.mkdir(parents=True, exist_ok=True)
        for file in files:
            shutil.copy2(file, target / file.name)
        shipped.append(entry)
    if not shipped:
        raise SiteError("no onnxruntime-web build the page imports fits under 25 MiB per file")
    return shipped


def _runtime_files(dist: Path, entry: str) -> list[Path]:
    """``entry`` and every ort-wasm file it loads, directly or through another (.mjs -> .wasm)."""
    found, queue = [dist / entry], [dist / entry]
    while queue:
        for name in sorted(set(ORT_RUNTIME.findall(queue.pop().read_text(errors="replace")))):
            file = dist / name
            if not file.is_file():
                raise SiteError(f"onnxruntime-web's {entry} needs {name}, which {dist} lacks")
            if file not in found:
                found.append(file)
                if file.suffix == ".mjs":
                    queue.append(file)
    return found


# What the page loads: decoder_hires.onnx (the JS module's ``hires`` option) is not, and would add a
# decoder's size (~20 MB for large) to every deploy.
SITE_MODEL_FILES = (DECODER_FILE, MODEL_INFO_FILE)


def _copy_models(models_dir: Path, target: Path) -> None:
    target.mkdir(parents=True)
    for name in SITE_MODEL_FILES:
        if (models_dir / name).is_file():
            shutil.copy2(models_dir / name, target / name)


def _slug(photo: Path, taken: set[str]) -> str:
    base = assets.slug(photo.stem)
    slug, n = base, 2
    while slug in taken:
        slug, n = f"{base}-{n}", n + 1
    taken.add(slug)
    return slug


def _write_demos(models_dir: Path, photos: list[Path], target: Path) -> list[str]:
    """demos/<slug>/{photo.<ext>, embedding.bin, manifest.json} per photo, and demos/index.json that
    lists them with paths relative to the site's root (the page may live under a sub-path): the shape
    `serve` answers too (assets.Demo)."""
    target.mkdir(parents=True)
    taken: set[str] = set()
    index = []
    for photo in photos:
        slug = _slug(Path(photo), taken)
        demo = assets.demo_bundle(models_dir, Path(photo))
        for name, (data, _) in demo.files(slug).items():
            (target.parent / name).parent.mkdir(exist_ok=True)
            (target.parent / name).write_bytes(data)
        index.append(demo.entry(slug))
    _write_json(target.parent / assets.DEMOS_INDEX, {"demos": index})
    return [d["slug"] for d in index]


def _netlify_headers() -> str:
    """Netlify's and Cloudflare Pages' ``_headers``: isolation everywhere, caching per path."""
    lines = ["/*"] + [f"  {name}: {value}" for name, value in ISOLATION.items()]
    for path in REVALIDATE:
        lines += [path, "  Cache-Control: no-cache"]
    lines += ["/vendor/*", f"  Cache-Control: {VENDOR_CACHE}"]
    return "\n".join(lines) + "\n"


def _vercel_json() -> dict:
    everything = [{"key": name, "value": value} for name, value in ISOLATION.items()]
    revalidate = [{"key": "Cache-Control", "value": "no-cache"}]
    rules = [{"source": "/(.*)", "headers": everything}]
    rules += [{"source": path.replace("*", "(.*)"), "headers": revalidate} for path in REVALIDATE]
    rules.append({"source": "/vendor/(.*)", "headers": [{"key": "Cache-Control", "value": VENDOR_CACHE}]})
    return {"headers": rules}


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n")


def _sizes(root: Path) -> dict[str, int]:
    return {p.relative_to(root).as_posix(): p.stat().st_size for p in sorted(root.rglob("*")) if p.is_file()}


__all__ = ["Built", "SiteError", "build"]
