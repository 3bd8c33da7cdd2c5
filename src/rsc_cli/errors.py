"""The one error path of rsc's command-line tools (``rsc-train``, ``rsc-tune``, ``rsc-bench``,
``rsc-db``).

* a user mistake: one line ``error: ...`` on stderr, exit code 2;
* Ctrl-C: exit 130; SIGTERM: exit 143 (no traceback either way);
* anything else is a bug: one line on stderr naming the error and a log file that holds the
  traceback, exit code 1.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import typer

F = TypeVar("F", bound=Callable[..., Any])
EXIT_USER, EXIT_INTERNAL, EXIT_SIGINT, EXIT_SIGTERM = 2, 1, 130, 143


class UserError(Exception):
    """A mistake on the command line, in a settings file or in the input data."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, delivered like Ctrl-C so every ``finally`` and ``with`` block runs."""


_received: list[int] = []  # signals seen, so the exit code survives a re-raised interrupt


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    # Ray's blocking calls turn any exception from a signal handler into KeyboardInterrupt:
    # the flag keeps "this was SIGTERM" for the exit code.
    _received.append(signum)
    raise Terminated(f"signal {signum}")


def sigterm_received() -> bool:
    """Whether this process got SIGTERM (even if a library swallowed the exception that
    :func:`install_signal_handlers`' handler raised)."""
    return signal.SIGTERM in _received


def install_signal_handlers() -> None:
    """SIGTERM raises :class:`Terminated`; SIGINT raises KeyboardInterrupt (Python's default).
    Call again after anything that installs its own handlers (``ray.init`` does)."""
    if sys.platform != "win32":
        signal.signal(signal.SIGTERM, _on_sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)


def user_error_types(names: Sequence[str] = ()) -> tuple[type[BaseException], ...]:
    """:class:`UserError` plus the exception types ``names`` (``"module:Class"``) that mean
    "the user gave something wrong". Only modules already imported are consulted: an
    exception of a module that was never imported cannot have been raised (and ``--help``
    stays fast)."""
    types: list[type[BaseException]] = [UserError]
    for name in names:
        module, _, attr = name.partition(":")
        loaded = sys.modules.get(module)
        if loaded is not None and isinstance(getattr(loaded, attr, None), type):
            types.append(getattr(loaded, attr))
    return tuple(types)


def error(message: str) -> None:
    """Print ``error: message`` on stderr."""
    print(f"error: {message}", file=sys.stderr, flush=True)


def _log_internal(prog: str) -> Path:
    path = Path(tempfile.gettempdir()) / f"{prog}-error-{time.strftime('%Y%m%d-%H%M%S')}-" \
        f"{os.getpid()}.log"
    path.write_text(traceback.format_exc())
    return path


def cli_errors(prog: str, user_errors: Sequence[str] = ()) -> Callable[[F], F]:
    """Decorate a typer command with the error path described in the module docstring;
    ``user_errors``: the tool's own user-error types as ``"module:Class"`` names (resolved
    lazily, see :func:`user_error_types`)."""

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def inner(*args: Any, **kwargs: Any) -> Any:
            install_signal_handlers()
            try:
                return fn(*args, **kwargs)
            except typer.Exit:
                raise
            except KeyboardInterrupt as exc:
                if isinstance(exc, Terminated) or sigterm_received():
                    error("terminated (SIGTERM)")
                    raise typer.Exit(EXIT_SIGTERM) from None
                error("interrupted (Ctrl-C)")
                raise typer.Exit(EXIT_SIGINT) from None
            except Exception as exc:
                if isinstance(exc, user_error_types(user_errors)):
                    error(str(exc))
                    raise typer.Exit(EXIT_USER) from None
                log = _log_internal(prog)
                error(f"internal error ({type(exc).__name__}: {exc}); traceback in {log}")
                raise typer.Exit(EXIT_INTERNAL) from None

        return inner  # type: ignore[return-value]

    return wrap


def version_callback(dist: str) -> Callable[[bool], None]:
    """A ``--version`` option callback printing the installed distribution's version."""

    def show(value: bool) -> None:
        if value:
            from importlib.metadata import PackageNotFoundError, version

            try:
                print(version(dist))
            except PackageNotFoundError:
                print("unknown (not installed)")
            raise typer.Exit(0)

    return show
