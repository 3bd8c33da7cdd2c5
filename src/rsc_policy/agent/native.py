"""Build and load ``step.c`` (the learning step's products and Adam update, and the
one-observation acting forward) for the compiled kernels.

OpenBLAS packs both operands and zeroes ``C`` on every call; on the step's products (batch
32, a 64-64 net) that is ~25 % of its time, and its per-call overhead dominates the products
with 3 actions. ``step.c`` multiplies in place with 4x16 AVX2/FMA register tiles. Measured
here (one thread, from compiled code): 32x102x64 5.1 us against OpenBLAS's 6.4, 32x64x64
2.9 against 4.4, the whole step's products with the online weights' transpose ~30 us
against ~37 (``bench/bench_learner.py::test_gemm_floor``); Adam in one pass 5.1 us against
7.4 for four vectorised numba loops; the three-layer acting forward 0.62 us against 1.18.

The library is compiled once per source digest with the system C compiler (``$CC`` or
``cc``) into this package's ``__pycache__`` (or the temp directory when that is read-only)
and loaded into LLVM's process-wide symbol table, so numba's cached kernels bind to it by
name. No AVX2/FMA CPU, no compiler, or a failed build (or ``RSC_NATIVE_GEMM=0``):
:data:`AVAILABLE` is False and the kernels use BLAS and numba loops
(:mod:`rsc_policy.agent.blas`); :data:`BACKEND` says which (it is part of the digest that
guards numba's cache, see :mod:`rsc_env.numba_cache`).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import llvmlite.binding as llvm

SOURCE = Path(__file__).with_name("step.c")
FLAGS = ("-O3", "-mavx2", "-mfma", "-ffp-contract=off", "-fno-math-errno", "-fPIC", "-shared")


def _cpu_ok() -> bool:
    features = llvm.get_host_cpu_features()
    return bool(features.get("avx2")) and bool(features.get("fma"))


def _build(source: Path) -> Path | None:
    """The compiled library for ``source`` (built now if missing), or None."""
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        return None
    digest = hashlib.sha256(source.read_bytes() + " ".join(FLAGS).encode()).hexdigest()[:16]
    name = f"rsc_step-{digest}.so"
    for folder in (source.parent / "__pycache__",
                   Path(tempfile.gettempdir()) / f"rsc-native-{os.getuid()}"):
        lib = folder / name
        if lib.is_file():
            return lib
        try:
            folder.mkdir(parents=True, exist_ok=True)
            tmp = folder / f"{name}.{os.getpid()}.tmp"
            subprocess.run([compiler, *FLAGS, "-o", str(tmp), str(source)], check=True,
                           capture_output=True, timeout=120)
            os.replace(tmp, lib)  # atomic: processes starting together load one file
            for old in folder.glob("rsc_step-*.so"):  # older sources' builds
                if old != lib:
                    old.unlink(missing_ok=True)  # a process that loaded one keeps its mapping
            return lib
        except (OSError, subprocess.SubprocessError):
            continue
    return None


def _load() -> Path | None:
    if os.environ.get("RSC_NATIVE_GEMM", "1") == "0":
        return None
    try:
        if not _cpu_ok():  # not x86-64 with AVX2 and FMA (or LLVM cannot tell)
            return None
        lib = _build(SOURCE)
        if lib is not None:
            llvm.load_library_permanently(str(lib))
        return lib
    except (OSError, RuntimeError):
        return None


LIBRARY = _load()
#: Whether the kernels multiply with ``step.c`` (else with BLAS).
AVAILABLE = LIBRARY is not None
BACKEND = "rsc-step-avx2" if AVAILABLE else "blas"
