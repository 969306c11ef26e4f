"""`make mutate`: break each promise on purpose, once, and check that the tests that guard it go red.

Every mutation is a small semantic patch (one exact string replaced in one file) applied to a fresh copy
of the working tree, after which only the tests that should notice run. A mutation is *caught* when those
tests fail (pytest exit 1). Prints a table and writes build/mutate.json. Not part of `make test`: it runs
the guarding tests once per mutation (tests/test_mutations.py checks, in `make test`, that every list
loads and that no entry has gone stale).

The lists: one JSON file per area in tests/mutations/ (core.json, replicate.json, ...), each a list of
``{"name", "promise", "path", "old", "new", "tests", "k"}``: ``old`` must occur exactly once in ``path``
(relative to the repository root), ``tests`` are pytest node ids or files, ``k`` null or a ``-k``
expression. A file that cannot be read, an entry that is malformed, or one whose ``old`` text no longer
occurs exactly once fails the whole run before anything is judged: a list that silently drops out would
still print "N/N caught".
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MUTATIONS_DIR = ROOT / "tests" / "mutations"
SHARED = (".venv", "node_modules", ".cache")  # linked into each copy, never copied
FIELDS = {
    "name": str,
    "promise": str,
    "path": str,
    "old": str,
    "new": str,
    "tests": list,
    "k": (str, type(None)),
}


class MutationListError(Exception):
    """A mutation list cannot be loaded, or one of its entries is malformed or stale."""


@dataclass(frozen=True)
class Mutation:
    name: str
    promise: str  # the README promise it breaks
    path: str  # file, relative to the repository root
    old: str  # exact text, must occur exactly once
    new: str  # its replacement
    tests: tuple[str, ...]  # pytest node ids or files
    k: str | None = None  # optional -k expression
    group: str = ""  # the list it comes from: its file's stem (core, replicate, web, ...)


def load_mutations(directory: Path = MUTATIONS_DIR, root: Path = ROOT) -> list[Mutation]:
    """Every entry of every ``directory/*.json``, checked; MutationListError names each problem."""
    files = sorted(directory.glob("*.json"))
    if not files:
        raise MutationListError(f"no mutation lists in {directory}")
    mutations: list[Mutation] = []
    problems: list[str] = []
    for path in files:
        try:
            entries = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            problems.append(f"{path.name}: cannot be read as JSON ({exc})")
            continue
        if not isinstance(entries, list):
            problems.append(f"{path.name}: must hold a list of mutations")
            continue
        for number, entry in enumerate(entries, 1):
            where = f"{path.name} #{number} ({entry.get('name', '?') if isinstance(entry, dict) else '?'})"
            problem = _entry_problem(entry, root)
            if problem:
                problems.append(f"{where}: {problem}")
                continue
            mutations.append(Mutation(**{**entry, "tests": tuple(entry["tests"])}, group=path.stem))
    names = [m.name for m in mutations]
    problems += [f"the name {n!r} is used twice" for n in sorted({n for n in names if names.count(n) > 1})]
    if problems:
        raise MutationListError("mutation lists are broken:\n  " + "\n  ".join(problems))
    return mutations


def _entry_problem(entry: object, root: Path) -> str | None:
    """What is wrong with one list entry (shape, types, stale text, missing test files), or None."""
    if not isinstance(entry, dict):
        return "not an object"
    if set(entry) != set(FIELDS):
        return f"fields must be exactly {sorted(FIELDS)}, got {sorted(entry)}"
    for field, kind in FIELDS.items():
        if not isinstance(entry[field], kind):
            return f"{field!r} has the wrong type"
    if not entry["tests"] or not all(isinstance(t, str) and t for t in entry["tests"]):
        return "'tests' must be a non-empty list of pytest node ids or files"
    if missing := [t for t in entry["tests"] if not (root / t.partition("::")[0]).is_file()]:
        return f"test files do not exist: {', '.join(missing)}"
    target = root / entry["path"]
    if not target.is_file():
        return f"{entry['path']} does not exist"
    count = target.read_text().count(entry["old"])
    if count != 1:
        return f"stale: its 'old' text occurs {count} times in {entry['path']} (must be exactly once)"
    return None


def copy_tree(target: Path) -> None:
    """The working tree as git sees it (tracked + untracked, not ignored), with the big caches linked."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.split(b"\0")
    for name in filter(None, (n.decode() for n in listed)):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    for name in SHARED:
        if (ROOT / name).exists():
            (target / name).symlink_to(ROOT / name)


def run_tests(tree: Path, tests: tuple[str, ...], k: str | None, timeout: float) -> tuple[int, float, str]:
    command = [str(ROOT / ".venv" / "bin" / "python"), "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider"]
    command += [*tests, *(["-k", k] if k else [])]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    start = time.monotonic()
    try:
        done = subprocess.run(command, cwd=tree, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return 124, time.monotonic() - start, "timeout"
    tail = (done.stdout + done.stderr).strip().splitlines()
    return done.returncode, time.monotonic() - start, tail[-1] if tail else ""


def apply(tree: Path, mutation: Mutation) -> bool:
    path = tree / mutation.path
    text = path.read_text()
    if text.count(mutation.old) != 1:
        return False
    path.write_text(text.replace(mutation.old, mutation.new))
    return True


def check_import_isolation(tree: Path) -> None:
    """The copy's sam2enc must be the one imported (an editable install must not shadow it)."""
    out = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "python"), "-c", "import sam2enc; print(sam2enc.__file__)"],
        cwd=tree,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not out.startswith(str(tree)):
        raise SystemExit(f"the mutated copy is not what gets imported ({out}); aborting")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.mutate", description=__doc__.splitlines()[0])
    parser.add_argument("-k", help="only mutations whose name contains this text")
    parser.add_argument(
        "--group", default="all", help="one list: a file stem in tests/mutations/ (core, replicate, ...)"
    )
    parser.add_argument("--timeout", type=float, default=600, help="seconds per test run")
    parser.add_argument("--json", type=Path, default=ROOT / "build" / "mutate.json")
    args = parser.parse_args(argv)

    try:
        everything = load_mutations(MUTATIONS_DIR)
    except MutationListError as exc:
        print(exc, file=sys.stderr)
        return 2
    groups = sorted({m.group for m in everything})
    if args.group != "all" and args.group not in groups:
        parser.error(f"--group: one of all, {', '.join(groups)}")
    mutations = [
        m
        for m in everything
        if (not args.k or args.k.lower() in m.name.lower()) and args.group in ("all", m.group)
    ]
    rows = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="sam2enc-mutate-") as scratch:
        base = Path(scratch) / "base"
        copy_tree(base)
        check_import_isolation(base)
        # Baseline: every selection must pass untouched. Those without -k share one pytest run (one
        # browser, one model load); each -k selection runs on its own.
        wanted = {t for m in mutations if not m.k for t in m.tests}
        plain = tuple(sorted(t for t in wanted if t.split("::")[0] == t or t.split("::")[0] not in wanted))
        selections = ([(plain, None)] if plain else []) + sorted({(m.tests, m.k) for m in mutations if m.k})
        print(f"baseline: {len(selections)} test runs on the untouched tree", flush=True)
        broken = []
        for tests, k in selections:
            code, _, tail = run_tests(base, tests, k, args.timeout * 3)
            if code != 0:
                broken.append(f"{' '.join(tests)} -k {k}: {tail}")
        if broken:
            print("baseline fails, so no mutation can be judged:\n  " + "\n  ".join(broken))
            return 2
        for number, mutation in enumerate(mutations, 1):
            tree = Path(scratch) / f"m{number}"
            shutil.copytree(base, tree, symlinks=True)
            if not apply(tree, mutation):
                rows.append(
                    {**_row(mutation), "caught": "STALE", "seconds": 0, "tail": "patch text not found once"}
                )
            else:
                code, seconds, tail = run_tests(tree, mutation.tests, mutation.k, args.timeout)
                caught = (
                    "yes"
                    if code == 1
                    else ("TIMEOUT" if code == 124 else "NO" if code == 0 else f"rc {code}")
                )
                rows.append({**_row(mutation), "caught": caught, "seconds": round(seconds, 1), "tail": tail})
            shutil.rmtree(tree, ignore_errors=True)
            row = rows[-1]
            print(
                f"[{number}/{len(mutations)}] {row['caught']:>7}  {mutation.name}  ({row['seconds']} s)",
                flush=True,
            )
    print_table(rows)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(rows, indent=2) + "\n")
    missed = [r for r in rows if r["caught"] != "yes"]
    elapsed = time.monotonic() - started
    print(f"\n{len(rows) - len(missed)}/{len(rows)} caught in {elapsed:.0f} s; wrote {args.json}")
    return 1 if missed else 0


def _row(mutation: Mutation) -> dict:
    files: dict[str, list[str]] = {}
    for test in mutation.tests:
        path, _, name = test.partition("::")
        files.setdefault(Path(path).name, []).extend([name.removeprefix("test_")] if name else [])
    tests = "; ".join(f"{f}::{','.join(n)}" if n else f for f, n in files.items())
    tests += f" -k {mutation.k}" if mutation.k else ""
    return {"mutation": mutation.name, "promise": mutation.promise, "file": mutation.path, "tests": tests}


def print_table(rows: list[dict]) -> None:
    widths = [
        max(
            len(str(r[key]))
            for r in [*rows, {"mutation": "mutation", "tests": "tests run", "caught": "caught"}]
        )
        for key in ("mutation", "tests", "caught")
    ]
    header = ("mutation", "tests run", "caught")
    print("\n" + " | ".join(h.ljust(w) for h, w in zip(header, widths)))
    print("-+-".join("-" * w for w in widths))
    for row in rows:
        print(" | ".join(str(row[key]).ljust(w) for key, w in zip(("mutation", "tests", "caught"), widths)))


if __name__ == "__main__":
    sys.exit(main())
