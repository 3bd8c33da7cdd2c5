"""Settings files accept the names ``--lr`` and space files accept."""

from __future__ import annotations

import pytest

from rsc_policy.settings import SettingsError, load_settings


@pytest.mark.parametrize("text", ["[agent]\nlr = 0.005\n", "lr = 0.005\n",
                                  "agent:\n  lr: 0.005\n"])
def test_lr_is_accepted_in_a_settings_file(tmp_path, text):
    cfg = tmp_path / ("s.yaml" if ":" in text else "s.toml")
    cfg.write_text(text)
    assert load_settings(cfg, {}).agent.learning_rate == 0.005
    # the command line still wins over the file
    assert load_settings(cfg, {"learning_rate": 0.002}).agent.learning_rate == 0.002


def test_lr_and_learning_rate_that_disagree_are_refused(tmp_path):
    cfg = tmp_path / "s.toml"
    cfg.write_text("[agent]\nlr = 0.005\nlearning_rate = 0.001\n")
    with pytest.raises(SettingsError, match="lr = 0.005 and learning_rate = 0.001 name the same"):
        load_settings(cfg, {})
    cfg.write_text("[agent]\nlr = -1.0\n")
    with pytest.raises(SettingsError, match="learning_rate: Input should be greater than 0"):
        load_settings(cfg, {})
