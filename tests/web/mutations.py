"""Semantic mutations of the browser app, each with the tests that must catch it (issue 13's list).

Plain data for ``make mutate`` (tools/mutate.py), which applies each to a copy of the tree — never to
the working tree — runs only its tests and prints mutation | tests run | caught;
``python -m tools.mutate --group browser`` runs just these.
"""

from __future__ import annotations

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
