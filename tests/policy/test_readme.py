"""The README's RLlib + Tune block runs exactly as printed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"

pytestmark = pytest.mark.slow


def _block(heading: str) -> str:
    text = README.read_text()
    section = text[text.index(heading):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_rllib_and_tune_block_runs_as_printed(ray_local, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code = _block("## Using StrategyAgentAlgo in your own RLlib code")
    exec(compile(code, str(README), "exec"), {"__name__": "readme"})  # noqa: S102
    out = capsys.readouterr().out
    steps, sharpe, bh_sharpe = re.search(r"^(\d+) (\S+) (\S+)$", out, re.M).groups()
    assert float(sharpe) == float(sharpe)  # a number (not NaN)
    assert int(steps) >= 3 * 256 and float(bh_sharpe) == float(bh_sharpe)
    assert float(re.findall(r"^(0\.000?3|0\.001)$", out, re.M)[-1]) in (1e-3, 3e-4)


def test_readme_population_block_runs_as_printed(ray_local, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code = _block("## Populations: many agents in one StrategyAgentAlgo")
    exec(compile(code, str(README), "exec"), {"__name__": "readme"})  # noqa: S102
    out = capsys.readouterr().out
    assert int(re.search(r"^(\d+) member env steps$", out, re.M).group(1)) >= 5 * 3 * 64
    sharpes = re.findall(r"^(\S+) (\S+)$", out, re.M)
    assert [n for n, _ in sharpes][-5:] == ["lr0.001-s0", "lr0.001-s1", "lr0.0003-s0",
                                            "lr0.0003-s1", "longer-period"]


def test_readme_train_population_block_runs_as_printed(capsys):
    """The README's Ray-free population block: eight members, each its own sequential run."""
    from rsc_policy.agent.sequential import train_sequential

    code = _block("Without Ray, `rsc_policy.agent.population.train_population`")
    exec(compile(code, str(README), "exec"), {"__name__": "readme"})  # noqa: S102
    printed = [float(x) for x in re.findall(r"-?\d+\.\d+", capsys.readouterr().out)]
    assert len(printed) == 8 and len(set(printed)) > 1
    alone = train_sequential({"data": "sp500", "start": "2010-01-01", "end": "2014-12-31",
                              "position_sizing_method": "all_in"},
                             env_steps=2000, seed=0, learning_rate=1e-3)
    assert printed[0] == round(float(alone.rewards.sum()), 3)
