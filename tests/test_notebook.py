"""examples/*.ipynb run top to bottom in a fresh kernel (nbclient, ipykernel), as Colab's "Run all" does.

Each runs in an empty working folder with $SAM2ENC_MODELS_DIR set to the random-weight tiny export (no
download, no network): it must write a verified bundle there, of the photo it encoded, draw one click's
mask (an image output) and leave the bundle's zip beside it. Cost: a kernel start and one tiny encode per
notebook (~15 s on 2 shared cores).
"""

from __future__ import annotations

import time

import pytest

from sam2enc.bundle import photo_sha256, read_bundle
from tests.conftest import ROOT

pytestmark = pytest.mark.slow

NOTEBOOKS = sorted((ROOT / "examples").glob("*.ipynb"))


def test_there_is_a_notebook():
    assert [n.name for n in NOTEBOOKS] == ["encode.ipynb"]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda n: n.name)
def test_the_notebook_runs_in_a_fresh_kernel_and_writes_a_verified_bundle(
    notebook, models_dir, tmp_path, monkeypatch
):
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("SAM2ENC_MODELS_DIR", str(models_dir))
    for name in ("SAM2ENC_PHOTOS", "SAM2ENC_SOURCE"):
        monkeypatch.delenv(name, raising=False)
    document = nbformat.read(notebook, as_version=4)
    assert not any(cell.get("outputs") for cell in document.cells), "commit the notebook without outputs"
    started = time.perf_counter()
    NotebookClient(
        document, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    seconds = time.perf_counter() - started

    bundles = [p.parent for p in tmp_path.rglob("manifest.json")]
    assert len(bundles) == 1, f"expected one bundle under the working folder, found {bundles}"
    bundle_dir = bundles[0]
    bundle = read_bundle(bundle_dir)  # verified: size, sha256, version
    beside = bundle_dir.parent.iterdir()
    [photo] = [p for p in beside if p.is_file() and p.stem == bundle_dir.name and p.suffix != ".zip"]
    assert bundle.source_sha256 == photo_sha256(photo.read_bytes()), "the bundle of the photo beside it"
    assert sorted(p.name for p in bundle_dir.iterdir()) == ["embedding.bin", "manifest.json"]
    assert (bundle_dir.parent / f"{bundle_dir.name}.zip").is_file(), "the download"
    outputs = [output for cell in document.cells for output in cell.get("outputs", [])]
    assert any("image/png" in output.get("data", {}) for output in outputs), "one click's mask, drawn"
    assert not any(output.get("output_type") == "error" for output in outputs)
    print(f"{notebook.name} ran in {seconds:.1f} s")
