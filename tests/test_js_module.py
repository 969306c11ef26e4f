"""The JS module (`import ... from "sam2enc"`) decodes like the Python decoder and refuses what it refuses.

Python prepares the fixtures — a bundle of a real photo from the random-weight tiny export, the Python
Decoder's masks for a click, click + exclude, a box, box + click, a refining click and the hi-res
decoder, a corrupted embedding and a bundle that says another model made it — then `node --test
tests/js/` checks the module against them (one onnxruntime-web session for every decoder.onnx case).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sam2enc.bundle import EMBEDDING_FILE, MANIFEST_FILE, read_bundle
from sam2enc.decoder import Decoder
from sam2enc.pipeline import encode_to_dir
from tests.node import node_test
from tools import layout_js

ROOT = Path(__file__).resolve().parents[1]
NODE_TESTS = ROOT / "tests" / "js"

# Prompts in pixels of coffee.png (600×400): the cup, the cup minus the saucer, the cup's box.
CASES = {
    "click": {"points": [[300, 180, 1]], "box": None},
    "click_exclude": {"points": [[300, 180, 1], [300, 330, 0]], "box": None},
    "box": {"points": [], "box": [140, 40, 470, 380]},
    "box_click": {"points": [[420, 150, 0]], "box": [140, 40, 470, 380]},
}
OTHER_MODEL = {
    "name": "sam2.1_hiera_large",
    "checkpointSha256": "2647878d5dfa5098f2f8649825738a9345572bae2d4350a2468587ece47dd318",
}


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory, photos, encoder, decoder, models_dir) -> Path:
    """Everything the node tests read, described by fixtures.json in one temporary directory."""
    out = tmp_path_factory.mktemp("js-module")
    bundle_dir = encode_to_dir(photos["coffee"], encoder, out / "bundle")
    bundle = read_bundle(bundle_dir)
    cases = {}

    def expect(name: str, prediction, **prompt) -> None:
        mask = prediction.masks[prediction.best].astype(np.uint8)
        (out / f"{name}.mask").write_bytes(mask.tobytes())
        cases[name] = {**prompt, "mask": str(out / f"{name}.mask"), "best": prediction.best}

    for name, prompt in CASES.items():
        expect(name, decoder.predict(bundle, points=prompt["points"], box=prompt["box"]), **prompt)
    # A second click refining the first mask (mask_input = the first result's best low-res logits).
    first = decoder.predict(bundle, points=CASES["click"]["points"])
    refine = {"points": [[300, 180, 1], [250, 100, 1]], "box": None}
    mask_input = first.low_res_logits[first.best]
    expect("refine", decoder.predict(bundle, mask_input=mask_input, **refine), **refine)
    hires = Decoder(models_dir, hires=True).predict(bundle, points=CASES["click"]["points"])
    expect("hires_click", hires, **CASES["click"], logitSize=hires.low_res_logits.shape[-1])

    corrupted = out / "corrupted"
    shutil.copytree(bundle_dir, corrupted)
    payload = bytearray((corrupted / EMBEDDING_FILE).read_bytes())
    payload[12345] ^= 0x40
    (corrupted / EMBEDDING_FILE).write_bytes(bytes(payload))

    other = out / "other-model"
    shutil.copytree(bundle_dir, other)
    manifest = json.loads((other / MANIFEST_FILE).read_text())
    manifest["model"] = OTHER_MODEL
    (other / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")

    description = {
        "models": str(models_dir),
        "model": decoder.info.model,
        "otherModel": OTHER_MODEL["name"],
        "bundle": str(bundle_dir),
        "photo": str(photos["coffee"]),
        "otherPhoto": str(photos["rocket"]),
        "corrupted": str(corrupted),
        "otherBundle": str(other),
        "width": bundle.original_width,
        "height": bundle.original_height,
        "cases": cases,
    }
    (out / "fixtures.json").write_text(json.dumps(description, indent=2))
    return out


def test_layout_js_is_generated_from_bundle_layout():
    committed = layout_js.TARGET.read_text()
    assert committed == layout_js.render(), "layout.js is stale: run `python -m tools.layout_js`"


@pytest.mark.node
def test_node_module_matches_the_python_decoder(fixtures):
    node_test("decoder.test.mjs", env={"SAM2ENC_JS_FIXTURES": str(fixtures / "fixtures.json")}, timeout=300)


def test_cli_refuses_a_bundle_from_another_model(fixtures, models_dir, tmp_path):
    args = ["decode", fixtures / "other-model", "--point", "300,180,1", "--models-dir", models_dir]
    result = subprocess.run(
        [sys.executable, "-m", "sam2enc", *map(str, args), "--out", str(tmp_path / "mask.png")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "sam2.1_hiera_large" in lines[0] and "sam2.1_hiera_tiny" in lines[0], lines[0]
    assert not (tmp_path / "mask.png").exists()


@pytest.mark.node  # npm pack
def test_the_packed_package_holds_every_export():
    """What `npm install --install-links` (README) gets: `npm pack --dry-run` lists every file that
    package.json's exports name, with a version, and none of the repository's tests or Python."""
    npm = shutil.which("npm")
    assert npm, "npm is a test dependency (make install-web)"
    result = subprocess.run(
        [npm, "pack", "--dry-run", "--json"], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert result.returncode == 0, result.stderr
    packed = {f["path"] for f in json.loads(result.stdout)[0]["files"]}
    manifest = json.loads((ROOT / "package.json").read_text())
    targets = {t.removeprefix("./") for entry in manifest["exports"].values() for t in entry.values()}
    assert targets <= packed, sorted(targets - packed)
    assert {"sam2enc/web/static/lib/decoder.js", "sam2enc/web/static/lib/layout.js"} <= packed
    assert not any(p.startswith("tests/") or p.endswith(".py") for p in packed), sorted(packed)


def _package() -> dict:
    return json.loads((ROOT / "package.json").read_text())


@pytest.mark.node
def test_onnxruntime_web_is_a_peer_dependency_in_the_tested_range():
    """An app with its own onnxruntime-web gets one runtime, not two: the package names it as a peer (the
    range the suite runs, 1.30.x), never as a dependency of its own; the repository's pin lies in it."""
    manifest = _package()
    assert "onnxruntime-web" not in manifest.get("dependencies", {})
    assert manifest["peerDependencies"] == {"onnxruntime-web": "~1.30.0"}
    installed = json.loads((ROOT / "node_modules" / "onnxruntime-web" / "package.json").read_text())[
        "version"
    ]
    for version in (manifest["devDependencies"]["onnxruntime-web"], installed):
        assert re.fullmatch(r"1\.30\.\d+", version), f"{version} is outside ~1.30.0"


def _reachable(entry: Path) -> set[Path]:
    """``entry`` and every file of the module its relative imports (static or dynamic) reach."""
    found, queue = {entry}, [entry]
    while queue:
        text = queue.pop().read_text()
        for spec in re.findall(r"""(?:from|import)\s*\(?\s*["'](\.{1,2}/[^"']+)["']""", text):
            target = (entry.parent / spec).resolve()
            assert target.is_file(), f"{entry.name} reaches {spec}, which does not exist"
            if target not in found:
                found.add(target)
                queue.append(target)
    return found


def test_no_browser_entry_reaches_a_node_import():
    """Bundlers take each export's "default" (Vite warned "node:url has been externalized for browser
    compatibility"): what those entries reach has no `node:` import; the file loading that needs one is
    behind the "node" condition."""
    exports = _package()["exports"]
    assert exports["."]["node"].endswith("/node.js")
    browser = [ROOT / exports[name]["default"] for name in (".", "./coco")]
    files = set().union(*map(_reachable, browser))
    assert {p.name for p in files} >= {"index.js", "bundle.js", "decoder.js", "sha256.js", "coco.js"}
    assert [p.name for p in files if "node:" in p.read_text()] == []
    assert "node:fs" in (ROOT / exports["."]["node"]).read_text()


@pytest.mark.node
@pytest.mark.parametrize("config", ["tsconfig.json", "tsconfig.node.json"])
def test_a_typescript_consumer_type_checks_strictly(config):
    """tests/ts/consumer.ts imports the package by name as an app does and uses every export (and
    `@ts-expect-error`s for what must not type-check: internals, a bad label): `tsc --noEmit --strict`,
    with the package's own .d.ts files checked too (skipLibCheck false), bundler and nodenext resolution."""
    tsc = ROOT / "node_modules" / ".bin" / "tsc"
    assert tsc.exists(), "typescript is a pinned devDependency: npm ci (make install-web)"
    result = subprocess.run(
        [str(tsc), "--noEmit", "--strict", "-p", str(ROOT / "tests" / "ts" / config)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
