"""What the installed onnxruntime-gpu needs from CUDA, read from the build itself.

Which CUDA major an onnxruntime-gpu wheel links changes between releases (1.24 links ``libcudart.so.12``,
1.27 and later ``libcudart.so.13``), so nothing here is a hard-coded list: the libraries come from the
``DT_NEEDED`` entries of ``libonnxruntime_providers_cuda.so``, the CUDA version from
``onnxruntime.capi.build_and_package_info``, and the cuDNN major from the wheel's own ``cudnn`` extra
(``nvidia-cudnn-cu13~=9.0``; cuDNN is opened with dlopen, so it is not among the NEEDED entries). An error
message built from them stays right when the pin moves.
"""

from __future__ import annotations

import ctypes
import re
import struct
from dataclasses import dataclass
from functools import cache
from pathlib import Path

PROVIDER_LIBRARY = "libonnxruntime_providers_cuda.so"
# NEEDED entries that are the C runtime, not CUDA: never worth naming to a user.
_SYSTEM = re.compile(r"^(libc|libm|libdl|librt|libpthread|libstdc\+\+|libgcc_s|ld-linux[\w-]*)\.so")
_CUDNN_EXTRA = re.compile(r"^nvidia-cudnn-cu\d+\s*~=\s*(\d+)[^;]*;\s*extra\s*==\s*.cudnn.")
_DT_NEEDED, _DT_STRTAB, _PT_LOAD, _PT_DYNAMIC = 1, 5, 1, 2


@dataclass(frozen=True)
class CudaRequirements:
    """The CUDA the installed onnxruntime was built for and the shared libraries it loads."""

    cuda_version: str | None  # "13.0"
    cudnn_major: str | None  # "9"
    libraries: tuple[str, ...]  # ("libcublasLt.so.13", ..., "libcudnn.so.9")

    @property
    def cuda_major(self) -> str | None:
        return self.cuda_version.split(".")[0] if self.cuda_version else None

    def missing(self) -> list[str]:
        """The libraries the dynamic loader cannot find right now."""
        return [name for name in self.libraries if not _loadable(name)]


def provider_library_path() -> Path | None:
    """The CUDA provider library of the installed onnxruntime, or None for a CPU-only build."""
    import onnxruntime

    path = Path(onnxruntime.__file__).parent / "capi" / PROVIDER_LIBRARY
    return path if path.is_file() else None


@cache
def cuda_requirements() -> CudaRequirements:
    from onnxruntime.capi import build_and_package_info as build

    version = getattr(build, "cuda_version", None) or None
    path = provider_library_path()
    if path is None:
        return CudaRequirements(version, None, ())
    libraries = [name for name in elf_needed(path) if not _SYSTEM.match(name)]
    cudnn = _required_cudnn_major(build.package_name)
    if cudnn:
        libraries.append(f"libcudnn.so.{cudnn}")  # loaded with dlopen, so not among the NEEDED entries
    return CudaRequirements(version, cudnn, tuple(libraries))


def cuda_diagnosis(has_provider: bool) -> str:
    """One sentence for a user whose session did not get the CUDA provider: what is missing, and why."""
    from onnxruntime.capi import build_and_package_info as build

    package = f"{build.package_name} {build.__version__}"
    if not has_provider:
        return f"this onnxruntime build ({package}) has no CUDA provider (install onnxruntime-gpu)"
    need = cuda_requirements()
    built_for = f"CUDA {need.cuda_version}" if need.cuda_version else "CUDA"
    if need.cudnn_major:
        built_for += f" and cuDNN {need.cudnn_major}"
    missing = need.missing()
    found = (
        f"missing: {', '.join(missing)}"
        if missing
        else "all of its libraries load, so the GPU or its driver is not usable (see ONNX Runtime's log)"
    )
    return (
        f"the CUDA provider failed to load; {package} needs {built_for} "
        f"({', '.join(need.libraries)}); {found}"
    )


def elf_needed(path: Path) -> list[str]:
    """The ``DT_NEEDED`` entries of a 64-bit little-endian ELF file (what ``readelf -d`` lists)."""
    with open(path, "rb") as fh:
        header = fh.read(64)
        if header[:4] != b"\x7fELF" or header[4] != 2 or header[5] != 1:
            return []
        phoff, phentsize, phnum = (
            struct.unpack_from("<Q", header, 32)[0],
            *struct.unpack_from("<HH", header, 54),
        )
        fh.seek(phoff)
        table = fh.read(phentsize * phnum)
        loads, dynamic = [], None
        for i in range(phnum):
            p_type, _, p_offset, p_vaddr, _, p_filesz, _, _ = struct.unpack_from(
                "<IIQQQQQQ", table, i * phentsize
            )
            if p_type == _PT_LOAD:
                loads.append((p_vaddr, p_offset, p_filesz))
            elif p_type == _PT_DYNAMIC:
                dynamic = (p_offset, p_filesz)
        if dynamic is None:
            return []
        fh.seek(dynamic[0])
        raw = fh.read(dynamic[1])
        entries = [struct.unpack_from("<qQ", raw, i) for i in range(0, len(raw) - 15, 16)]
        strtab = next((value for tag, value in entries if tag == _DT_STRTAB), None)
        if strtab is None:
            return []
        base = next(
            (off + strtab - vaddr for vaddr, off, size in loads if vaddr <= strtab < vaddr + size), None
        )
        if base is None:
            return []
        names = []
        for tag, value in entries:
            if tag == _DT_NEEDED:
                fh.seek(base + value)
                names.append(fh.read(256).split(b"\0", 1)[0].decode())
        return names


def _required_cudnn_major(package: str) -> str | None:
    """From the wheel's metadata: ``nvidia-cudnn-cu13~=9.0; extra == "cudnn"`` → "9"."""
    from importlib.metadata import PackageNotFoundError, requires

    try:
        requirements = requires(package) or []
    except PackageNotFoundError:
        return None
    return next((m.group(1) for r in requirements if (m := _CUDNN_EXTRA.match(r))), None)


def _loadable(name: str) -> bool:
    try:
        ctypes.CDLL(name)
    except OSError:
        return False
    return True
