"""Plumbing shared by rsc's command-line tools (``rsc-train``, ``rsc-tune``, ``rsc-bench``,
``rsc-db``): the one error path (:mod:`rsc_cli.errors`).

It sits below ``rsc_env``, ``rsc_db`` and ``rsc_policy`` and imports none of them (only
typer), so every tool can use it: ``rsc_db`` must not import ``rsc_policy``, and the CLIs live
in both. Each tool names its own user-error types when it applies :func:`cli_errors`.
"""

from rsc_cli.errors import (
    UserError,
    cli_errors,
    error,
    install_signal_handlers,
    version_callback,
)

__all__ = ["UserError", "cli_errors", "error", "install_signal_handlers", "version_callback"]
