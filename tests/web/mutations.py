"""Semantic mutations of the browser app, each with the tests that must catch it (issue 13's list).

``python -m tests.web.mutations [NAME ...]`` copies the tracked tree into a temporary directory
(node_modules and .cache linked, not copied), applies one mutation at a time there — never to the
working tree — runs only its tests, and prints: mutation | tests run | caught. Exit status 1 when a
mutation survives. ``MUTATIONS`` is plain data for a repository-wide ``make mutate`` to reuse.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APP = "sam2enc/web/static/app.js"
WORKER = "sam2enc/web/static/worker.js"
T = "tests/test_web.py::"
MAIN = T + "test_prompts_download_and_cutout_equal_the_python_decoder"
EXIF = T + "test_exif_rotated_photo_and_a_photo_of_another_size"
BAD = T + "test_the_page_refuses_bad_bundles"
RACES = T + "test_races_never_show_a_stale_mask"

# name: (file, [(find, replace), ...], tests)
MUTATIONS: dict[str, tuple[str, list[tuple[str, str]], list[str]]] = {
    "shift-click label forced to 1": (
        APP,
        [("drag.button === 2 || drag.shift || e.shiftKey ? 0", "drag.button === 2 ? 0")],
        [MAIN],
    ),
    "right-click label is include": (
        APP,
        [("drag.button === 2 || drag.shift || e.shiftKey ? 0", "drag.shift || e.shiftKey ? 0")],
        [MAIN],
    ),
    "every click mapped to 0.8x its position": (
        APP,
        [
            ("const x = ((event.clientX", "const x = 0.8 * ((event.clientX"),
            ("const y = ((event.clientY", "const y = 0.8 * ((event.clientY"),
        ],
        [MAIN],
    ),
    "drawMask draws nothing": (
        APP,
        [("function drawMask(data) {", "function drawMask(data) {\n  return;")],
        [MAIN],
    ),
    "markers not drawn": (
        APP,
        [("for (const [x, y, label] of S.points) {", "for (const [x, y, label] of []) {")],
        [MAIN],
    ),
    "stale-result dropping removed": (
        APP,
        [("if (!current(request) || hoverDone ||", "if (false && (!current(request) || hoverDone) ||")],
        [RACES],
    ),
    "download ignores the box (download != CLI)": (
        APP,
        [
            (
                "png, points: S.points.map((p) => [...p]), box: S.box && [...S.box] }",
                "png, points: S.points, box: null }",
            )
        ],
        [MAIN],
    ),
    "downloaded mask is 0/1, not 0/255 (download != CLI)": (
        WORKER,
        [("new Uint8Array(width * height), 255)", "new Uint8Array(width * height), 1)")],
        [MAIN],
    ),
    "page skips the bundle's sha256 check": (APP, [("if (hex !== manifest.sha256)", "if (false)")], [BAD]),
    # (EXIF itself cannot be switched off in the page: chromium treats imageOrientation "none" as
    # "from-image". The EXIF-rotated photo is still clicked and compared by EXIF.)
    "page accepts a photo whose size differs from the manifest": (
        APP,
        [("if (photo.width !== manifest.originalWidth || photo.height", "if (false && photo.height")],
        [EXIF],
    ),
    "edits do not bump the prompt generation (Clear/Undo cancel nothing)": (
        APP,
        [("S.promptGen += 1;\n  S.pending = null;", "S.pending = S.pending;")],
        [RACES],
    ),
}


def copy_tree(target: Path) -> None:
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, files.decode().split("\0")):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    for linked in ("node_modules", ".cache"):
        if (ROOT / linked).exists():
            (target / linked).symlink_to(ROOT / linked)


def run(names: list[str]) -> int:
    rows, survivors = [], 0
    with tempfile.TemporaryDirectory(prefix="sam2enc-mutate-web-") as scratch:
        tree = Path(scratch)
        copy_tree(tree)
        for name in names or list(MUTATIONS):
            path, edits, tests = MUTATIONS[name]
            original = (tree / path).read_text()
            text = original
            for find, replace in edits:
                assert text.count(find) == 1, f"{name}: {find!r} is not in {path} exactly once"
                text = text.replace(find, replace)
            (tree / path).write_text(text)
            try:
                result = subprocess.run(
                    [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests],
                    cwd=tree,
                    capture_output=True,
                    text=True,
                )
            finally:
                (tree / path).write_text(original)
            caught = result.returncode != 0
            survivors += not caught
            rows.append((name, ", ".join(t.split("::")[-1] for t in tests), "yes" if caught else "NO"))
            print(f"{name} | {rows[-1][1]} | {rows[-1][2]}", flush=True)
    print(f"\n{len(rows) - survivors}/{len(rows)} mutations caught")
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
