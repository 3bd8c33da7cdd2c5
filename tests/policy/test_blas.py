"""The compiled kernels' matrix product (numpy's OpenBLAS called from numba) is numpy's."""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from rsc_policy.agent import blas, kernels


@njit
def _product(a, trans_a, b, trans_b, c):
    blas.matmul_into(a, trans_a, b, trans_b, c)


@njit
def _run(fn, *args):
    """Call a compiled-only (inlined) kernel function from Python."""
    fn(*args)


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


needs_native = pytest.mark.skipif(not blas.native.AVAILABLE,
                                  reason="step.c not built here (no AVX2/FMA or no compiler)")


@pytest.mark.parametrize("kernel", ["blas", pytest.param("step.c", marks=needs_native)])
@pytest.mark.parametrize("trans_a", [False, True])
def test_products_read_column_slices_in_place(kernel, trans_a):
    """A replay batch's ``rows[:, :d]`` / ``rows[:, d:2d]`` (rows contiguous, a longer row
    stride) multiply as their contiguous copies do, bit for bit (BLAS and step.c)."""
    rng = np.random.default_rng(7)
    rows = rng.standard_normal((32, 2 * 102 + 3)).astype(np.float32)
    w = rng.standard_normal((64, 102)).astype(np.float32)
    g = rng.standard_normal((32, 64)).astype(np.float32)

    def product(x, out):
        if trans_a:  # the input layer's weight gradient g.T @ s
            if kernel == "blas":
                _product(g, True, x, False, out)
            else:
                _run(blas.native_gemm_into, g, True, x, out)
        elif kernel == "blas":  # the input layer's forward s @ w.T
            _product(x, False, w, True, out)
        else:
            _run(blas.native_gemm_into, x, False, np.ascontiguousarray(w.T), out)

    for view in (rows[:, :102], rows[:, 102:204]):
        got = np.full((64, 102) if trans_a else (32, 64), np.nan, dtype=np.float32)
        want = np.full_like(got, np.nan)
        product(view, got)
        product(np.ascontiguousarray(view), want)
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


# ------------------------------------------------------------- step.c (blas.gemm_into)

def _fma_chain(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` with every element summed over k in order, each step ``acc + a*b`` rounded
    once to float32 (a float32 product is exact in float64): what one FMA chain gives."""
    acc = np.zeros((a.shape[0], b.shape[1]), dtype=np.float32)
    for k in range(a.shape[1]):
        acc = (acc.astype(np.float64)
               + np.outer(a[:, k].astype(np.float64), b[k].astype(np.float64))
               ).astype(np.float32)
    return acc


@needs_native
@pytest.mark.parametrize("trans_a", [False, True])
@pytest.mark.parametrize(("m", "k", "n"), [(32, 102, 64), (32, 64, 3), (3, 32, 64),
                                           (102, 32, 64), (7, 13, 19), (1, 5, 8)])
def test_native_gemm_is_one_fma_chain_per_element(trans_a, m, k, n):
    """Every row and column tail (rows not a multiple of 4, columns of 8 or 16) sums in the
    documented order, so the step's figures do not depend on where an element falls."""
    rng = np.random.default_rng(m * 1000 + k * 10 + n)
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    c = np.full((m, n), np.nan, dtype=np.float32)
    _run(blas.native_gemm_into, a, trans_a, b, c)
    op_a = np.ascontiguousarray(a.T) if trans_a else a
    np.testing.assert_array_equal(c, _fma_chain(op_a, b))
    via_blas = np.full_like(c, np.nan)
    _run(blas.blas_gemm_into, a, trans_a, b, via_blas)  # the fallback computes the same product
    np.testing.assert_allclose(c, via_blas, rtol=1e-5, atol=1e-5)


@needs_native
@pytest.mark.parametrize("shape", [(64, 102), (64, 64), (3, 64), (13, 21), (8, 8)])
def test_native_transpose(shape):
    w = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    wt = np.full(shape[::-1], np.nan, dtype=np.float32)
    _run(blas.native_transpose_into, w, wt)
    np.testing.assert_array_equal(wt, w.T)


@needs_native
@pytest.mark.parametrize("relu", [True, False])
@pytest.mark.parametrize(("m", "k", "n"), [(32, 102, 64), (32, 64, 3), (7, 13, 19)])
def test_native_dense_adds_bias_then_relu_as_it_stores(relu, m, k, n):
    """The product's chain, then one rounding for ``+ bias``, then ReLU: what the loop after
    a plain product gives, bit for bit; a NaN stays a NaN through the ReLU."""
    rng = np.random.default_rng(m + k + n)
    x = rng.standard_normal((m, k)).astype(np.float32)
    x[0, 0] = np.nan if relu else x[0, 0]
    wt = rng.standard_normal((k, n)).astype(np.float32)
    b = rng.standard_normal(n).astype(np.float32)
    got = np.full((m, n), -7.0, dtype=np.float32)
    _run(blas.native_dense_into, x, wt, b, got, relu)
    want = _fma_chain(x, wt) + b
    if relu:
        want = np.where(np.isnan(want), want, np.maximum(want, np.float32(0.0)))
        assert np.isnan(got[0]).all()
    np.testing.assert_array_equal(got, want)
    fallback = np.full_like(got, -7.0)
    _run(blas.blas_dense_into, x, wt, b, fallback, relu)
    np.testing.assert_allclose(got, fallback, rtol=1e-5, atol=1e-5)


@needs_native
@pytest.mark.parametrize("size", [10947, 13, 8])
def test_native_adam_equals_the_loops_bit_for_bit(size):
    """step.c's one-pass Adam does torch's float32 operations in the loops' order (tails of
    fewer than 8 weights included), over several steps of moments that build up."""
    rng = np.random.default_rng(size)
    c = np.array([0.1, 0.999, 1 - 0.999, 0.31, 1e-8, 1e-3], dtype=np.float32)
    a = [(rng.standard_normal(size) * 0.1).astype(np.float32) for _ in range(4)]
    a[3] = np.abs(a[3])
    b = [x.copy() for x in a]
    for _ in range(5):
        g = (rng.standard_normal(size) * 0.05).astype(np.float32)
        a[1][:] = g
        b[1][:] = g
        _run(kernels.native_adam, *a, np.empty(size, np.float32), *c)
        _run(kernels.loop_adam, *b, np.empty(size, np.float32), *c)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)


def _eight_lane_dot(x: np.ndarray, w_row: np.ndarray) -> np.float32:
    """step.c's acting dot product: lane l chains k = l, l + 8, ... (one rounding per FMA),
    then the lanes are added (l, l + 4), then (0, 2) and (1, 3), then the two."""
    lanes = np.zeros(8, dtype=np.float32)
    for k in range(len(x)):
        lanes[k % 8] = np.float32(np.float64(lanes[k % 8])
                                  + np.float64(x[k]) * np.float64(w_row[k]))
    s4 = lanes[:4] + lanes[4:]
    return np.float32((s4[0] + s4[2]) + (s4[1] + s4[3]))


@needs_native
@pytest.mark.parametrize("relu", [True, False])
@pytest.mark.parametrize(("k", "n"), [(102, 64), (64, 64), (64, 3), (13, 5), (8, 7)])
def test_native_dense_row_sums_in_its_fixed_order(relu, k, n):
    """One observation through a layer (acting): the documented order, bit for bit, for
    every k tail and output count, bias then ReLU; the vector-product fallback agrees to
    float32 rounding."""
    rng = np.random.default_rng(k * 100 + n)
    x = rng.standard_normal((1, k)).astype(np.float32)
    w = rng.standard_normal((n, k)).astype(np.float32)
    b = rng.standard_normal(n).astype(np.float32)
    got = np.full((1, n), np.nan, dtype=np.float32)
    _run(blas.native_dense_row_into, x, w, b, got, relu)
    want = np.array([_eight_lane_dot(x[0], w[j]) + b[j] for j in range(n)], dtype=np.float32)
    if relu:
        want = np.maximum(want, np.float32(0.0))
    np.testing.assert_array_equal(got[0], want)
    fallback = np.full_like(got, np.nan)
    _run(blas.blas_dense_row_into, x, w, b, fallback, relu)
    np.testing.assert_allclose(got, fallback, rtol=1e-5, atol=1e-5)


@needs_native
def test_step_c_builds_once_per_source_and_drops_older_builds(tmp_path):
    """A library per source digest, next to the source; reused while the source is
    unchanged; an edit builds a new one and removes the old."""
    from rsc_policy.agent import native

    source = tmp_path / "step.c"
    source.write_text(native.SOURCE.read_text())
    first = native._build(source)
    assert first is not None and first.parent == tmp_path / "__pycache__"
    built = first.stat().st_mtime_ns
    assert native._build(source) == first and first.stat().st_mtime_ns == built
    source.write_text(native.SOURCE.read_text() + "\n/* edited */\n")
    second = native._build(source)
    assert second is not None and second != first and second.is_file()
    assert sorted(p.name for p in (tmp_path / "__pycache__").iterdir()) == [second.name]
