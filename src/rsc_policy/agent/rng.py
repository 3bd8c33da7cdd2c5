"""numpy's ``Generator(PCG64).choice(n, k, replace=False)`` inside compiled code, bit for bit.

The replay memory of :mod:`rsc_policy.agent.replay` samples its batches with
``np.random.default_rng(seed).choice(size, batch, replace=False)``: ~10 µs of Python per call
here, more than a whole learning step of a population member costs. The compiled population
step (:mod:`rsc_policy.agent.population`) draws the same indices itself: PCG64 (XSL-RR 128/64,
as ``numpy/random/src/pcg64``), Lemire's bounded integers and Floyd's sampling with the final
shuffle, transcribed from ``numpy/random/_generator.pyx``. A generator's state is six
``uint64`` (state high/low, increment high/low, ``has_uint32``, ``uinteger``), exchanged with
the Python generator through :func:`state_to_array` / :func:`array_to_state`;
``tests/policy/test_population.py`` checks the draws and the final state against numpy.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

_U = np.uint64
_M32 = _U(0xFFFFFFFF)
_MULT_HI = _U(2549297995355413924)
_MULT_LO = _U(4865540595714422341)
_EMPTY = _U(0xFFFFFFFFFFFFFFFF)
STATE_WORDS = 6


def state_to_array(bit_generator_state: dict[str, Any]) -> np.ndarray:
    """A PCG64 ``bit_generator.state`` dict as six ``uint64``."""
    s = bit_generator_state
    if s["bit_generator"] != "PCG64":
        raise ValueError(f"only PCG64 generators are supported, got {s['bit_generator']}")
    st, inc = int(s["state"]["state"]), int(s["state"]["inc"])
    m = (1 << 64) - 1
    return np.array([st >> 64, st & m, inc >> 64, inc & m, s["has_uint32"], s["uinteger"]],
                    dtype=np.uint64)


def array_to_state(a: np.ndarray) -> dict[str, Any]:
    """The inverse of :func:`state_to_array` (for ``bit_generator.state = ...``)."""
    w = [int(x) for x in a]
    return {"bit_generator": "PCG64",
            "state": {"state": (w[0] << 64) | w[1], "inc": (w[2] << 64) | w[3]},
            "has_uint32": w[4], "uinteger": w[5]}


@njit(cache=True, inline="always")
def _mulhi(a, b):
    a0, a1 = a & _M32, a >> _U(32)
    b0, b1 = b & _M32, b >> _U(32)
    p00, p01, p10, p11 = a0 * b0, a0 * b1, a1 * b0, a1 * b1
    mid = (p00 >> _U(32)) + (p01 & _M32) + (p10 & _M32)
    return p11 + (p01 >> _U(32)) + (p10 >> _U(32)) + (mid >> _U(32))


@njit(cache=True)
def next_uint64(s: np.ndarray):
    """One PCG64 step (state = state * mult + inc mod 2**128), then the XSL-RR output."""
    hi, lo = s[0], s[1]
    new_lo = lo * _MULT_LO
    new_hi = _mulhi(lo, _MULT_LO) + hi * _MULT_LO + lo * _MULT_HI
    lo2 = new_lo + s[3]
    carry = _U(1) if lo2 < new_lo else _U(0)
    hi2 = new_hi + s[2] + carry
    s[0], s[1] = hi2, lo2
    x = hi2 ^ lo2
    rot = hi2 >> _U(58)
    return (x >> rot) | (x << ((_U(64) - rot) & _U(63)))


@njit(cache=True)
def next_uint32(s: np.ndarray):
    """numpy's ``pcg64_next32``: the low half of a 64-bit draw, the high half kept for the
    next call."""
    if s[4] != _U(0):
        s[4] = _U(0)
        return s[5]
    v = next_uint64(s)
    s[4] = _U(1)
    s[5] = v >> _U(32)
    return v & _M32


@njit(cache=True)
def bounded(s: np.ndarray, rng):
    """Uniform integer in ``[0, rng]`` (``rng < 2**32``): numpy's ``random_bounded_uint64``
    with Lemire's rejection on 32-bit draws."""
    rng = _U(rng)
    if rng == _U(0):
        return _U(0)
    if rng == _M32:
        return next_uint32(s)
    rng_excl = rng + _U(1)
    m = next_uint32(s) * rng_excl
    leftover = m & _M32
    if leftover < rng_excl:
        threshold = (_M32 - rng) % rng_excl
        while leftover < threshold:
            m = next_uint32(s) * rng_excl
            leftover = m & _M32
    return m >> _U(32)


@njit(cache=True)
def _gen_mask(v):
    m = _U(v)
    m |= m >> _U(1)
    m |= m >> _U(2)
    m |= m >> _U(4)
    m |= m >> _U(8)
    m |= m >> _U(16)
    m |= m >> _U(32)
    return m


@njit(cache=True)
def choice(s: np.ndarray, pop: int, size: int, out: np.ndarray) -> None:
    """``Generator.choice(pop, size, replace=False)`` into ``out[:size]`` (int64)."""
    if pop > 10000 and size > pop // 50:  # numpy's tail shuffle
        idx = np.arange(pop)
        first = max(pop - size, 1)
        for i in range(pop - 1, first - 1, -1):
            j = np.int64(bounded(s, i))
            idx[i], idx[j] = idx[j], idx[i]
        out[:size] = idx[pop - size:]
        return
    mask = _gen_mask(_U(np.int64(1.2 * size)))
    hash_set = np.full(np.int64(mask) + 1, _EMPTY, dtype=np.uint64)
    for j in range(pop - size, pop):
        val = bounded(s, j)
        loc = val & mask
        while hash_set[loc] != _EMPTY and hash_set[loc] != val:
            loc = (loc + _U(1)) & mask
        if hash_set[loc] == _EMPTY:
            hash_set[loc] = val
            out[j - pop + size] = np.int64(val)
        else:
            loc = _U(j) & mask
            while hash_set[loc] != _EMPTY:
                loc = (loc + _U(1)) & mask
            hash_set[loc] = _U(j)
            out[j - pop + size] = j
    for i in range(size - 1, 0, -1):
        j = np.int64(bounded(s, i))
        out[i], out[j] = out[j], out[i]
