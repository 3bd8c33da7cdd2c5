"""The compiled kernels' matrix product (numpy's OpenBLAS called from numba) is numpy's."""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from rsc_policy.agent import blas


@njit
def _product(a, trans_a, b, trans_b, c):
    blas.matmul_into(a, trans_a, b, trans_b, c)


@pytest.mark.parametrize(("trans_a", "trans_b"), [(False, False), (False, True),
                                                  (True, False), (True, True)])
@pytest.mark.parametrize("rows", [1, 32, 64])
def test_matmul_into_equals_numpy(trans_a, trans_b, rows):
    rng = np.random.default_rng(rows)
    a = rng.standard_normal((102, rows) if trans_a else (rows, 102)).astype(np.float32)
    b = rng.standard_normal((64, 102) if trans_b else (102, 64)).astype(np.float32)
    c = np.full((rows, 64), np.nan, dtype=np.float32)
    _product(a, trans_a, b, trans_b, c)
    expected = (a.T if trans_a else a) @ (b.T if trans_b else b)
    if blas.BACKEND == "numpy-openblas" and rows > 1:  # the sgemm numpy's matmul calls
        np.testing.assert_array_equal(c, expected)
    else:
        np.testing.assert_allclose(c, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("trans_a", [False, True])
def test_matmul_into_reads_column_slices_in_place(trans_a):
    """A replay batch's ``rows[:, :d]`` / ``rows[:, d:2d]`` (rows contiguous, a longer row
    stride) multiply as their contiguous copies do, bit for bit."""
    rng = np.random.default_rng(7)
    rows = rng.standard_normal((32, 2 * 102 + 3)).astype(np.float32)
    w = rng.standard_normal((64, 102)).astype(np.float32)
    g = rng.standard_normal((32, 64)).astype(np.float32)
    for view in (rows[:, :102], rows[:, 102:204]):
        copy = np.ascontiguousarray(view)
        got = np.full((64, 102) if trans_a else (32, 64), np.nan, dtype=np.float32)
        want = np.full_like(got, np.nan)
        if trans_a:  # the input layer's weight gradient g.T @ s
            _product(g, True, view, False, got)
            _product(g, True, copy, False, want)
        else:  # the input layer's forward s @ w.T
            _product(view, False, w, True, got)
            _product(copy, False, w, True, want)
        np.testing.assert_array_equal(got, want)


def test_backend_is_numpy_openblas_on_numpy_wheels():
    """numpy's PyPI wheels bundle the OpenBLAS the kernels bind to; losing it (a renamed
    symbol in a numpy upgrade) would silently cost ~30 % of the learning step."""
    import glob
    import os

    bundled = glob.glob(os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs",
                                     "libscipy_openblas64_*"))
    if not bundled:
        pytest.skip("this numpy is not a PyPI wheel with a bundled OpenBLAS")
    assert blas.BACKEND == "numpy-openblas"
