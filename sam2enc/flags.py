"""Flag spellings shared by every entry point (``sam2enc``, ``python -m sam2enc.web``, ``tools/demo.py``).

One meaning per flag: the exported model directory is ``--models-dir`` everywhere, and ``--out`` is only
ever where a command writes its product (a bundle, a mask, the demo's files). sam2enc 0.1.0 spelled the
model directory ``--models`` (and ``--out`` on export/weights); those spellings keep working, hidden from
``--help``, with one warning on stderr, so that scripts written for 0.1.0 do not break silently.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

MODELS_DIR_FLAG = "--models-dir"


class _LegacyModelsDir(argparse.Action):
    """Stores into ``models_dir`` like ``--models-dir`` and says, once per use, what to write instead."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        print(
            f"warning: {option_string} is sam2enc 0.1.0's name for the model directory: "
            f"use {MODELS_DIR_FLAG}",
            file=sys.stderr,
        )
        namespace.models_dir = values


def add_models_dir(
    parser: argparse.ArgumentParser, default: Path | None, help: str, legacy: Sequence[str] = ("--models",)
) -> None:
    """``--models-dir`` plus its hidden 0.1.0 spellings ``legacy``, all stored as ``args.models_dir``."""
    parser.add_argument(MODELS_DIR_FLAG, dest="models_dir", type=Path, default=default, help=help)
    add_legacy_models_dir(parser, *legacy)


def add_legacy_models_dir(parser: argparse.ArgumentParser, *names: str) -> None:
    """Accept ``names`` as old spellings of ``--models-dir`` (e.g. ``--out`` where it meant that)."""
    if names:
        parser.add_argument(
            *names,
            dest="models_dir",
            type=Path,
            action=_LegacyModelsDir,
            default=argparse.SUPPRESS,
            help=argparse.SUPPRESS,
        )
