"""Walk-forward folds never touch their validation window's future or the test period
(property test), and a small walk-forward run gives a table and a verdict with an interval."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rsc_policy.evaluation.walkforward import bootstrap_interval, make_folds, walk_forward


@settings(max_examples=60, deadline=None)
@given(start=st.dates(min_value=pd.Timestamp("1990-01-01").date(),
                      max_value=pd.Timestamp("2010-01-01").date()),
       years=st.integers(min_value=4, max_value=20),
       train=st.floats(min_value=0.5, max_value=5.0),
       val=st.floats(min_value=0.25, max_value=2.0),
       step=st.floats(min_value=0.25, max_value=2.0),
       test=st.floats(min_value=0.25, max_value=2.0),
       freq=st.sampled_from(["B", "D", "W"]))
def test_folds_never_overlap_their_validation_or_the_test_period(start, years, train, val, step,
                                                                 test, freq):
    dates = pd.date_range(start, periods=int(years * {"B": 252, "D": 365, "W": 52}[freq]),
                          freq=freq)
    try:
        folds, (test_start, test_end) = make_folds(dates, train_years=train,
                                                   validation_years=val, step_years=step,
                                                   test_years=test)
    except ValueError:
        return  # no fold fits: refused, never a bad fold
    assert test_end == dates[-1] and test_start > folds[-1].val_end
    for fold in folds:
        assert fold.train_start <= fold.train_end < fold.val_start <= fold.val_end < test_start
    starts = [f.train_start for f in folds]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)


def test_bootstrap_interval_brackets_the_mean():
    low, high = bootstrap_interval([0.1, 0.3, -0.2, 0.5, 0.05, 0.2])
    assert low < 0.158 < high


def test_small_walk_forward_gives_a_table_and_a_verdict():
    never_invests = lambda cfg, seed: (lambda obs: 0)  # noqa: E731
    result = walk_forward({"data": "sp500", "initial_balance": 100_000.0}, never_invests,
                          seeds=(0, 1), n_random=5, train_years=1.0, validation_years=1.0,
                          step_years=4.0, test_years=2.0)
    table, verdict = result["table"], result["verdict"]
    assert len(table) == 2 * len(result["folds"]) >= 4
    assert (table["agent"] == 0.0).all()  # never invested: Sharpe 0
    assert verdict["test_period"][1].startswith("2018-12")  # the sample's last bars
    assert all(pd.Timestamp(v) < pd.Timestamp(verdict["test_period"][0])
               for v in table["val_end"])
    low, high = verdict["difference_ci95"]
    assert low <= verdict["difference_mean"] <= high
    assert verdict["beats_buy_and_hold"] is (low > 0)


def test_no_fold_fits_is_a_clear_error():
    dates = pd.bdate_range("2020-01-01", periods=300)
    with pytest.raises(ValueError, match="no walk-forward fold fits"):
        make_folds(dates, train_years=5.0)
