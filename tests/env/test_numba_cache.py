"""numba's cache knows only a kernel's own file (numba issue #1833): the packages drop their
cached kernels when any source those kernels compile from has changed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from numba.core import config

import rsc_env
from rsc_env.numba_cache import (
    STAMP,
    cache_dir,
    cache_subpath,
    drop_stale_cache,
    package_sources,
    sources_digest,
)

SRC = Path(rsc_env.__file__).resolve().parents[1]


@pytest.fixture
def in_tree(monkeypatch):
    """numba caching next to the sources (no NUMBA_CACHE_DIR)."""
    monkeypatch.setattr(config, "CACHE_DIR", "")


def test_cached_kernels_are_dropped_when_an_inlined_source_changes(tmp_path, in_tree):
    helper, kernel = tmp_path / "helper.py", tmp_path / "kernel.py"
    helper.write_text("def f(x):\n    return x + 1\n")
    kernel.write_text("from helper import f\n")
    cache = tmp_path / "__pycache__"
    cache.mkdir()
    for name in ("kernel.k-1.py311.nbi", "kernel.k-1.py311.1.nbc", "kernel.cpython-311.pyc"):
        (cache / name).write_text("old")
    assert drop_stale_cache(tmp_path, [kernel, helper])  # no stamp yet: nothing is trusted
    assert sorted(p.name for p in cache.iterdir()) == sorted([STAMP, "kernel.cpython-311.pyc"])
    (cache / "kernel.k-1.py311.nbi").write_text("compiled from the sources as they are")
    assert not drop_stale_cache(tmp_path, [kernel, helper])  # unchanged: the cache stays
    assert (cache / "kernel.k-1.py311.nbi").exists()
    helper.write_text("def f(x):\n    return x + 2\n")  # only the inlined helper changes
    assert drop_stale_cache(tmp_path, [kernel, helper])
    assert not (cache / "kernel.k-1.py311.nbi").exists()
    assert (cache / STAMP).read_text() == sources_digest([kernel, helper])


def test_numba_cache_dir_is_guarded_too(tmp_path, monkeypatch):
    """With NUMBA_CACHE_DIR numba caches only there, in a directory of its own naming: the
    guard finds the same directory, and a changed backend (``extra``) drops its kernels."""
    from numba.core.caching import _CacheLocator

    pkg = tmp_path / "pkg"
    pkg.mkdir()
    kernel = pkg / "kernel.py"
    kernel.write_text("x = 1\n")
    assert cache_subpath(pkg) == _CacheLocator.get_suitable_cache_subpath(str(kernel))
    monkeypatch.setattr(config, "CACHE_DIR", str(tmp_path / "numba-cache"))
    mirror = cache_dir(pkg)
    assert mirror == tmp_path / "numba-cache" / cache_subpath(pkg)
    assert drop_stale_cache(pkg, [kernel], extra="rsc-step-avx2")
    (mirror / "kernel.k-1.py311.nbi").write_text("compiled against step.c")
    assert not drop_stale_cache(pkg, [kernel], extra="rsc-step-avx2")
    assert drop_stale_cache(pkg, [kernel], extra="blas")  # RSC_NATIVE_GEMM=0
    assert not (mirror / "kernel.k-1.py311.nbi").exists()
    assert not (pkg / "__pycache__").exists()  # numba does not look there now


def test_the_guard_reads_numba_cache_dir_without_importing_numba(tmp_path):
    """``import rsc_env`` stays light (no numba), and before numba is imported the guard
    takes NUMBA_CACHE_DIR from the environment, where numba's setting comes from."""
    code = ("import sys, rsc_env\n"
            "from pathlib import Path\n"
            "from rsc_env.numba_cache import cache_dir, cache_subpath\n"
            "here = Path(rsc_env.__file__).parent\n"
            "assert 'numba' not in sys.modules, 'import rsc_env imported numba'\n"
            "assert cache_dir(here) == Path(sys.argv[1]) / cache_subpath(here)\n"
            "assert (cache_dir(here) / 'rsc-numba-sources.sha256').is_file()\n")
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    run = subprocess.run([sys.executable, "-c", code, str(tmp_path)], env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr


def test_an_unreadable_source_leaves_the_cache_alone(tmp_path, in_tree):
    cache = tmp_path / "__pycache__"
    cache.mkdir()
    (cache / "kernel.k-1.py311.nbi").write_text("old")
    assert not drop_stale_cache(tmp_path, [tmp_path / "missing.py"])  # an OSError: no change
    assert sorted(p.name for p in cache.iterdir()) == ["kernel.k-1.py311.nbi"]


def test_every_module_with_cached_kernels_is_covered():
    import rsc_policy.agent as agent
    from rsc_policy.agent import native

    cached = {p.relative_to(SRC) for p in SRC.rglob("*.py") if "cache=True" in p.read_text()}
    listed = {p.resolve().relative_to(SRC) for p in package_sources()}
    listed |= {Path("rsc_policy/agent") / name for name in agent.NUMBA_MODULES}
    assert cached == listed
    # importing the packages stamped their caches with the sources as they are now
    here = Path(agent.__file__).parent
    stamp = (here / "__pycache__" / STAMP).read_text()
    assert stamp == sources_digest([*(here / n for n in agent.NUMBA_MODULES),
                                    here / "step.c", *package_sources()],
                                   extra=native.BACKEND)
