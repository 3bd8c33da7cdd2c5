"""Drop numba's on-disk cache when a source its kernels may have inlined has changed.

numba keys a cached function on the file that defines it only (numba issue #1833): a kernel
that inlines a helper from another file keeps its old machine code after that file is
edited, and computes with the old helper, silently. Each package with cached kernels calls
:func:`drop_stale_cache` when it is imported, with every source its kernels compile from;
when their digest differs from the one stamped in the package's ``__pycache__``, the
``.nbi``/``.nbc`` files there are deleted (numba compiles afresh on the next call) and the
new digest is stamped. Reading and hashing the sources costs well under a millisecond.
numba's user-wide cache (used when ``__pycache__`` is not writable) is not touched: an
installed, read-only package is not edited in place.
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


def drop_stale_cache(package_dir: Path, sources: Iterable[Path], extra: str = "") -> bool:
    """Delete numba's cache files in ``package_dir/__pycache__`` unless they were compiled
    from ``sources`` as they are now (the stamped digest; ``extra``: anything else the
    compiled code depends on, such as which product library it calls); True if it deleted
    (or found no stamp). Errors of the file system (a read-only install) leave everything
    as it is."""
    cache = Path(package_dir) / "__pycache__"
    stamp = cache / STAMP
    try:
        digest = sources_digest(sources, extra)
        if stamp.is_file() and stamp.read_text() == digest:
            return False
        if cache.is_dir():
            for old in [*cache.glob("*.nbi"), *cache.glob("*.nbc")]:
                old.unlink(missing_ok=True)
        cache.mkdir(exist_ok=True)
        tmp = cache / f"{STAMP}.{os.getpid()}"
        tmp.write_text(digest)
        os.replace(tmp, stamp)  # atomic: processes starting together read one digest
    except OSError:
        return False
    return True
