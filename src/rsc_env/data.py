"""Loading OHLCV price files into clean, validated DataFrames.

Every defect in a user's file ends in one :class:`MarketDataError` that names the file and the
problem (column, row), never in a traceback from deep inside pandas.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

OHLCV_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close", "volume")
PRICE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close")
_DATE_CANDIDATES = ("date", "datetime", "timestamp", "time")
_FALLBACK_DATE_FORMATS = ("%m/%d/%Y", "%m/%d/%Y %H:%M", "%m/%d/%Y %H:%M:%S", "%d/%m/%Y",
                          "%d/%m/%Y %H:%M", "%d.%m.%Y")
"""Tried in turn when no format is given; a file that more than one of them reads, with
different dates, is refused as ambiguous."""

SAMPLES: dict[str, str] = {"sp500": "sp500_daily_1999_2018.csv.gz"}
"""Bundled real daily series: name -> file inside ``rsc_env/samples``."""


class MarketDataError(ValueError):
    """A price file or table that cannot be used, with the file and the problem named."""


def absolute_source(data: str) -> str:
    """``data`` as every process reads it: a bundled sample name unchanged, a path made
    absolute (Ray Tune runs each trial in its own directory, and remote runners may start
    elsewhere, so a relative path would name no file there)."""
    if data in SAMPLES:
        return data
    return str(Path(data).expanduser().resolve())


def _describe_rows(labels: pd.Index | np.ndarray | list, limit: int = 5) -> str:
    shown = ", ".join(str(x) for x in list(labels)[:limit])
    more = len(labels) - limit
    return shown + (f" (+{more} more)" if more > 0 else "")


def _label(x: object) -> str:
    return str(x.date()) if isinstance(x, pd.Timestamp) and x == x.normalize() else str(x)


def _parse_dates(raw: pd.Series, source: str, column: str, date_format: str | None) -> pd.Series:
    """Parse a date column: the given format, else ISO 8601, else common US/EU formats."""
    formats = [date_format] if date_format else ["ISO8601", *_FALLBACK_DATE_FORMATS]
    readings = {}
    for fmt in formats:
        parsed = pd.to_datetime(raw, format=fmt, errors="coerce")
        if parsed.notna().all():
            if date_format or fmt == "ISO8601":
                return parsed
            readings[fmt] = parsed
    distinct: dict[str, pd.Series] = {}
    for fmt, p in readings.items():
        if not any(p.equals(q) for q in distinct.values()):
            distinct[fmt] = p
    ascending = {f: p for f, p in distinct.items() if p.is_monotonic_increasing}
    if len(distinct) == 1:
        return next(iter(distinct.values()))
    if len(ascending) == 1:  # e.g. a d/m file whose m/d reading jumps back and forth
        return next(iter(ascending.values()))
    if len(distinct) > 1:
        first = raw.iloc[0]
        raise MarketDataError(
            f"{source}: the dates in column {column!r} are ambiguous: they read as "
            f"{' and as '.join(distinct)} (e.g. {first!r}); give the format with "
            "--date-format (date_format=...), e.g. %d/%m/%Y")
    # Report rows that the most successful format could not read.
    best = max(
        (pd.to_datetime(raw, format=fmt, errors="coerce") for fmt in formats),
        key=lambda s: int(s.notna().sum()),
    )
    bad = best[best.isna()].index
    rows = _describe_rows([f"row {i + 2} ({raw.iloc[i]!r})" for i in bad])
    tried = ", ".join(formats)
    raise MarketDataError(
        f"{source}: cannot parse dates in column {column!r} at {rows}; tried formats {tried} "
        "(give the format: --date-format / date_format=...)"
    )


def validate_ohlcv(
    df: pd.DataFrame, source: str = "<DataFrame>", *, first_line: int | None = None
) -> pd.DataFrame:
    """Check an OHLCV table indexed by date; return it as float64 with lower-case columns.

    Raises :class:`MarketDataError` for missing columns, duplicate or unsorted dates,
    non-finite (NaN, inf, -inf) or non-numeric values, non-positive prices or negative volume.
    ``first_line``: the file line of the table's first row (messages then name file lines;
    otherwise 0-based row positions).
    """
    missing = [c for c in OHLCV_COLUMNS if c not in df.columns]
    if missing:
        raise MarketDataError(
            f"{source}: missing column(s) {missing}; found {list(map(str, df.columns))}"
        )
    if not isinstance(df.index, pd.DatetimeIndex):
        raise MarketDataError(f"{source}: the table must be indexed by date (a DatetimeIndex)")
    out = df.loc[:, list(OHLCV_COLUMNS)].copy()
    for col in OHLCV_COLUMNS:
        numeric = pd.to_numeric(out[col], errors="coerce")
        bad = out.index[numeric.isna() & out[col].notna()]
        if len(bad):
            raise MarketDataError(
                f"{source}: non-numeric values in column {col!r} at {_describe_rows(bad)}"
            )
        out[col] = numeric.astype("float64")
    dup = out.index[out.index.duplicated(keep=False)]
    if len(dup):
        raise MarketDataError(f"{source}: duplicate dates {_describe_rows(dup.unique())}")
    order = np.asarray(out.index)
    unsorted = np.flatnonzero(order[1:] < order[:-1]) + 1
    if len(unsorted):
        where = [f"{out.index[i].date()} after {out.index[i - 1].date()}" for i in unsorted]
        raise MarketDataError(
            f"{source}: dates are not in ascending order: {_describe_rows(where)}"
        )
    for col in OHLCV_COLUMNS:
        values = out[col].to_numpy()
        bad = np.flatnonzero(~np.isfinite(values))
        if len(bad):
            first = int(bad[0])
            kinds = {"NaN": int(np.isnan(values[bad]).sum()),
                     "inf": int(np.isposinf(values[bad]).sum()),
                     "-inf": int(np.isneginf(values[bad]).sum())}
            what = ", ".join(f"{n} {k}" for k, n in kinds.items() if n)
            where = (f"line {first + first_line}" if first_line is not None
                     else f"row {first}")
            raise MarketDataError(
                f"{source}: non-finite values in column {col!r}: {len(bad)} row(s) ({what}), "
                f"first at {where} ({_label(out.index[first])})"
                + (f"; at {_describe_rows([_label(x) for x in out.index[bad]])}"
                   if len(bad) > 1 else "")
            )
    for col in PRICE_COLUMNS:
        bad = out.index[out[col] <= 0]
        if len(bad):
            raise MarketDataError(
                f"{source}: non-positive price in column {col!r} at {_describe_rows(bad)}"
            )
    neg = out.index[out["volume"] < 0]
    if len(neg):
        raise MarketDataError(f"{source}: negative volume at {_describe_rows(neg)}")
    out.index.name = "date"
    return out


def load_ohlcv(
    path: str | Path, *, date_column: str | None = None, date_format: str | None = None
) -> pd.DataFrame:
    """Read a daily or intraday OHLCV CSV into a validated DataFrame.

    Accepts Yahoo-style ``Date,Open,High,Low,Close,Adj Close,Volume`` files and any
    capitalisation of those names; dates in ISO 8601, ``m/d/YYYY`` or ``date_format``.

    Returns:
        A float64 DataFrame with a ``DatetimeIndex`` named ``date`` and columns
        ``open, high, low, close, volume`` (other columns are dropped).
    """
    path = Path(path)
    source = str(path)
    if path.is_dir():
        raise MarketDataError(f"{source}: is a directory, not a CSV file")
    if not path.is_file():
        raise MarketDataError(f"{source}: no such file")
    try:
        raw = pd.read_csv(path, compression="infer")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise MarketDataError(f"{source}: not a readable CSV file ({exc})") from None
    by_lower = {str(c).strip().lower(): c for c in raw.columns}
    if date_column is None:
        found = [by_lower[c] for c in _DATE_CANDIDATES if c in by_lower]
        if not found:
            raise MarketDataError(
                f"{source}: no date column (looked for {list(_DATE_CANDIDATES)}; "
                f"found {list(map(str, raw.columns))}; pass date_column=...)"
            )
        date_column = found[0]
    elif date_column not in raw.columns:
        if date_column.lower() not in by_lower:
            raise MarketDataError(f"{source}: date column {date_column!r} not found")
        date_column = by_lower[date_column.lower()]
    if raw.empty:
        raise MarketDataError(f"{source}: the file has a header but no rows")
    dates = _parse_dates(raw[date_column].astype(str), source, str(date_column), date_format)
    renamed = {by_lower[c]: c for c in OHLCV_COLUMNS if c in by_lower}
    table = raw.rename(columns=renamed)
    table.index = pd.DatetimeIndex(dates)
    # Row numbers in messages are file lines: keep them reachable through the index labels.
    return validate_ohlcv(table, source, first_line=2)


def load_sample(name: str = "sp500") -> pd.DataFrame:
    """Return a bundled real daily series (``"sp500"``: S&P 500 index, 1999-2018)."""
    if name not in SAMPLES:
        raise MarketDataError(f"unknown sample {name!r}; bundled samples: {sorted(SAMPLES)}")
    ref = resources.files("rsc_env") / "samples" / SAMPLES[name]
    with resources.as_file(ref) as path:
        return load_ohlcv(path)


def split_by_date(
    df: pd.DataFrame, split: str | pd.Timestamp, *, end: str | pd.Timestamp | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split a date-indexed table into (train: dates < split, validation: split <= dates <= end)."""
    cut = pd.Timestamp(split)
    train = df.loc[df.index < cut]
    val = df.loc[df.index >= cut]
    if end is not None:
        val = val.loc[val.index <= pd.Timestamp(end)]
    if train.empty or val.empty:
        raise MarketDataError(
            f"split at {cut.date()} leaves an empty period: data runs "
            f"{df.index[0].date()} to {df.index[-1].date()}"
        )
    return train, val
