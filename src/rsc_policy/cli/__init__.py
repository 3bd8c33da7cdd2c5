"""Command-line tools: rsc-train, rsc-tune, rsc-bench (their error path: :mod:`rsc_cli`;
settings, data periods, Ray start, plots and tracking, shared with :mod:`rsc_policy.tuning`,
live one level up in :mod:`rsc_policy.settings`, :mod:`rsc_policy.common`,
:mod:`rsc_policy.plots` and :mod:`rsc_policy.tracking`)."""

#: Exceptions that are the user's mistake in every rsc_policy tool (one ``error:`` line).
USER_ERRORS = (
    "rsc_db.engine:DatabaseUnavailable", "rsc_db.engine:SchemaVersionMismatch",
    "rsc_env.data:MarketDataError", "rsc_policy.settings:SettingsError",
    "rsc_policy.rllib.checkpoint:CheckpointError",
)
