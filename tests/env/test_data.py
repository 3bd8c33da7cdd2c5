"""Market-data loading: every defect ends in one MarketDataError naming the file and problem."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rsc_env import MarketDataError, load_ohlcv, load_sample, prepare_market_data, split_by_date

HEADER = "Date,Open,High,Low,Close,Adj Close,Volume\n"
ROWS = [
    "2020-01-02,10,11,9,10.5,10.5,1000",
    "2020-01-03,10.5,11.5,10,11,11,1100",
    "2020-01-06,11,12,10.5,11.5,11.5,900",
]


def write(tmp_path: Path, text: str, name: str = "prices.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_load_yahoo_style_iso(tmp_path):
    df = load_ohlcv(write(tmp_path, HEADER + "\n".join(ROWS)))
    assert list(df.columns) == ["open", "high", "low", "close", "volume"]
    assert isinstance(df.index, pd.DatetimeIndex) and df.index.name == "date"
    assert df["close"].tolist() == [10.5, 11.0, 11.5]


def test_load_us_dates_and_other_capitalisation(tmp_path):
    text = "DATE,OPEN,HIGH,LOW,CLOSE,VOLUME\n1/2/2020,1,2,1,2,5\n1/13/2020,2,3,2,3,6\n"
    df = load_ohlcv(write(tmp_path, text))
    assert df.index[1] == pd.Timestamp("2020-01-13")


def test_day_month_order_is_read_from_the_dates_or_refused_as_ambiguous(tmp_path):
    eu = "Date,Open,High,Low,Close,Volume\n2/1/2020,1,2,1,2,5\n13/1/2020,2,3,2,3,6\n"
    assert load_ohlcv(write(tmp_path, eu)).index[1] == pd.Timestamp("2020-01-13")
    # 3/1 then 2/2: ascending only as d/m (as m/d it would go from March back to February)
    sorted_eu = "Date,Open,High,Low,Close,Volume\n3/1/2020,1,2,1,2,5\n2/2/2020,2,3,2,3,6\n"
    assert load_ohlcv(write(tmp_path, sorted_eu)).index[0] == pd.Timestamp("2020-01-03")
    both = "Date,Open,High,Low,Close,Volume\n1/2/2020,1,2,1,2,5\n1/3/2020,2,3,2,3,6\n"
    with pytest.raises(MarketDataError, match="ambiguous.*--date-format"):
        load_ohlcv(write(tmp_path, both))
    assert load_ohlcv(write(tmp_path, both), date_format="%d/%m/%Y").index[1] == \
        pd.Timestamp("2020-03-01")


def test_load_given_format_and_column(tmp_path):
    text = "When,open,high,low,close,volume\n02.01.2020,1,2,1,2,5\n03.01.2020,2,3,2,3,6\n"
    df = load_ohlcv(write(tmp_path, text), date_column="When", date_format="%d.%m.%Y")
    assert df.index[0] == pd.Timestamp("2020-01-02")


def test_load_intraday(tmp_path):
    text = (
        "Datetime,Open,High,Low,Close,Volume\n"
        "2020-01-02 09:30,1,2,1,2,5\n2020-01-02 09:31,2,3,2,3,6\n"
    )
    df = load_ohlcv(write(tmp_path, text))
    assert df.index[1] == pd.Timestamp("2020-01-02 09:31")


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("Date,Open,High,Low,Volume\n2020-01-02,1,2,1,5\n", "missing column(s) ['close']"),
        (HEADER + "2020-01-02,1,2,1,2,2,5\nnot-a-date,1,2,1,2,2,5\n", "cannot parse dates"),
        (HEADER + ROWS[0] + "\n" + ROWS[0] + "\n", "duplicate dates 2020-01-02"),
        (HEADER + ROWS[1] + "\n" + ROWS[0] + "\n", "not in ascending order: 2020-01-02 after"),
        (HEADER + "2020-01-02,1,2,1,,2,5\n",
         "non-finite values in column 'close': 1 row(s) (1 NaN), first at line 2 (2020-01-02)"),
        (HEADER + "2020-01-02,1,2,0,2,2,5\n", "non-positive price in column 'low'"),
        (HEADER + "2020-01-02,1,2,1,abc,2,5\n", "non-numeric values in column 'close'"),
        (HEADER, "header but no rows"),
        ("Open,High\n1,2\n", "no date column"),
    ],
)
def test_bad_csv_gets_specific_error(tmp_path, text, needle):
    path = write(tmp_path, text, "bad.csv")
    with pytest.raises(MarketDataError) as err:
        load_ohlcv(path)
    assert needle in str(err.value)
    assert str(path) in str(err.value)


def test_unparseable_dates_name_the_row(tmp_path):
    path = write(tmp_path, HEADER + "2020-01-02,1,2,1,2,2,5\n2020-13-45,1,2,1,2,2,5\n")
    with pytest.raises(MarketDataError, match=r"row 3 \('2020-13-45'\)"):
        load_ohlcv(path)


def test_missing_file(tmp_path):
    with pytest.raises(MarketDataError, match="no such file"):
        load_ohlcv(tmp_path / "nope.csv")


def test_too_few_rows_for_indicators(tmp_path):
    lines = [f"2020-01-{d:02d},1,2,1,2,2,5" for d in range(1, 21)]
    path = write(tmp_path, HEADER + "\n".join(lines))
    with pytest.raises(MarketDataError, match="too few"):
        prepare_market_data(path)


def test_date_range_with_too_few_rows():
    with pytest.raises(MarketDataError, match="usable rows between"):
        prepare_market_data("sp500", start="2030-01-01")
    with pytest.raises(MarketDataError, match="is after end"):
        prepare_market_data("sp500", start="2016-01-01", end="2015-01-01")


def test_bundled_sample_and_split():
    df = load_sample("sp500")
    assert len(df) == 5031 and df.index.is_monotonic_increasing
    assert np.isfinite(df.to_numpy()).all()
    train, val = split_by_date(df, "2017-01-01", end="2017-12-31")
    assert train.index[-1] < pd.Timestamp("2017-01-01") <= val.index[0]
    assert val.index[-1] <= pd.Timestamp("2017-12-31")
    with pytest.raises(MarketDataError, match="empty period"):
        split_by_date(df, "1990-01-01")
    with pytest.raises(MarketDataError, match="unknown sample"):
        load_sample("nasdaq")


def test_googl_file_loads(googl_csv):
    df = load_ohlcv(googl_csv)
    assert len(df) == 2335 and df.index[0] == pd.Timestamp("2009-05-22")


def _googl_with(tmp_path: Path, googl_csv: Path, column: str, rows: dict[int, str]) -> Path:
    """The real GOOGL file with some cells of ``column`` replaced (row i = file line i + 2)."""
    df = pd.read_csv(googl_csv)
    df[column] = df[column].astype(object)
    for i, value in rows.items():
        df.loc[i, column] = value
    path = tmp_path / f"googl_{column.lower()}_nonfinite.csv"
    df.to_csv(path, index=False)
    return path


@pytest.mark.parametrize(("column", "rows", "needle"), [
    ("Close", {1000: "inf"}, "non-finite values in column 'close': 1 row(s) (1 inf), "
                             "first at line 1002 (2013-05-14)"),
    ("Volume", {1500: "inf", 1600: "-inf", 1601: "inf"},
     "non-finite values in column 'volume': 3 row(s) (2 inf, 1 -inf), first at line 1502"),
])
def test_non_finite_ohlcv_is_one_error_naming_file_column_first_row_and_count(
        tmp_path, googl_csv, column, rows, needle):
    path = _googl_with(tmp_path, googl_csv, column, rows)
    with pytest.raises(MarketDataError) as err:
        load_ohlcv(path)
    assert str(path) in str(err.value) and needle in str(err.value), str(err.value)
    # Also through the environment's loader with a period that ends before the bad value:
    # nothing is silently cut (the whole file is validated first).
    with pytest.raises(MarketDataError, match="non-finite"):
        prepare_market_data(path, start="2010-01-01", end="2011-12-31")


def test_inf_in_a_prepared_table_is_refused_by_the_env(googl_csv):
    from rsc_env import TradingEnv

    table = prepare_market_data(googl_csv)
    table.iloc[50, table.columns.get_loc("volume")] = np.inf
    with pytest.raises(ValueError, match="non-finite values \\(inf\\) in column 'volume'"):
        TradingEnv({"df": table})
