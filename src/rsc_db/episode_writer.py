"""``EpisodeWriter``: finished episodes written by one background thread, in order, surviving
a database outage longer than :class:`RunLogger`'s retry window.

The producer (an RLlib driver, a training loop) calls :meth:`EpisodeWriter.submit` with the
episodes it collected and never waits for the database, except for back-pressure. One thread
writes them in submission order, each episode in its own transaction (keyed by its id, so a
write retried after a lost connection cannot duplicate it).

When the database goes away for longer than the logger's retries (about 15 s), the episode
that failed stays at the head of the queue and the thread keeps trying every
``retry_every_s``; episodes finished meanwhile are buffered, up to ``max_buffered``. When the
database is back, the buffer is written in order and training never noticed. If the buffer
fills up, or the outage lasts longer than ``max_outage_s``, the next :meth:`submit` (or
:meth:`flush`) raises :class:`DatabaseUnavailable`: the producer stops, with every episode
it finished before the buffer filled either written or still in memory (``pending``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

from .engine import DatabaseUnavailable

log = logging.getLogger(__name__)

EpisodeItem = tuple[str, Mapping[str, Any]]


class EpisodeWriter:
    """Writes ``(episode id, terminal info)`` items through ``logger.log_episode`` in a
    background thread. ``max_buffered``: episodes held while the database is unreachable;
    ``max_outage_s``: how long an outage is waited out before giving up."""

    def __init__(self, logger: Any, *, max_buffered: int = 2000, max_outage_s: float = 120.0,
                 retry_every_s: float = 2.0, name: str = "rsc-db-writer") -> None:
        if max_buffered < 1:
            raise ValueError(f"max_buffered must be >= 1, got {max_buffered}")
        self.logger = logger
        self.max_buffered = max_buffered
        self.max_outage_s = max_outage_s
        self.retry_every_s = retry_every_s
        self._queue: deque[EpisodeItem] = deque()
        self._cond = threading.Condition()
        self._busy = False  # the thread holds an item it has not finished writing
        self._closed = False
        self._error: BaseException | None = None
        self._outage_since: float | None = None
        self.write_seconds = 0.0  # time spent in successful writes (a metric for the caller)
        self.written = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ producer side
    @property
    def pending(self) -> int:
        """Episodes submitted and not yet written."""
        with self._cond:
            return len(self._queue) + int(self._busy)

    @property
    def in_outage(self) -> bool:
        """Whether the database is unreachable right now (episodes are being buffered)."""
        return self._outage_since is not None

    def submit(self, items: Iterable[EpisodeItem]) -> None:
        """Queue finished episodes (in order). Raises :class:`DatabaseUnavailable` if the
        writer gave up (outage too long) or the buffer of an ongoing outage is full; raises
        any other error a write hit (a bug, a malformed episode)."""
        items = list(items)
        with self._cond:
            self._raise_if_failed()
            if self._closed:
                raise RuntimeError("EpisodeWriter is closed")
            if self._outage_since is not None and \
                    len(self._queue) + len(items) > self.max_buffered:
                waited = time.monotonic() - self._outage_since
                self._error = DatabaseUnavailable(
                    f"the database {self._url()} has been unreachable for {waited:.0f} s and "
                    f"{len(self._queue)} finished episodes wait to be written (buffer limit "
                    f"{self.max_buffered}); stopping so that no episode is lost")
                raise self._error
            self._queue.extend(items)
            self._cond.notify_all()

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every submitted episode is written (an outage is waited out, up to
        ``max_outage_s``). Raises what :meth:`submit` raises, or :class:`TimeoutError`."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._queue or self._busy:
                self._raise_if_failed()
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise TimeoutError(f"{len(self._queue) + int(self._busy)} episodes not "
                                       f"written within {timeout} s")
                self._cond.wait(0.5 if left is None else min(left, 0.5))
            self._raise_if_failed()

    def close(self, *, flush: bool = True) -> None:
        """Stop the thread (after writing what is queued if ``flush``)."""
        try:
            if flush:
                self.flush()
        finally:
            with self._cond:
                self._closed = True
                self._cond.notify_all()
            self._thread.join(timeout=30)

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error

    def _url(self) -> str:
        from .engine import mask_url

        return mask_url(getattr(self.logger, "url", "?"))

    # ------------------------------------------------------------------ writer thread
    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if not self._queue:
                    return  # closed and drained
                rid, info = self._queue[0]
                self._busy = True
            try:
                t0 = time.perf_counter()
                self.logger.log_episode(rid, info)
                elapsed = time.perf_counter() - t0
            except DatabaseUnavailable as exc:
                if not self._wait_out(exc):
                    return
                continue  # the same episode again
            except BaseException as exc:  # a bug or a malformed episode: surface it
                with self._cond:
                    self._error = exc
                    self._busy = False
                    self._cond.notify_all()
                return
            with self._cond:
                self._queue.popleft()
                self._busy = False
                self.written += 1
                self.write_seconds += elapsed
                if self._outage_since is not None:
                    log.warning("database %s is back after %.0f s; writing %d buffered "
                                "episodes", self._url(), time.monotonic() - self._outage_since,
                                len(self._queue))
                    self._outage_since = None
                self._cond.notify_all()

    def _wait_out(self, exc: DatabaseUnavailable) -> bool:
        """Keep the failed episode queued and wait ``retry_every_s``; False (and the error
        recorded) once the outage exceeds ``max_outage_s`` or the writer is closed."""
        with self._cond:
            now = time.monotonic()
            if self._outage_since is None:
                self._outage_since = now
                log.warning("database %s unreachable (%s); buffering finished episodes (up "
                            "to %d) and retrying every %.0f s", self._url(), exc,
                            self.max_buffered, self.retry_every_s)
            waited = now - self._outage_since
            if waited > self.max_outage_s or (self._closed and self._error is not None):
                self._error = DatabaseUnavailable(
                    f"the database {self._url()} has been unreachable for {waited:.0f} s "
                    f"(limit {self.max_outage_s:.0f} s); {len(self._queue)} finished "
                    f"episodes could not be written: {exc}")
                self._busy = False
                self._cond.notify_all()
                return False
            self._busy = False
            self._cond.notify_all()
            self._cond.wait(self.retry_every_s)
            return True
