"""The ``SAM2ENC_*`` environment variables read at setup: one parser, one kind of error.

=====================  ==============================  ========
variable               values                          default
=====================  ==============================  ========
``SAM2ENC_DEVICE``     auto, cuda, cpu                 auto
``SAM2ENC_PRECISION``  fp32, tf32, fp16                fp32
``SAM2ENC_CUDA_GRAPH`` 1/0 (also true/false, on/off)   0
``SAM2ENC_DECODE``     auto, gpu, pillow               auto
=====================  ==============================  ========

(``SAM2ENC_MODELS_DIR`` is a path: sam2enc/modeldir.py reads it.) Each value is read case-blind and
trimmed; a value outside its list is a ``SettingError`` naming the variable, what it may be and what it
was, raised at setup (Cog's setup fails with that sentence) rather than at the first prediction.
"""

from __future__ import annotations

import os

from .errors import SettingError

_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def choice(name: str, choices: tuple[str, ...], default: str) -> str:
    """``$name`` as one of ``choices`` (unset or blank: ``default``)."""
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return default
    if value not in choices:
        raise SettingError(f"${name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def switch(name: str) -> bool:
    """``$name`` as on (1, true, yes, on) or off (unset, 0, false, no, off)."""
    value = os.environ.get(name, "").strip().lower()
    if value in ("", *_FALSE):
        return False
    if value in _TRUE:
        return True
    raise SettingError(f"${name} must be 1 or 0, got {value!r}")
