"""The one error path of rsc's command-line tools (``rsc-train``, ``rsc-tune``, ``rsc-bench``,
``rsc-db``).

* a user mistake: one line ``error: ...`` on stderr, exit code 2;
* Ctrl-C: exit 130; SIGTERM: exit 143 (no traceback either way);
* with ``stack_dump=True`` (rsc-train), ``kill -USR1`` prints every thread's stack on stderr
  (where a stuck run is; Ray Tune keeps SIGUSR1 as its own stop signal, so rsc-tune does not);
* anything else is a bug: one line on stderr naming the error and a log file that holds the
  traceback, exit code 1.
"""

from __future__ import annotations

import faulthandler
import functools
import os
import signal
import sys
import tempfile
import threading
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


def _on_signal(signum: int, frame: FrameType | None) -> None:
    # Ray's blocking calls turn any exception from a signal handler into KeyboardInterrupt,
    # and one raised inside a destructor is swallowed: the record keeps the signal for
    # :func:`raise_if_interrupted` (which raises it now) and the exit code.
    _received.append(signum)
    raise_if_interrupted()


def sigterm_received() -> bool:
    """Whether this process got SIGTERM (even if a library swallowed the exception that
    :func:`install_signal_handlers`' handler raised)."""
    return signal.SIGTERM in _received


def raise_if_interrupted() -> None:
    """Raise again the SIGTERM/SIGINT this process received, for a loop to call between its
    steps: the handler's exception can land where Python swallows it (a ``__del__`` or a
    garbage-collector callback runs at that bytecode; CI once saw ``rsc-train`` train on
    after SIGTERM), and the loop must stop all the same."""
    if signal.SIGTERM in _received:
        raise Terminated(f"signal {signal.SIGTERM}")
    if signal.SIGINT in _received:
        raise KeyboardInterrupt


def _unraisable(hook: Callable[[Any], None]) -> Callable[[Any], None]:
    def quiet(info: Any) -> None:
        # an interrupt swallowed in a destructor: recorded, raised again by the loop
        if not isinstance(info.exc_value, KeyboardInterrupt):
            hook(info)

    quiet.rsc_quiet = True  # type: ignore[attr-defined]
    return quiet


def install_signal_handlers() -> None:
    """SIGTERM raises :class:`Terminated`, SIGINT KeyboardInterrupt, both recorded (see
    :func:`raise_if_interrupted`); an interrupt swallowed in a destructor prints no
    "Exception ignored" traceback. Call again after anything that installs its own handlers
    (``ray.init`` does)."""
    if sys.platform != "win32":
        signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    if not getattr(sys.unraisablehook, "rsc_quiet", False):
        sys.unraisablehook = _unraisable(sys.unraisablehook)


def _handlers() -> tuple[Any, Any, Any]:
    sigterm = signal.getsignal(signal.SIGTERM) if sys.platform != "win32" else None
    return signal.getsignal(signal.SIGINT), sigterm, sys.unraisablehook


def _restore(saved: tuple[Any, Any, Any]) -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    sigint, sigterm, hook = saved
    if sigint is not None:
        signal.signal(signal.SIGINT, sigint)
    if sigterm is not None:
        signal.signal(signal.SIGTERM, sigterm)
    sys.unraisablehook = hook


def _stack_dump_on_sigusr1() -> bool:
    """``kill -USR1 <pid>`` prints every thread's Python stack on stderr (a run that seems
    stuck shows where it is); True if registered here."""
    if sys.platform == "win32" or threading.current_thread() is not threading.main_thread():
        return False
    try:
        faulthandler.register(signal.SIGUSR1, all_threads=True)
    except (OSError, ValueError, AttributeError):  # stderr without a file (captured)
        return False
    return True


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


def cli_errors(prog: str, user_errors: Sequence[str] = (), *, stack_dump: bool = False
               ) -> Callable[[F], F]:
    """Decorate a typer command with the error path described in the module docstring;
    ``user_errors``: the tool's own user-error types as ``"module:Class"`` names (resolved
    lazily, see :func:`user_error_types`); ``stack_dump``: SIGUSR1 prints every thread's
    stack."""

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def inner(*args: Any, **kwargs: Any) -> Any:
            saved = _handlers()
            _received.clear()  # a new command has seen no signal yet
            install_signal_handlers()
            dump = stack_dump and _stack_dump_on_sigusr1()
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
            finally:
                _restore(saved)  # in-process callers (tests, notebooks) get theirs back
                if dump:
                    faulthandler.unregister(signal.SIGUSR1)

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
