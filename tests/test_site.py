"""`python -m sam2enc.web build OUT` writes a static site a plain host can serve: the page as it is,
only the onnxruntime-web files the worker loads, the decoder, one demo bundle per photo encoded at build
time, the proxy's URL, and host files for cross-origin isolation and caching; no file over 25 MiB.

Cost: one build (~5 s of encoding on 2 cores) shared by the module, plus a second encode to compare.
The browser test of the built site under a sub-path is the page's follow-up (issue 22).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from sam2enc.bundle import parse_bundle
from sam2enc.pipeline import encode
from sam2enc.web import assets, site
from sam2enc.web.__main__ import main
from tests.cogserver import free_port

ROOT = Path(__file__).resolve().parents[1]
PROXY = "https://proxy.example"


@pytest.fixture(scope="module")
def built(models_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site") / "public"
    assert main(["build", str(out), "--models-dir", str(models_dir), "--proxy", f"{PROXY}/"]) == 0
    return out


def files(root: Path) -> dict[str, int]:
    return {p.relative_to(root).as_posix(): p.stat().st_size for p in root.rglob("*") if p.is_file()}


def test_the_site_holds_the_page_the_runtime_the_decoder_and_the_demo(built, models_dir):
    found = files(built)
    page = {
        f"static/{p.relative_to(assets.STATIC).as_posix()}" for p in assets.STATIC.rglob("*") if p.is_file()
    }
    assert page <= set(found), "the static directory, copied as it is"
    for name in page:
        assert (built / name).read_bytes() == (assets.STATIC / name.removeprefix("static/")).read_bytes()
    assert (built / "index.html").read_bytes() == (assets.STATIC / "index.html").read_bytes()
    ort = {name for name in found if name.startswith("vendor/")}
    assert ort == {
        "vendor/ort/ort.wasm.min.mjs",
        "vendor/ort/ort-wasm-simd-threaded.mjs",
        "vendor/ort/ort-wasm-simd-threaded.wasm",
        "vendor/ort/ort.jspi.min.mjs",
        "vendor/ort/ort-wasm-simd-threaded.jspi.mjs",
        "vendor/ort/ort-wasm-simd-threaded.jspi.wasm",
    }, "only what the worker loads: the WASM build, and the WebGPU build that fits (JSPI, not JSEP)"
    for name in ort:
        assert (built / name).read_bytes() == (assets.ORT_DIST / Path(name).name).read_bytes()
    for name in ("decoder.onnx", "model.json"):
        assert (built / "models" / name).read_bytes() == (models_dir / name).read_bytes()
    assert not (built / "models" / "decoder_hires.onnx").exists(), "the page never loads it"
    assert not [name for name in found if name.endswith(("encoder.onnx", ".pt"))], "no encoder, no checkpoint"
    host = {"_headers", "vercel.json", "config.json", ".nojekyll", "index.html", "demos/index.json"}
    demo = {f"demos/astronaut/{n}" for n in ("photo.jpg", "embedding.bin", "manifest.json")}
    assert set(found) == page | ort | host | demo | {"models/decoder.onnx", "models/model.json"}


def test_no_file_is_over_25_mib(built):
    big = {name: size for name, size in files(built).items() if size > 25 * 1024 * 1024}
    assert big == {}


def test_the_demo_is_the_photos_bundle_listed_with_relative_paths(built, encoder):
    index = json.loads((built / "demos" / "index.json").read_text())["demos"]
    assert [d["slug"] for d in index] == ["astronaut"]
    [demo] = index
    for key in ("photo", "embedding", "manifest"):
        assert not demo[key].startswith("/"), "relative: the site may live under a sub-path"
        assert (built / demo[key]).is_file()
    assert demo["randomWeights"] is True and demo["model"] == "sam2.1_hiera_tiny"
    assert (built / demo["photo"]).read_bytes() == assets.DEMO_PHOTO.read_bytes()
    payload = (built / demo["embedding"]).read_bytes()
    bundle = parse_bundle(json.loads((built / demo["manifest"]).read_text()), payload)
    assert payload == encode(assets.DEMO_PHOTO, encoder).to_bytes(), "the encoder's bundle of that photo"
    assert bundle.to_bytes() == payload


def test_config_carries_the_proxy_and_the_runtime_shipped(built):
    config = json.loads((built / "config.json").read_text())
    assert config["proxy"] == PROXY
    assert config["ort"] == {"entries": ["ort.jspi.min.mjs", "ort.wasm.min.mjs"], "webgpu": True}
    assert config["demos"] == "demos/index.json" and config["models"] == "models/"


ISOLATION = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def netlify_rules(text: str) -> dict[str, dict[str, str]]:
    rules: dict[str, dict[str, str]] = {}
    for line in text.splitlines():
        if line and not line.startswith(" "):
            path = line.strip()
            assert path not in rules, f"{path} listed twice"
            rules[path] = {}
        elif line.strip():
            name, value = line.strip().split(": ", 1)
            rules[path][name] = value
    return rules


def test_host_files_ask_for_isolation_everywhere_and_cache_the_runtime(built):
    rules = netlify_rules((built / "_headers").read_text())
    assert rules["/*"] == ISOLATION
    assert rules["/vendor/*"] == {"Cache-Control": "public, max-age=604800"}
    for path in ("/index.html", "/static/*", "/models/*", "/demos/*", "/config.json"):
        assert rules[path] == {"Cache-Control": "no-cache"}, "rebuilt under the same name: revalidate"
    vercel = {
        rule["source"]: {h["key"]: h["value"] for h in rule["headers"]}
        for rule in json.loads((built / "vercel.json").read_text())["headers"]
    }
    assert vercel["/(.*)"] == ISOLATION
    assert vercel["/vendor/(.*)"] == {"Cache-Control": "public, max-age=604800"}
    assert vercel["/models/(.*)"] == {"Cache-Control": "no-cache"}


def test_a_rebuild_replaces_the_earlier_build_and_nothing_else(built, models_dir, tmp_path, capsys):
    stranger = tmp_path / "mine"
    stranger.mkdir()
    (stranger / "notes.txt").write_text("keep me")
    assert main(["build", str(stranger), "--models-dir", str(models_dir)]) == 2
    assert "is not empty and not an earlier site build" in capsys.readouterr().err
    assert [p.name for p in stranger.iterdir()] == ["notes.txt"]
    assert main(["build", str(tmp_path / "x"), "--models-dir", str(tmp_path / "none")]) == 2
    assert "no decoder.onnx" in capsys.readouterr().err
    assert not (tmp_path / "x").exists() and [p.name for p in tmp_path.iterdir()] == ["mine"], (
        "nothing half-written"
    )


@pytest.mark.parametrize("proxy", ["ftp://proxy.example", "proxy.example", "https://proxy.example/?token=x"])
def test_a_proxy_that_is_not_an_http_base_url_is_refused(proxy, models_dir, tmp_path):
    with pytest.raises(site.SiteError, match="--proxy must be"):
        site.build(tmp_path / "out", models_dir, [], proxy)


def test_an_ort_build_over_25_mib_is_left_out(models_dir, tmp_path):
    """A fake dist: the WASM build fits, the WebGPU one (a sparse 26 MiB .wasm) does not; config.json
    then says no WebGPU, and the page says why it runs WASM."""
    dist = tmp_path / "dist"
    dist.mkdir()
    (dist / "ort.wasm.min.mjs").write_text('import("./ort-wasm-simd-threaded.mjs")')
    (dist / "ort-wasm-simd-threaded.mjs").write_text('fetch("ort-wasm-simd-threaded.wasm")')
    (dist / "ort-wasm-simd-threaded.wasm").write_bytes(b"\0asm")
    (dist / "ort.jspi.min.mjs").write_text('import("./ort-wasm-simd-threaded.jspi.mjs")')
    (dist / "ort-wasm-simd-threaded.jspi.mjs").write_text('fetch("ort-wasm-simd-threaded.jspi.wasm")')
    with open(dist / "ort-wasm-simd-threaded.jspi.wasm", "wb") as big:
        big.truncate(26 * 1024 * 1024)
    static = tmp_path / "static"
    static.mkdir()
    (static / "index.html").write_text("<html></html>")
    (static / "worker.js").write_text(
        'import("./vendor/ort/ort.jspi.min.mjs"); import("vendor/ort/ort.wasm.min.mjs")'
    )
    built = site.build(tmp_path / "out", models_dir, [], None, static=static, ort_dist=dist)
    assert built.ort == ["ort.wasm.min.mjs"]
    assert json.loads((built.out / "config.json").read_text())["ort"] == {
        "entries": ["ort.wasm.min.mjs"],
        "webgpu": False,
    }
    assert sorted(n for n in built.files if n.startswith("vendor/")) == [
        "vendor/ort/ort-wasm-simd-threaded.mjs",
        "vendor/ort/ort-wasm-simd-threaded.wasm",
        "vendor/ort/ort.wasm.min.mjs",
    ]
    os.remove(dist / "ort-wasm-simd-threaded.wasm")
    with pytest.raises(site.SiteError, match=r"needs ort-wasm-simd-threaded\.wasm"):
        site.build(tmp_path / "out", models_dir, [], None, static=static, ort_dist=dist)
    assert (tmp_path / "out" / "config.json").is_file(), "the earlier build is left as it was"


def test_same_origin_proxy_is_kept_for_the_page_to_probe(models_dir, tmp_path):
    """`--proxy same-origin`: the host serves the proxy's api/ beside the page (no demos: no encoding)."""
    built = site.build(tmp_path / "out", models_dir, [], "same-origin")
    assert json.loads((built.out / "config.json").read_text())["proxy"] == "same-origin"
    assert json.loads((built.out / "demos" / "index.json").read_text()) == {"demos": []}


@pytest.mark.server
@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="switching to nobody needs root")
def test_a_web_server_running_as_another_user_serves_every_file(models_dir):
    """nginx runs as www-data: a site built under umask 022 must be readable by others, every file.
    (mkdtemp's 0700 kept through the rename answered 403 "index.html is forbidden".)"""
    base = Path(tempfile.mkdtemp(prefix="sam2enc-site-"))  # /tmp/..., not pytest's private 0700 tree
    try:
        base.chmod(0o755)
        private = base / "models"  # copied files keep their mode: a private source must not leak it
        private.mkdir()
        for source in models_dir.iterdir():
            shutil.copy(source, private / source.name)
            (private / source.name).chmod(0o600)
        previous = os.umask(0o022)
        try:
            built = site.build(base / "public", private, [assets.DEMO_PHOTO]).out
        finally:
            os.umask(previous)
        port = free_port()
        server = subprocess.Popen(
            ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", sys.executable, "-m",
             "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(built)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            names = sorted(files(built))
            assert len(names) > 10 and "demos/astronaut/embedding.bin" in names
            for name in names:
                with urlopen_retrying(f"http://127.0.0.1:{port}/{name}") as answer:
                    assert answer.read() == (built / name).read_bytes(), name
        finally:
            server.terminate()
            server.wait(10)
    finally:
        shutil.rmtree(base)


def urlopen_retrying(url: str, seconds: float = 10.0):
    """The server's first answer once it listens; an HTTP error (403) is raised at once."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return urllib.request.urlopen(url, timeout=10)
        except urllib.error.HTTPError:
            raise
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.mark.server
def test_serve_on_a_busy_port_says_so_before_any_work(tmp_path):
    """`make web` run twice: one sentence naming the port and --port, exit 2, before the demo's encode
    (or the random export) that used to take half a minute and end in a traceback."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        command = ["serve", "--port", str(port), "--random-if-missing", "--models-dir", tmp_path / "none"]
        result = subprocess.run(
            [sys.executable, "-m", "sam2enc.web", *map(str, command)],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
        )
    assert result.returncode == 2, result.stderr
    assert result.stderr == (
        f"error: port {port} on 127.0.0.1 is already in use (another `make web` or server?): stop it, "
        f"or pick another port with --port {port + 1}\n"
    )
    assert result.stdout == "" and not (tmp_path / "none").exists(), "no export, no demo encode"


def test_a_file_over_25_mib_is_refused_and_nothing_is_written(models_dir, tmp_path, capsys):
    """Cloudflare Pages takes 25 MiB a file: a site with a bigger one would fail to deploy, so `web build`
    refuses it (naming the file) before anything is in place."""
    big = tmp_path / "big-model"
    big.mkdir()
    (big / "model.json").write_bytes((models_dir / "model.json").read_bytes())
    with (big / "decoder.onnx").open("wb") as graph:  # sparse: 26 MiB that cost no disk
        graph.truncate(26 * 1024 * 1024)
    out = tmp_path / "public"
    with pytest.raises(site.SiteError, match=r"models/decoder\.onnx \(26\.0 MiB\) is over the 25 MiB"):
        site.build(out, big, [])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big-model"], "no site, no staging left behind"
