"""``c = op(a) @ op(b)`` for the compiled kernels: numpy's own OpenBLAS, called from numba;
below it, the numba bindings of ``step.c`` (:mod:`rsc_policy.agent.native`) and their BLAS
and loop fallbacks.

numba's ``np.dot`` calls the BLAS that scipy bundles (OpenBLAS 0.3.30 here); numpy's wheel
bundles its own (``libscipy_openblas64_``, 0.3.31), whose ``cblas_sgemm`` is ~2 us faster per
call on the learning step's small products. Measured here, one thread, the step's ten
products (batch 32, 102-dim observation, 64-64 net): 51 us through ``np.dot`` in numba,
36 us through this binding; the 32x102x64 product alone 8.5 us against 6.1 us
(``bench/bench_learner.py`` times the whole step). The symbol is bound by name when the
library is loaded into LLVM's process-wide symbol table, so numba's on-disk cache stays
valid. Where numpy ships no such library (another numpy build), :func:`matmul_into` is
``np.dot``. Both write the same product into ``c``; which one a process uses is
:data:`BACKEND`.
"""

from __future__ import annotations

import ctypes
import glob
import os

import llvmlite.binding as llvm
import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

_SYMBOL = "scipy_cblas_sgemm64_"  # ILP64 CBLAS of numpy's bundled OpenBLAS
_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112


def _numpy_openblas() -> str | None:
    """Path of numpy's bundled OpenBLAS if it exports :data:`_SYMBOL`, else None."""
    root = os.path.dirname(np.__file__)
    for pattern in (os.path.join(root, os.pardir, "numpy.libs", "libscipy_openblas64_*"),
                    os.path.join(root, ".dylibs", "libscipy_openblas64_*")):
        for path in sorted(glob.glob(pattern)):
            try:
                if hasattr(ctypes.CDLL(path), _SYMBOL):
                    return os.path.abspath(path)
            except OSError:
                continue
    return None


_LIBRARY = _numpy_openblas()
if _LIBRARY is not None:
    llvm.load_library_permanently(_LIBRARY)
BACKEND = "numpy-openblas" if _LIBRARY is not None else "numba-np.dot"


@intrinsic
def _sgemm(typingctx, trans_a, trans_b, m, n, k, a, lda, b, ldb, c, ldc):
    """``cblas_sgemm(RowMajor, ta, tb, m, n, k, 1, a, lda, b, ldb, 0, c, ldc)``."""
    sig = types.void(trans_a, trans_b, m, n, k, a, lda, b, ldb, c, ldc)

    def codegen(context, builder, signature, args):
        i32, i64, f32 = ir.IntType(32), ir.IntType(64), ir.FloatType()
        fp = ir.PointerType(f32)
        fnty = ir.FunctionType(ir.VoidType(), [i32, i32, i32, i64, i64, i64, f32, fp, i64, fp,
                                               i64, f32, fp, i64])
        fn = cgutils.get_or_insert_function(builder.module, fnty, _SYMBOL)
        ta, tb, m_, n_, k_, a_, lda_, b_, ldb_, c_, ldc_ = args
        tys = signature.args

        def data(i, value):
            return context.make_array(tys[i])(context, builder, value).data

        def flag(value):
            return builder.select(value, ir.Constant(i32, _TRANS), ir.Constant(i32, _NO_TRANS))

        def wide(i, value):
            return context.cast(builder, value, tys[i], types.int64)

        builder.call(fn, [ir.Constant(i32, _ROW_MAJOR), flag(ta), flag(tb), wide(2, m_),
                          wide(3, n_), wide(4, k_), ir.Constant(f32, 1.0), data(5, a_),
                          wide(6, lda_), data(7, b_), wide(8, ldb_), ir.Constant(f32, 0.0),
                          data(9, c_), wide(10, ldc_)])
        return context.get_dummy_value()

    return sig, codegen


@njit(cache=True, inline="always")
def _np_dot_into(a, trans_a, b, trans_b, c):
    """``c = op(a) @ op(b)`` through numba's ``np.dot`` (scipy's BLAS; row-sliced views are
    copied first)."""
    a = np.ascontiguousarray(a)
    b = np.ascontiguousarray(b)
    if trans_a and trans_b:
        np.dot(a.T, b.T, c)
    elif trans_a:
        np.dot(a.T, b, c)
    elif trans_b:
        np.dot(a, b.T, c)
    else:
        np.dot(a, b, c)


if _LIBRARY is not None:
    @njit(cache=True, inline="always")
    def matmul_into(a, trans_a, b, trans_b, c):
        """``c = op(a) @ op(b)``, ``op(x)`` = ``x.T`` when its flag is set; ``a``, ``b`` float32
        matrices whose rows are contiguous (C-contiguous, or a column slice of one such as a
        replay batch's ``rows[:, :d]``: BLAS reads it in place through its row stride, no
        copy), ``c`` C-contiguous (for one row, ``np.dot``'s vector product is faster: 0.4 us
        against 1.9 us)."""
        m = a.shape[1] if trans_a else a.shape[0]
        k = a.shape[0] if trans_a else a.shape[1]
        n = b.shape[0] if trans_b else b.shape[1]
        _sgemm(trans_a, trans_b, m, n, k, a, a.strides[0] // 4, b, b.strides[0] // 4, c,
               c.shape[1])
else:
    matmul_into = _np_dot_into


# ------------------------------------------------- step.c (rsc_policy.agent.native)
from rsc_policy.agent import native  # noqa: E402  (after BLAS: the fallback)


def c_function(symbol: str, kinds: str):
    """An intrinsic that calls ``symbol`` of ``step.c`` (void): ``kinds`` has one letter per
    argument, ``i`` int64, ``f`` float32, ``p`` the data pointer of a float32 array."""
    llvm_type = {"i": ir.IntType(64), "f": ir.FloatType(), "p": ir.PointerType(ir.FloatType())}
    number = {"i": types.int64, "f": types.float32}

    def typer(typingctx, *args):
        def codegen(context, builder, signature, values):
            fnty = ir.FunctionType(ir.VoidType(), [llvm_type[k] for k in kinds])
            fn = cgutils.get_or_insert_function(builder.module, fnty, symbol)
            tys = signature.args[0].types  # the star arguments arrive as one tuple
            call = [context.make_array(ty)(context, builder, v).data if k == "p"
                    else context.cast(builder, v, ty, number[k])
                    for k, ty, v in zip(kinds, tys, cgutils.unpack_tuple(builder, values[0]),
                                        strict=True)]
            builder.call(fn, call)
            return context.get_dummy_value()

        return types.void(types.StarArgTuple.from_types(args)), codegen

    typer.__name__ = typer.__qualname__ = f"_{symbol}"
    return intrinsic(typer)


_rsc_gemm = c_function("rsc_gemm", "iiipiipipi")  # m, n, k, a, sai, sak, b, ldb, c, ldc
_rsc_gemm_bias = c_function("rsc_gemm_bias", "iiipiipipipi")  # ... bias, relu
_rsc_dense_row = c_function("rsc_dense_row", "iippippi")  # n, k, x, w, ldw, bias, out, relu
_rsc_transpose = c_function("rsc_transpose", "iipipi")  # rows, cols, src, lds, dst, ldd


@njit(cache=True, inline="always")
def native_gemm_into(a, trans_a, b, c):
    """``c = op(a) @ b`` (``op(a) = a.T`` when ``trans_a``) through ``step.c``: each element
    one FMA chain over k in order. ``a`` and ``b`` float32 matrices whose rows are contiguous
    (column slices of a replay batch are read in place), ``c`` C-contiguous."""
    s0 = a.strides[0] // 4
    if trans_a:
        _rsc_gemm(a.shape[1], b.shape[1], a.shape[0], a, 1, s0, b, b.strides[0] // 4, c,
                  c.shape[1])
    else:
        _rsc_gemm(a.shape[0], b.shape[1], a.shape[1], a, s0, 1, b, b.strides[0] // 4, c,
                  c.shape[1])


@njit(cache=True, inline="always")
def native_dense_into(x, wt, b, out, relu):
    """``out = x @ wt + b``, then ReLU if ``relu`` (``wt``: a layer's weight transposed,
    C-contiguous), bias and ReLU applied as ``step.c`` stores each block."""
    _rsc_gemm_bias(x.shape[0], wt.shape[1], x.shape[1], x, x.strides[0] // 4, 1, wt,
                   wt.strides[0] // 4, out, out.shape[1], b, relu)


@njit(cache=True, inline="always")
def native_dense_row_into(x, w, b, out, relu):
    """``out = x @ w.T + b``, then ReLU if ``relu``, for one row ``x`` (``(1, k)``, its
    elements contiguous) and ``w`` as torch stores it (rows contiguous): ``step.c``'s 8-lane
    dot products, summed in one fixed order (the acting forward)."""
    if x.strides[1] != 4:
        blas_dense_row_into(x, w, b, out, relu)
    else:
        _rsc_dense_row(w.shape[0], w.shape[1], x, w, w.strides[0] // 4, b, out, relu)


@njit(cache=True, inline="always")
def native_transpose_into(w, wt):
    """``wt[:, :] = w.T`` (both C-contiguous) through ``step.c``."""
    _rsc_transpose(w.shape[0], w.shape[1], w, w.shape[1], wt, wt.shape[1])


@njit(cache=True, inline="always")
def blas_gemm_into(a, trans_a, b, c):
    """:func:`native_gemm_into` through BLAS (:func:`matmul_into`)."""
    matmul_into(a, trans_a, b, False, c)


@njit(cache=True, inline="always")
def add_bias_relu(out, b, relu):
    """``out = out + b`` row by row, then ReLU if ``relu`` (a NaN stays a NaN): a dense
    layer's epilogue after a plain product."""
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            v = out[i, j] + b[j]
            out[i, j] = np.maximum(v, np.float32(0.0)) if relu else v


@njit(cache=True, inline="always")
def blas_dense_into(x, wt, b, out, relu):
    """:func:`native_dense_into` through BLAS, then :func:`add_bias_relu`."""
    matmul_into(x, False, wt, False, out)
    add_bias_relu(out, b, relu)


@njit(cache=True, inline="always")
def blas_dense_row_into(x, w, b, out, relu):
    """:func:`native_dense_row_into` through numpy's vector product (0.4 us against 1.9 us
    for BLAS's matrix product on one row), then :func:`add_bias_relu`."""
    np.dot(np.ascontiguousarray(x), w.T, out)  # a row view typed 'A' is copied (numba warns)
    add_bias_relu(out, b, relu)


@njit(cache=True, inline="always")
def loop_transpose_into(w, wt):
    """``wt[:, :] = w.T`` as a loop."""
    for i in range(w.shape[0]):
        for j in range(w.shape[1]):
            wt[j, i] = w[i, j]


#: ``gemm_into(a, trans_a, b, c)``: ``c = op(a) @ b`` for the learning step; ``step.c`` where
#: it was built and loaded (:data:`rsc_policy.agent.native.AVAILABLE`), else BLAS.
gemm_into = native_gemm_into if native.AVAILABLE else blas_gemm_into
#: ``dense_into(x, wt, b, out, relu)``: ``out = x @ wt + b`` (then ReLU), a layer's forward.
dense_into = native_dense_into if native.AVAILABLE else blas_dense_into
#: ``dense_row_into(x, w, b, out, relu)``: one row's ``x @ w.T + b`` (then ReLU), acting.
dense_row_into = native_dense_row_into if native.AVAILABLE else blas_dense_row_into
#: ``transpose_into(w, wt)``: ``wt[:, :] = w.T``.
transpose_into = native_transpose_into if native.AVAILABLE else loop_transpose_into
