"""Drop numba's on-disk cache when a source its kernels may have inlined has changed.

numba keys a cached function on the file that defines it only (numba issue #1833): a kernel
that inlines a helper from another file keeps its old machine code after that file is
edited, and computes with the old helper, silently. Each package with cached kernels calls
:func:`drop_stale_cache` when it is imported, with every source its kernels compile from;
when their digest differs from the one stamped in the directory numba caches that package's
kernels in (:func:`cache_dir`: under ``NUMBA_CACHE_DIR`` when it is set, as containers often
do; else ``__pycache__``, or numba's user-wide cache directory when that is not writable),
the ``.nbi``/``.nbc`` files there are deleted (numba compiles afresh on the next call) and the
new digest is stamped. Without the right directory a stale kernel would survive an edit of an
inlined helper, and a kernel compiled for one product backend would run (and crash) under
``RSC_NATIVE_GEMM=0``. Numba itself is not imported for this unless it already is, or the
user-wide directory is needed: ``import rsc_env`` stays light. Reading and hashing the sources
costs well under a millisecond.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

STAMP = "rsc-numba-sources.sha256"
#: rsc_env's modules with cached numba functions (a test checks the list is complete).
NUMBA_MODULES = ("compiled.py", "action_replay.py")


def package_sources() -> list[Path]:
    """The sources of rsc_env's cached numba functions."""
    here = Path(__file__).parent
    return [here / name for name in NUMBA_MODULES]


def sources_digest(sources: Iterable[Path], extra: str = "") -> str:
    """SHA-256 over the names and contents of ``sources`` (sorted), and ``extra``."""
    h = hashlib.sha256(extra.encode())
    for path in sorted(Path(p) for p in sources):
        h.update(path.name.encode())
        h.update(b"\0")
        h.update(path.read_bytes())
    return h.hexdigest()


def cache_subpath(package_dir: Path) -> str:
    """The directory name numba gives a source directory's kernels inside ``NUMBA_CACHE_DIR``
    or its user-wide cache: the directory's name and the SHA-1 of its absolute path (numba's
    ``_CacheLocator.get_suitable_cache_subpath``; a test checks the two agree)."""
    path = os.path.abspath(Path(package_dir) / "_")
    subpath = os.path.dirname(path)
    return "_".join([os.path.split(subpath)[-1], hashlib.sha1(subpath.encode()).hexdigest()])


def cache_dir(package_dir: Path) -> Path:
    """The directory numba caches the kernels defined in ``package_dir`` in, in the order of
    its cache locators: under ``NUMBA_CACHE_DIR`` when that is set (numba's setting if numba
    is imported, else the environment variable, its source); else the package's
    ``__pycache__`` when it is writable; else numba's user-wide cache directory."""
    config = sys.modules.get("numba.core.config")
    configured = config.CACHE_DIR if config is not None else os.environ.get(
        "NUMBA_CACHE_DIR", "")
    if configured:
        return Path(configured) / cache_subpath(package_dir)
    in_tree = Path(package_dir) / "__pycache__"
    try:
        in_tree.mkdir(exist_ok=True)
        tempfile.TemporaryFile(dir=in_tree).close()  # numba's own test of the directory
        return in_tree
    except OSError:
        from numba.misc.appdirs import AppDirs

        user = AppDirs(appname="numba", appauthor=False).user_cache_dir
        return Path(user) / cache_subpath(package_dir)


def drop_stale_cache(package_dir: Path, sources: Iterable[Path], extra: str = "") -> bool:
    """Delete numba's cache files of the kernels in ``package_dir`` (in :func:`cache_dir`)
    unless they were compiled from ``sources`` as they are now (the stamped digest;
    ``extra``: anything else the compiled code depends on, such as which product library it
    calls); True if it deleted (or found no stamp). Errors of the file system (a read-only
    install) leave everything as it is."""
    cache = cache_dir(Path(package_dir))
    stamp = cache / STAMP
    try:
        digest = sources_digest(sources, extra)
        if stamp.is_file() and stamp.read_text() == digest:
            return False
        if cache.is_dir():
            for old in [*cache.glob("*.nbi"), *cache.glob("*.nbc")]:
                old.unlink(missing_ok=True)
        cache.mkdir(parents=True, exist_ok=True)
        tmp = cache / f"{STAMP}.{os.getpid()}"
        tmp.write_text(digest)
        os.replace(tmp, stamp)  # atomic: processes starting together read one digest
    except OSError:
        return False
    return True
