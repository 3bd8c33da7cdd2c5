"""pyproject's filterwarnings: a DeprecationWarning raised from rsc's own code fails the
test; one raised inside a library stays a warning."""

from __future__ import annotations

import warnings

import pytest


def _warn_from(module: str, category: type[Warning]) -> None:
    code = compile("import warnings\nwarnings.warn('old API', category)", "<fake>", "exec")
    exec(code, {"__name__": module, "category": category})


@pytest.mark.parametrize("module", ["rsc_policy.rllib.config", "rsc_env", "rsc_db.logger",
                                    "rsc_cli.errors"])
def test_deprecation_from_rsc_code_is_an_error(module):
    with pytest.raises(DeprecationWarning, match="old API"):
        _warn_from(module, DeprecationWarning)


def test_deprecation_from_a_library_is_only_a_warning():
    # the session's filters as they are (pytest.warns would reset them): nothing raises
    with warnings.catch_warnings(record=True):
        _warn_from("ray.rllib.somewhere", DeprecationWarning)
        _warn_from("rsc_other_project", DeprecationWarning)  # not one of rsc's packages
        _warn_from("rsc_policy.x", UserWarning)  # other categories are untouched
