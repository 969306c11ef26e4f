"""`make mutate`'s lists stay usable: every tests/mutations/*.json loads, every entry is well formed and
its "old" text occurs exactly once, so a list that went stale fails `make test` (in a second) instead of
being skipped by `make mutate` half an hour later. Reads whatever lists are there, no names assumed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tools.mutate import MUTATIONS_DIR, ROOT, MutationListError, load_mutations


def test_every_list_loads_and_every_old_text_occurs_exactly_once():
    mutations = load_mutations()  # raises, naming each broken entry
    assert {m.group for m in mutations} == {p.stem for p in MUTATIONS_DIR.glob("*.json")}
    for mutation in mutations:
        assert (ROOT / mutation.path).read_text().count(mutation.old) == 1, mutation.name
        assert mutation.old != mutation.new, mutation.name


GOOD = {
    "name": "x",
    "promise": "p",
    "path": "target.py",
    "old": "A = 1",
    "new": "A = 2",
    "tests": ["test_target.py"],
    "k": None,
}


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("[{", "cannot be read as JSON"),
        ('{"name": "x"}', "must hold a list"),
        (json.dumps([{**GOOD, "old": "A = 3"}]), "stale: its 'old' text occurs 0 times"),
        (json.dumps([{**GOOD, "old": "="}]), "stale: its 'old' text occurs 2 times"),
        (json.dumps([{k: v for k, v in GOOD.items() if k != "tests"}]), "fields must be exactly"),
        (json.dumps([{**GOOD, "edits": []}]), "fields must be exactly"),
        (json.dumps([{**GOOD, "tests": "test_target.py"}]), "'tests' has the wrong type"),
        (json.dumps([{**GOOD, "tests": ["test_gone.py::test_x"]}]), "test files do not exist"),
        (json.dumps([{**GOOD, "path": "gone.py"}]), "gone.py does not exist"),
        (json.dumps([GOOD, GOOD]), "used twice"),
    ],
)
def test_a_list_that_cannot_load_fails_the_run(tmp_path: Path, content: str, problem: str):
    (tmp_path / "target.py").write_text("A = 1\nB = 2\n")
    (tmp_path / "test_target.py").write_text("")
    lists = tmp_path / "mutations"
    lists.mkdir()
    (lists / "fine.json").write_text(json.dumps([{**GOOD, "name": "fine"}]))
    (lists / "area.json").write_text(content)
    with pytest.raises(MutationListError, match=problem):
        load_mutations(lists, tmp_path)
    (lists / "area.json").unlink()
    assert [m.name for m in load_mutations(lists, tmp_path)] == ["fine"]


def test_the_run_stops_before_judging_anything_when_a_list_is_broken(tmp_path, monkeypatch, capsys):
    import tools.mutate as mutate

    lists = tmp_path / "mutations"
    lists.mkdir()
    (lists / "broken.json").write_text("[")
    monkeypatch.setattr(mutate, "MUTATIONS_DIR", lists)
    assert mutate.main(["--json", str(tmp_path / "out.json")]) == 2
    assert "broken.json: cannot be read as JSON" in capsys.readouterr().err
    assert not (tmp_path / "out.json").exists()
