"""Compiled kernels (numba) for the default two-hidden-layer ReLU Q-network.

One learning step of :class:`rsc_policy.agent.update.DQNUpdate` is a single call of
:func:`dqn_step`: target forward, prediction, MSE or Huber loss, backward, optional gradient
clipping and the Adam update, on numpy views of the torch parameter and optimizer buffers (no
copies: torch keeps owning them, so ``state_dict``, checkpoints and ``param_groups["lr"]``
work as before). :func:`greedy_actions` is the forward pass for acting. The learning step's
matrix products and Adam update, and acting on one observation, go to ``step.c``
(:mod:`rsc_policy.agent.native`, :func:`rsc_policy.agent.blas.gemm_into`; OpenBLAS and numba
loops where it cannot be built), acting on several rows to numpy's own OpenBLAS; everything
else is fused loops. At batch 32 a torch step is ~35 small
ops of 2-6 us dispatch each; this is one call (see ``bench/bench_learner.py`` for the numbers
beside the GEMM floor).

Layout of a flat parameter vector (as :func:`rsc_policy.agent.update._flatten` builds it):
``w1 (H1, D), b1 (H1), w2 (H2, H1), b2 (H2), w3 (A, H2), b3 (A)``, row-major.
"""

from __future__ import annotations

import os
import platform

import numba
import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

from rsc_env.compiled import copy_into
from rsc_policy.agent import native
from rsc_policy.agent.blas import (
    add_bias_relu,
    c_function,
    dense_into,
    dense_row_into,
    gemm_into,
    matmul_into,
    transpose_into,
)
from rsc_policy.agent.rng import choice

# numba's thread pool for the population's member-parallel call: "workqueue" (plain pthreads
# that sleep when idle). Measured here, K=16 members, one step each, 2 threads, with another
# busy process on the 2 cores: OpenMP ("omp", numba's default when libgomp is present, which
# torch loads) 392-500 us per member step -- its workers spin for the CPU the other process
# needs -- against 93-117 us with workqueue (and 100 us single-threaded). NUMBA_THREADING_LAYER
# in the environment still wins.
if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER = "workqueue"

LOSS_MSE, LOSS_HUBER = 0, 1
_X86 = platform.machine().lower() in ("x86_64", "amd64", "i686", "x86")


@intrinsic
def _ldmxcsr_ftz(typingctx):
    """Set flush-to-zero and denormals-are-zero (MXCSR bits 15 and 6) in the calling thread:
    what ``torch.set_flush_denormal(True)`` does, for numba's worker threads too."""
    def codegen(context, builder, signature, args):
        i32 = ir.IntType(32)
        slot = cgutils.alloca_once(builder, i32)
        raw = builder.bitcast(slot, ir.PointerType(ir.IntType(8)))
        fnty = ir.FunctionType(ir.VoidType(), [ir.PointerType(ir.IntType(8))])
        builder.call(cgutils.get_or_insert_function(builder.module, fnty,
                                                    "llvm.x86.sse.stmxcsr"), [raw])
        builder.store(builder.or_(builder.load(slot), ir.Constant(i32, 0x8040)), slot)
        builder.call(cgutils.get_or_insert_function(builder.module, fnty,
                                                    "llvm.x86.sse.ldmxcsr"), [raw])
        return context.get_dummy_value()

    return types.void(), codegen


@njit(cache=True, inline="always")
def flush_denormals() -> None:
    """Flush-to-zero for denormal floats in this thread (x86; elsewhere nothing): Adam's
    moments of dead units decay into denormals, and arithmetic on them is microcoded (see
    :class:`rsc_policy.agent.update.DQNUpdate`). Every thread that runs a learning step sets
    it, so the main thread and numba's workers do the same arithmetic."""
    if _X86:
        _ldmxcsr_ftz()
CLIP_NONE, CLIP_VALUE, CLIP_NORM = 0, 1, 2


def call_threads(threads: int | None) -> int:
    """The threads a compiled member-parallel call gets: ``threads`` capped at numba's pool
    (``None``: the whole pool)."""
    pool = numba.config.NUMBA_NUM_THREADS
    return pool if threads is None else min(threads, pool)


def use_threads(n: int) -> None:
    """Set numba's thread count for this thread's next parallel call (~12 us a call, so only
    when it changes)."""
    if numba.get_num_threads() != n:
        numba.set_num_threads(n)


@njit(cache=True, fastmath=False)
def layer_views(p: np.ndarray, d: int, h1: int, h2: int, a: int):
    o = 0
    w1 = p[o : o + h1 * d].reshape(h1, d)
    o += h1 * d
    b1 = p[o : o + h1]
    o += h1
    w2 = p[o : o + h2 * h1].reshape(h2, h1)
    o += h2 * h1
    b2 = p[o : o + h2]
    o += h2
    w3 = p[o : o + a * h2].reshape(a, h2)
    o += a * h2
    b3 = p[o : o + a]
    return w1, b1, w2, b2, w3, b3


@njit(cache=True)
def forward(x: np.ndarray, w1, b1, w2, b2, w3, b3):
    n = x.shape[0]
    h1 = np.empty((n, w1.shape[0]), dtype=np.float32)
    h2 = np.empty((n, w2.shape[0]), dtype=np.float32)
    q = np.empty((n, w3.shape[0]), dtype=np.float32)
    forward_into(x, w1, b1, w2, b2, w3, b3, h1, h2, q)
    return h1, h2, q


@njit(cache=True, inline="always")
def forward_into(x, w1, b1, w2, b2, w3, b3, h1, h2, q):
    """:func:`forward` into given ``h1``, ``h2``, ``q`` (no allocation)."""
    _dense(x, w1, b1, h1, True)
    _dense(h1, w2, b2, h2, True)
    _dense(h2, w3, b3, q, False)


@njit(cache=True, inline="always")
def _dense(x, w, b, out, relu):
    """``out = x @ w.T + b`` (then ReLU), written into ``out``: one BLAS call, one loop; one
    row (acting on one observation): one :func:`~rsc_policy.agent.blas.dense_row_into`."""
    if x.shape[0] == 1:
        dense_row_into(x, w, b, out, relu)
        return
    matmul_into(x, False, w, True, out)
    add_bias_relu(out, b, relu)


@njit(cache=True, inline="always")
def forward_t_into(x, w1t, b1, w2t, b2, w3t, b3, h1, h2, q):
    """:func:`forward_into` with each layer's weight given transposed (``w.T``,
    C-contiguous): the learning step's batched forward, each product one
    :func:`~rsc_policy.agent.blas.gemm_into`."""
    dense_into(x, w1t, b1, h1, True)
    dense_into(h1, w2t, b2, h2, True)
    dense_into(h2, w3t, b3, q, False)


@njit(cache=True, inline="always")
def transposed_views(out, d, h1, h2, a):
    """Views of ``out`` (``h1*d + h2*h1 + a*h2`` float32s) as ``w1.T, w2.T, w3.T``."""
    w1t = out[: d * h1].reshape(d, h1)
    o = d * h1
    w2t = out[o : o + h1 * h2].reshape(h1, h2)
    o += h1 * h2
    w3t = out[o : o + h2 * a].reshape(h2, a)
    return w1t, w2t, w3t


@njit(cache=True, inline="always")
def transposed_layers(w1, w2, w3, out, d, h1, h2, a):
    """``w1.T, w2.T, w3.T`` written into ``out`` (:func:`transposed_views`)."""
    w1t, w2t, w3t = transposed_views(out, d, h1, h2, a)
    transpose_into(w1, w1t)
    transpose_into(w2, w2t)
    transpose_into(w3, w3t)
    return w1t, w2t, w3t


@njit(cache=True, inline="always")
def weights_size(d, h1, h2, a):
    """float32s of the three weight matrices (biases not counted)."""
    return h1 * d + h2 * h1 + a * h2


@njit(cache=True, inline="always")
def _target_slot(work, d, h1, h2, a):
    """The last :func:`weights_size` float32s of a :func:`member_step` scratch: the target's
    weights transposed."""
    return work[work.shape[0] - weights_size(d, h1, h2, a):]


@njit(cache=True)
def prepare_target(work, target, d, h1, h2, a):
    """Write ``target``'s weights, transposed, into the scratch ``work`` of
    :func:`member_step`. The target changes only when it is synced, so the caller does this
    once per scratch and after every sync (:func:`replay_step`), not every step."""
    t1, _, t2, _, t3, _ = layer_views(target, d, h1, h2, a)
    transposed_layers(t1, t2, t3, _target_slot(work, d, h1, h2, a), d, h1, h2, a)


@njit(cache=True, inline="always")
def _backprop(delta, w, h, out):
    """``out = (delta @ w) * (h > 0)``: the delta of the ReLU layer below."""
    gemm_into(delta, False, w, out)
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] *= np.float32(1.0) if h[i, j] > 0 else np.float32(0.0)


@njit(cache=True, inline="always")
def _column_sums(x, out):
    """``out = x.sum(axis=0)``, rows added in order in float32 (what numpy's ``sum`` does
    here, bit for bit, without allocating)."""
    for j in range(x.shape[1]):
        out[j] = x[0, j]
    for i in range(1, x.shape[0]):
        for j in range(x.shape[1]):
            out[j] += x[i, j]


@njit(cache=True)
def work_size(rows: int, d: int, h1: int, h2: int, a: int) -> int:
    """float32 scratch of one :func:`member_step` on ``rows`` replay rows."""
    weights = weights_size(d, h1, h2, a)
    size = weights + h1 + h2 + a  # the parameters: Adam's denominator scratch
    # then the online and the target weights, transposed (the target's last: _target_slot)
    return rows * (2 * h1 + 2 * h2 + 4 * a) + size + 2 * weights


@njit(cache=True)
def dqn_step(params: np.ndarray, target: np.ndarray, grad: np.ndarray, exp_avg: np.ndarray,
             exp_avg_sq: np.ndarray, step: np.ndarray, rows: np.ndarray, d: int, h1: int,
             h2: int, a: int, gamma: float, lr: float, beta1: float, beta2: float, eps: float,
             loss_kind: int, double_q: bool, clip_kind: int, clip: float) -> float:
    """One DQN learning step in place on ``params`` (and Adam's buffers); returns the loss.

    ``rows`` are replay rows ``[s | s' | a | r | done]`` (float32). The maths is
    :func:`rsc_policy.agent.loss.td_loss` + ``torch.optim.Adam`` (single-tensor, no
    amsgrad, no weight decay) + RLlib's clipping. The same compiled body runs for every
    member of a population (:func:`population_learn`).
    """
    work = np.empty(work_size(rows.shape[0], d, h1, h2, a), dtype=np.float32)
    prepare_target(work, target, d, h1, h2, a)
    return member_step(params, target, grad, exp_avg, exp_avg_sq, step, rows, d, h1, h2, a,
                       gamma, lr, beta1, beta2, eps, loss_kind, double_q, clip_kind, clip, work)


# error_model="numpy": a division never raises (no denominator here can be 0), so the Adam
# loops vectorise -- with Python's ZeroDivisionError check per element they ran scalar (Adam
# took 15 us of the step instead of 6).
@njit(cache=True, error_model="numpy")
def member_step(params, target, grad, exp_avg, exp_avg_sq, step, rows, d, h1, h2, a, gamma,
                lr, beta1, beta2, eps, loss_kind, double_q, clip_kind, clip, work):
    """:func:`dqn_step` with its scratch ``work`` (:func:`work_size` float32s) given: no
    allocation, and the products read ``s`` and ``s'`` in place from ``rows``. ``work`` must
    hold ``target``'s weights transposed (:func:`prepare_target`)."""
    flush_denormals()
    n = rows.shape[0]
    s = rows[:, :d]
    s2 = rows[:, d : 2 * d]
    o = 0
    h1a = work[o : o + n * h1].reshape(n, h1)  # the online net's activations on s
    o += n * h1
    h2a = work[o : o + n * h2].reshape(n, h2)
    o += n * h2
    x1 = work[o : o + n * h1].reshape(n, h1)  # the s' forwards' activations, then deltas
    o += n * h1
    x2 = work[o : o + n * h2].reshape(n, h2)
    o += n * h2
    q = work[o : o + n * a].reshape(n, a)
    o += n * a
    qt = work[o : o + n * a].reshape(n, a)
    o += n * a
    qo = work[o : o + n * a].reshape(n, a)
    o += n * a
    dq = work[o : o + n * a].reshape(n, a)
    o += n * a
    size = params.shape[0]
    denom = work[o : o + size]
    o += size
    w1, b1, w2, b2, w3, b3 = layer_views(params, d, h1, h2, a)
    _, c1, _, c2, _, c3 = layer_views(target, d, h1, h2, a)
    # the forwards multiply by w.T, so every product reads rows: the online weights are
    # transposed here, the target's were by the caller (prepare_target)
    w1t, w2t, w3t = transposed_layers(w1, w2, w3, work[o : o + weights_size(d, h1, h2, a)],
                                      d, h1, h2, a)
    t1t, t2t, t3t = transposed_views(_target_slot(work, d, h1, h2, a), d, h1, h2, a)
    # target y = r + gamma * Q_target(s', a*) * (1 - done), no gradient
    forward_t_into(s2, t1t, c1, t2t, c2, t3t, c3, x1, x2, qt)
    if double_q:
        forward_t_into(s2, w1t, b1, w2t, b2, w3t, b3, x1, x2, qo)
    forward_t_into(s, w1t, b1, w2t, b2, w3t, b3, h1a, h2a, q)
    dq[:, :] = 0.0
    total = 0.0
    for i in range(n):
        if double_q:
            best = 0
            for j in range(1, a):
                if qo[i, j] > qo[i, best]:
                    best = j
            q_next = qt[i, best]
        else:
            q_next = qt[i, 0]
            for j in range(1, a):
                if qt[i, j] > q_next:
                    q_next = qt[i, j]
        r = rows[i, 2 * d + 1]
        done = rows[i, 2 * d + 2]
        y = r + np.float32(gamma) * q_next * (np.float32(1.0) - done)
        act = int(rows[i, 2 * d])
        diff = q[i, act] - y
        if loss_kind == LOSS_HUBER:
            if abs(diff) < 1.0:
                total += 0.5 * diff * diff
                dq[i, act] = diff / n
            else:
                total += abs(diff) - 0.5
                dq[i, act] = (1.0 if diff > 0 else -1.0) / n
        else:
            total += diff * diff
            dq[i, act] = 2.0 * diff / n
    # backward through the MLP into the flat gradient
    g1, gb1, g2, gb2, g3, gb3 = layer_views(grad, d, h1, h2, a)
    gemm_into(dq, True, h2a, g3)
    _column_sums(dq, gb3)
    dh2 = x2
    _backprop(dq, w3, h2a, dh2)
    gemm_into(dh2, True, h1a, g2)
    _column_sums(dh2, gb2)
    dh1 = x1
    _backprop(dh2, w2, h1a, dh1)
    gemm_into(dh1, True, s, g1)
    _column_sums(dh1, gb1)
    if clip_kind == CLIP_VALUE:
        for k in range(grad.shape[0]):
            grad[k] = min(max(grad[k], -clip), clip)
    elif clip_kind == CLIP_NORM:
        norm = np.sqrt(np.sum(grad.astype(np.float64) ** 2))
        if norm > clip:
            grad *= np.float32(clip / (norm + 1e-6))
    # Adam (torch.optim.Adam, single tensor): lerp, mul/addcmul, bias corrections
    step[0] += 1.0
    t = step[0]
    bc1 = 1.0 - beta1**t
    bc2_sqrt = np.sqrt(1.0 - beta2**t)
    step_size = np.float32(lr / bc1)
    one_m_b1 = np.float32(1.0 - beta1)
    b2f, one_m_b2 = np.float32(beta2), np.float32(1.0 - beta2)
    bc2f, epsf = np.float32(bc2_sqrt), np.float32(eps)
    adam_update(params, grad, exp_avg, exp_avg_sq, denom, one_m_b1, b2f, one_m_b2, bc2f, epsf,
                step_size)
    return total / n


#: ``rsc_adam(size, p, g, m, v, one_m_b1, b2, one_m_b2, bc2, eps, step_size)`` of ``step.c``.
_rsc_adam = c_function("rsc_adam", "ippppffffff")


@njit(cache=True, inline="always")
def native_adam(params, grad, exp_avg, exp_avg_sq, denom, one_m_b1, b2f, one_m_b2, bc2f, epsf,
                step_size):
    """Adam's update of ``params`` in one pass of ``step.c`` (``denom`` unused)."""
    _rsc_adam(params.shape[0], params, grad, exp_avg, exp_avg_sq, one_m_b1, b2f, one_m_b2,
              bc2f, epsf, step_size)


# error_model="numpy" (member_step's, into which this inlines): a division never raises (no
# denominator here can be 0), so the loops vectorise -- with Python's ZeroDivisionError check
# per element they ran scalar (Adam took 15 us of the step instead of 6).
@njit(cache=True, inline="always", error_model="numpy")
def loop_adam(params, grad, exp_avg, exp_avg_sq, denom, one_m_b1, b2f, one_m_b2, bc2f, epsf,
              step_size):
    """:func:`native_adam` as numba loops (``denom``: scratch), the same float32 operations
    in the same order: one simple loop per operation, each vectorises (one fused loop does
    not: ~2x slower)."""
    size = params.shape[0]
    for k in range(size):
        exp_avg[k] = exp_avg[k] + (grad[k] - exp_avg[k]) * one_m_b1
    for k in range(size):
        exp_avg_sq[k] = exp_avg_sq[k] * b2f + one_m_b2 * grad[k] * grad[k]
    for k in range(size):
        denom[k] = np.sqrt(exp_avg_sq[k]) / bc2f + epsf
    for k in range(size):
        params[k] -= step_size * exp_avg[k] / denom[k]


#: Adam's update in the learning step: ``step.c`` where it is built (bit for bit the loops').
adam_update = native_adam if native.AVAILABLE else loop_adam


@njit(cache=True)
def step_products(n: int, s, w1, w2, w3) -> None:
    """The matrix products of :func:`member_step` alone (no double-Q), ``n`` times, with the
    same calls on the same shapes (``s``: the batch's observations), the transpose of the
    online weights they read included: what
    :func:`rsc_policy.cli.limits.member_products_us` times."""
    b, h1, h2, a, d = s.shape[0], w1.shape[0], w2.shape[0], w3.shape[0], s.shape[1]
    x1 = np.empty((b, h1), dtype=np.float32)
    x2 = np.empty((b, h2), dtype=np.float32)
    q = np.empty((b, a), dtype=np.float32)
    g1 = np.empty_like(w1)
    g2 = np.empty_like(w2)
    g3 = np.empty_like(w3)
    wt = np.empty(weights_size(d, h1, h2, a), dtype=np.float32)
    for _ in range(n):
        # the online weights change every step: one transpose (the target's only on a sync)
        w1t, w2t, w3t = transposed_layers(w1, w2, w3, wt, d, h1, h2, a)
        for _ in range(2):  # target on s', online on s
            gemm_into(s, False, w1t, x1)
            gemm_into(x1, False, w2t, x2)
            gemm_into(x2, False, w3t, q)
        gemm_into(q, True, x2, g3)
        gemm_into(q, False, w3, x2)
        gemm_into(x2, True, x1, g2)
        gemm_into(x2, False, w2, x1)
        gemm_into(x1, True, s, g1)


@njit(cache=True, inline="always")
def argmax_row(q, i):
    """``argmax_a q[i, a]``, the first index on ties (like ``torch.argmax``)."""
    best = 0
    for j in range(1, q.shape[1]):
        if q[i, j] > q[i, best]:
            best = j
    return best


@njit(cache=True)
def greedy_actions(obs: np.ndarray, w1, b1, w2, b2, w3, b3) -> np.ndarray:
    """``argmax_a Q(obs, a)`` per row (first index on ties, like ``torch.argmax``)."""
    _, _, q = forward(obs, w1, b1, w2, b2, w3, b3)
    out = np.empty(q.shape[0], dtype=np.int64)
    for i in range(q.shape[0]):
        out[i] = argmax_row(q, i)
    return out


@njit(cache=True)
def _member_steps(k, params, target, grad, exp_avg, exp_avg_sq, adam_step, sync_count, memory,
                  mem_size, rng_state, steps, batch_size, d, h1, h2, a, gamma, lr, beta1, beta2,
                  eps, loss_kind, double_q, clip_kind, clip, target_freq, losses):
    """Member ``k``'s ``steps[k]`` learning steps (see :func:`population_learn`)."""
    n = steps[k]
    if n == 0:
        return
    b = batch_size[k]
    idx = np.empty(b, dtype=np.int64)
    rows = np.empty((b, memory.shape[2]), dtype=np.float32)
    work = np.empty(work_size(b, d, h1, h2, a), dtype=np.float32)
    prepare_target(work, target[k], d, h1, h2, a)
    for s in range(n):
        losses[k, s] = replay_step(k, idx, rows, work, params, target, grad, exp_avg, exp_avg_sq,
                                   adam_step, sync_count, memory, mem_size, rng_state, d, h1,
                                   h2, a, gamma, lr, beta1, beta2, eps, loss_kind, double_q,
                                   clip_kind, clip, target_freq)


@njit(cache=True)
def replay_step(k, idx, rows, work, params, target, grad, exp_avg, exp_avg_sq, adam_step,
                sync_count, memory, mem_size, rng_state, d, h1, h2, a, gamma, lr, beta1,
                beta2, eps, loss_kind, double_q, clip_kind, clip, target_freq):
    """Member ``k``'s one learning step from its replay: ``len(idx)`` distinct rows drawn as
    ``Generator.choice`` does into ``rows``, :func:`member_step` (scratch ``work``, holding
    the target transposed: :func:`prepare_target`), the target copy every ``target_freq[k]``
    steps (and its transpose into ``work``). Returns the loss."""
    choice(rng_state[k], mem_size[k], idx.shape[0], idx)
    for i in range(idx.shape[0]):
        copy_into(rows[i], memory[k, idx[i]])
    loss = member_step(params[k], target[k], grad[k], exp_avg[k], exp_avg_sq[k],
                       adam_step[k:k + 1], rows, d, h1, h2, a, gamma[k], lr[k], beta1, beta2,
                       eps, loss_kind[k], double_q[k], clip_kind[k], clip[k], work)
    sync_count[k] += 1
    if sync_count[k] % target_freq[k] == 0:
        copy_into(target[k], params[k])
        prepare_target(work, target[k], d, h1, h2, a)
    return loss


@njit(cache=True, parallel=True)
def population_learn(params, target, grad, exp_avg, exp_avg_sq, adam_step, sync_count,
                     memory, mem_size, rng_state, steps, batch_size, d, h1, h2, a, gamma, lr,
                     beta1, beta2, eps, loss_kind, double_q, clip_kind, clip, target_freq,
                     losses):
    """``steps[k]`` learning steps of every member ``k`` of a population, members in parallel.

    Member ``k`` owns row ``k`` of every array: flat parameters, target, gradient, Adam's
    moments and step count (``[K, P]`` / ``[K]``), its replay ring ``memory[k, :capacity]``
    holding ``mem_size[k]`` rows and its PCG64 state ``rng_state[k]``. Each step is the
    sequential rule exactly: ``batch_size[k]`` distinct rows drawn as
    ``Generator.choice(mem_size, batch, replace=False)`` (:func:`rsc_policy.agent.rng.choice`),
    :func:`member_step`, and the hard target copy every ``target_freq[k]`` learning steps
    (``sync_count`` counts them). Losses go to ``losses[k, :steps[k]]``.
    """
    for k in prange(params.shape[0]):
        _member_steps(k, params, target, grad, exp_avg, exp_avg_sq, adam_step, sync_count,
                      memory, mem_size, rng_state, steps, batch_size, d, h1, h2, a, gamma, lr,
                      beta1, beta2, eps, loss_kind, double_q, clip_kind, clip, target_freq,
                      losses)


@njit(cache=True)
def population_learn_serial(params, target, grad, exp_avg, exp_avg_sq, adam_step, sync_count,
                            memory, mem_size, rng_state, steps, batch_size, d, h1, h2, a, gamma,
                            lr, beta1, beta2, eps, loss_kind, double_q, clip_kind, clip,
                            target_freq, losses):
    """:func:`population_learn` on the calling thread, members one after another: the same
    numbers without the ~100 us that launching numba's thread pool costs per call (measured
    with the workqueue layer; a 1-CPU Tune trial takes one learning call per env step)."""
    for k in range(params.shape[0]):
        _member_steps(k, params, target, grad, exp_avg, exp_avg_sq, adam_step, sync_count,
                      memory, mem_size, rng_state, steps, batch_size, d, h1, h2, a, gamma, lr,
                      beta1, beta2, eps, loss_kind, double_q, clip_kind, clip, target_freq,
                      losses)


@njit(cache=True)
def population_remember(memory, mem_next, mem_size, capacity, members, obs, actions, rewards,
                        next_obs, dones):
    """Store transition ``i`` in the replay ring of member ``members[i]``, in the order given
    (a full ring overwrites its oldest row): ``[s | s' | a | r | done]`` as float32, the
    layout of :func:`rsc_policy.agent.update.transition_rows`."""
    for i in range(members.shape[0]):
        remember_row(memory, mem_next, mem_size, capacity, members[i], obs[i], next_obs[i],
                     actions[i], rewards[i], dones[i])


@njit(cache=True, inline="always")
def remember_row(memory, mem_next, mem_size, capacity, m, obs, next_obs, action, reward, done):
    """One transition into member ``m``'s ring as the float32 row ``[s | s' | a | r | done]``
    (a full ring overwrites its oldest row)."""
    d = obs.shape[0]
    row = memory[m, mem_next[m]]
    for j in range(d):
        row[j] = obs[j]
        row[d + j] = next_obs[j]
    row[2 * d] = action
    row[2 * d + 1] = reward
    row[2 * d + 2] = done
    mem_next[m] = (mem_next[m] + 1) % capacity[m]
    mem_size[m] = min(mem_size[m] + 1, capacity[m])


@njit(cache=True)
def population_greedy(obs, member, params, d, h1, h2, a):
    """``argmax_a Q_m(obs_i, a)`` for each row ``i`` with ``m = member[i]`` (one forward per
    row through its member's network, as :func:`greedy_actions` does for one row)."""
    out = np.empty(obs.shape[0], dtype=np.int64)
    for i in range(obs.shape[0]):
        w1, b1, w2, b2, w3, b3 = layer_views(params[member[i]], d, h1, h2, a)
        _, _, q = forward(obs[i:i + 1], w1, b1, w2, b2, w3, b3)
        out[i] = argmax_row(q, 0)
    return out
