"""The command line: encode one or many photos, decode a click to a PNG, clear errors without tracebacks."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from sam2enc.bundle import read_bundle
from tests.helpers import cli

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]


def test_help_explains_every_command():
    result = cli("--help")
    assert result.returncode == 0
    for command in ("export", "weights", "encode", "decode"):
        assert command in result.stdout
    decode_help = cli("decode", "--help").stdout
    assert "X,Y,LABEL" in decode_help and "X0,Y0,X1,Y1" in decode_help


def test_encode_then_decode_a_click(photos, models_dir, decoder, tmp_path):
    out = tmp_path / "bundle"
    result = cli("encode", photos["rocket"], "--models-dir", models_dir, "--out", out, "--device", "cpu")
    assert result.returncode == 0, result.stderr
    assert "CPUExecutionProvider" in result.stdout
    bundle = read_bundle(out)
    assert (bundle.original_width, bundle.original_height) == (640, 427)

    mask_png = tmp_path / "mask.png"
    result = cli(
        "decode",
        out,
        "--models-dir",
        models_dir,
        "--point",
        "300,200,1",
        "--point",
        "40,400,0",
        "--out",
        mask_png,
    )
    assert result.returncode == 0, result.stderr
    assert "IoU predictions" in result.stdout
    mask = np.asarray(Image.open(mask_png))
    assert mask.shape == (427, 640) and mask.dtype == np.uint8
    assert set(np.unique(mask)) <= {0, 255}
    expected = decoder.predict(bundle, points=[(300, 200, 1), (40, 400, 0)])
    assert np.array_equal(mask == 255, expected.masks[expected.best])


def test_decode_a_box(photos, models_dir, tmp_path):
    out = tmp_path / "bundle"
    assert cli("encode", photos["coffee"], "--models-dir", models_dir, "--out", out).returncode == 0
    result = cli(
        "decode", out, "--models-dir", models_dir, "--box", "100,50,500,350", "--out", tmp_path / "m.png"
    )
    assert result.returncode == 0, result.stderr
    assert Image.open(tmp_path / "m.png").size == (600, 400)


def test_encode_several_images_into_subdirectories(photos, models_dir, tmp_path):
    result = cli(
        "encode", photos["rocket"], photos["coffee"], "--models-dir", models_dir, "--out", tmp_path / "many"
    )
    assert result.returncode == 0, result.stderr
    assert read_bundle(tmp_path / "many" / "rocket").original_width == 640
    assert read_bundle(tmp_path / "many" / "coffee").original_width == 600


def test_encode_reports_a_bad_file_without_traceback(photos, models_dir, tmp_path):
    bad = tmp_path / "notes.jpg"
    bad.write_text("shopping list: eggs, milk")
    result = cli("encode", bad, photos["rocket"], "--models-dir", models_dir, "--out", tmp_path / "out")
    assert result.returncode == 2
    assert "notes.jpg is not a supported image: it is a text file" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out" / "notes").exists()
    assert read_bundle(tmp_path / "out" / "rocket").original_width == 640


def test_encode_replaces_its_own_bundle_but_never_a_users_folder(photos, models_dir, tmp_path):
    album = tmp_path / "album"
    album.mkdir()
    (album / "notes.txt").write_text("mine")
    result = cli("encode", photos["rocket"], "--models-dir", models_dir, "--out", album)
    assert result.returncode == 2 and "holds files that are not a bundle's (notes.txt)" in result.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["album"], "no staging left behind"
    assert [p.name for p in album.iterdir()] == ["notes.txt"]
    out = tmp_path / "bundle"
    assert cli("encode", photos["rocket"], "--models-dir", models_dir, "--out", out).returncode == 0
    assert cli("encode", photos["coffee"], "--models-dir", models_dir, "--out", out).returncode == 0
    assert read_bundle(out).original_width == 600, "an earlier bundle is replaced by the new one"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--point", "1,2"], "expected --point X,Y,LABEL"),
        (["--point", "10,10,5"], "label is 1 (foreground) or 0 (background)"),
        (["--point", "9999,10,1"], "lies outside the 640×427 image"),
        (["--box", "300,300,100,100"], "needs x0 < x1 and y0 < y1"),
        ([], "give at least one click or a box"),
    ],
)
def test_decode_rejects_bad_prompts(photos, models_dir, tmp_path, args, message):
    out = tmp_path / "bundle"
    assert cli("encode", photos["rocket"], "--models-dir", models_dir, "--out", out).returncode == 0
    result = cli("decode", out, "--models-dir", models_dir, *args, "--out", tmp_path / "m.png")
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "m.png").exists()


def test_missing_models_directory_says_how_to_get_one(photos, tmp_path):
    result = cli("encode", photos["rocket"], "--models-dir", tmp_path / "nowhere", "--out", tmp_path / "o")
    assert result.returncode == 2
    assert "make weights" in result.stderr and "Traceback" not in result.stderr


def test_export_shows_steps_and_numbers_without_third_party_noise(tmp_path):
    """What `make demo` and `make weights` print: numbered steps and errors, warnings counted, not dumped."""
    result = cli("export", "--model", "tiny", "--random-weights", "--models-dir", tmp_path / "m")
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert "[5/5] writing model.json" in output and "relative L2" in output
    assert "RANDOM weights" in output
    assert "tracer warnings captured" in output
    assert "TracerWarning:" not in output and "merging shape info" not in output, output


@pytest.mark.server  # a local server stands in for Meta's host
def test_weights_keeps_only_a_checkpoint_whose_sha256_matches(model_files, tmp_path):
    """`sam2enc weights` downloads through a .part file and never exports a checkpoint it cannot vouch for."""
    import threading
    from functools import partial
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    from sam2enc.download import download, sha256_file

    checkpoint = model_files[1]
    handler = partial(SimpleHTTPRequestHandler, directory=str(checkpoint.parent))
    handler.log_message = lambda *a: None
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/{checkpoint.name}"
    try:
        result = cli("weights", "--model", "tiny", "--url", url, "--models-dir", tmp_path / "w")
        assert result.returncode == 2 and "download discarded" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
        assert list((tmp_path / "w").iterdir()) == []  # no checkpoint, no .part, no export

        good = download(url, tmp_path / "ok" / "tiny.pt", sha256_file(checkpoint), progress=False)
        assert good.read_bytes() == checkpoint.read_bytes()
    finally:
        server.shutdown()


def test_the_released_flag_names_still_work(photos, models_dir, tmp_path):
    """0.1.0 spelled the model directory --models: scripts written for it keep working, with a warning."""
    out = tmp_path / "bundle"
    result = cli("encode", photos["rocket"], "--models", models_dir, "--out", out, "--device", "cpu")
    assert result.returncode == 0, result.stderr
    assert "use --models-dir" in result.stderr
    assert "--models " not in cli("encode", "--help").stdout  # one spelling in the help
