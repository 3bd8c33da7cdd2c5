"""Drop numba's on-disk cache when a source its kernels may have inlined has changed.

numba keys a cached function on the file that defines it only (numba issue #1833): a kernel
that inlines a helper from another file keeps its old machine code after that file is
edited, and computes with the old helper, silently. Each package with cached kernels calls
:func:`drop_stale_cache` when it is imported, with every source its kernels compile from;
when their digest differs from the one stamped in the package's ``__pycache__``, the
``.nbi``/``.nbc`` files there are deleted (numba compiles afresh on the next call) and the
new digest is stamped. Reading and hashing the sources costs well under a millisecond.
The same is done wherever else numba keeps the package's cache: the directory under
``NUMBA_CACHE_DIR`` when that is set (numba then caches nowhere else: containers often set
it), and numba's user-wide cache directory, used when ``__pycache__`` is not writable. Without
that, a stale kernel there would survive an edit of an inlined helper, and a kernel compiled
for one product backend would run under ``RSC_NATIVE_GEMM=0``.
"""

from __future__ import annotations

import hashlib
import os
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


def cache_dirs(package_dir: Path) -> list[Path]:
    """Where numba may keep the cache of the kernels defined in ``package_dir``: only under
    ``NUMBA_CACHE_DIR`` when it is set; else the package's ``__pycache__`` and, for a package
    whose ``__pycache__`` is not writable, numba's user-wide cache directory."""
    from numba.core import config

    sub = cache_subpath(package_dir)
    if config.CACHE_DIR:
        return [Path(config.CACHE_DIR) / sub]
    from numba.misc.appdirs import AppDirs

    user = Path(AppDirs(appname="numba", appauthor=False).user_cache_dir) / sub
    return [Path(package_dir) / "__pycache__", user]


def drop_stale_cache(package_dir: Path, sources: Iterable[Path], extra: str = "") -> bool:
    """Delete numba's cache files of the kernels in ``package_dir`` (every directory of
    :func:`cache_dirs` that exists; ``__pycache__`` is created) unless they were compiled
    from ``sources`` as they are now (the stamped digest; ``extra``: anything else the
    compiled code depends on, such as which product library it calls); True if it deleted
    (or found no stamp) in any. Errors of the file system (a read-only install) leave that
    directory as it is."""
    try:
        digest = sources_digest(sources, extra)
    except OSError:
        return False
    dropped = False
    for i, cache in enumerate(cache_dirs(Path(package_dir))):
        if i == 0 or cache.is_dir():
            dropped |= _drop_in(cache, digest)
    return dropped


def _drop_in(cache: Path, digest: str) -> bool:
    """:func:`drop_stale_cache` in one cache directory."""
    stamp = cache / STAMP
    try:
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
