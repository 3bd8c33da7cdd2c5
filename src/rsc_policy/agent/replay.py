"""Experience replay: a FIFO ring buffer of transitions in one numpy array. No Ray import."""

from __future__ import annotations

from typing import Any

import numpy as np

from rsc_policy.agent.rng import array_to_state, choice, state_to_array
from rsc_policy.agent.update import transition_rows, transition_width


class ReplayMemory:
    """The last ``capacity`` transitions ``(s, a, r, s', done)``, sampled without replacement.

    Each transition is one float32 row ``[s | s' | a | r | done]`` of a preallocated
    ``(capacity, 2 * obs_dim + 3)`` array: adding is one row write, and a batch is one
    ``np.take`` into a reusable buffer whose tensor view the learner reads without copying.
    Sampling draws ``Generator.choice(len, batch_size, replace=False)`` of a dedicated
    PCG64 stream seeded from ``seed`` (never global state), in compiled code, bit for bit.
    """

    def __init__(self, capacity: int, obs_dim: int, seed: int = 0) -> None:
        if capacity < 1:
            raise ValueError(f"memory_size must be >= 1, got {capacity}")
        self.capacity = int(capacity)
        self.obs_dim = int(obs_dim)
        self.rows = np.zeros((self.capacity, transition_width(obs_dim)), dtype=np.float32)
        # numpy's PCG64 state as six uint64: batches are drawn by the compiled
        # Generator.choice (rsc_policy.agent.rng.choice, bit-identical), ~20 us faster a batch
        self._rng_state = state_to_array(np.random.default_rng(seed).bit_generator.state)
        self._idx = np.empty(0, dtype=np.int64)
        self._next = 0  # slot the next transition goes to
        self._size = 0
        self._out: np.ndarray | None = None
        self.resized: tuple[int, int] | None = None  # (old, new) capacity of a restore

    def __len__(self) -> int:
        return self._size

    @property
    def rng(self) -> np.random.Generator:
        """A ``Generator`` in the sampler's current state (a copy: drawing from it does not
        advance the memory's own)."""
        rng = np.random.default_rng()
        rng.bit_generator.state = array_to_state(self._rng_state)
        return rng

    def add(self, obs: np.ndarray, action: int, reward: float, next_obs: np.ndarray,
            done: bool) -> None:
        """Store one transition, evicting the oldest when full."""
        row = self.rows[self._next]
        d = self.obs_dim
        row[:d] = obs
        row[d : 2 * d] = next_obs
        row[2 * d] = action
        row[2 * d + 1] = reward
        row[2 * d + 2] = done
        self._advance(1)

    def add_batch(self, obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray,
                  next_obs: np.ndarray, dones: np.ndarray) -> None:
        """Store ``n`` transitions in order (same result as ``n`` calls of :meth:`add`)."""
        n = len(actions)
        if n == 0:
            return
        if n > self.capacity:  # only the last `capacity` survive
            k = n - self.capacity
            self._advance(k)
            obs, actions, rewards = obs[k:], actions[k:], rewards[k:]
            next_obs, dones = next_obs[k:], dones[k:]
            n = self.capacity
        idx = (self._next + np.arange(n)) % self.capacity
        self.rows[idx] = transition_rows(obs, actions, rewards, next_obs, dones)
        self._advance(n)

    def _advance(self, n: int) -> None:
        self._next = (self._next + n) % self.capacity
        self._size = min(self._size + n, self.capacity)

    def sample(self, batch_size: int, out: np.ndarray | None = None) -> np.ndarray:
        """``batch_size`` distinct rows drawn uniformly (rows ``[s | s' | a | r | done]``).

        Without ``out`` the rows are written into a buffer owned by the memory and reused by
        the next call (copy them to keep them).
        """
        if batch_size > self._size:
            raise ValueError(f"cannot sample {batch_size} from {self._size} transitions")
        if self._idx.shape[0] != batch_size:
            self._idx = np.empty(batch_size, dtype=np.int64)
        idx = self._idx  # = Generator.choice(size, batch_size, replace=False)
        choice(self._rng_state, self._size, batch_size, idx)
        if out is None:
            if self._out is None or self._out.shape[0] != batch_size:
                self._out = np.empty((batch_size, self.rows.shape[1]), dtype=np.float32)
            out = self._out
        np.take(self.rows, idx, axis=0, out=out)
        return out

    def transitions(self) -> dict[str, np.ndarray]:
        """All stored transitions, oldest first, as named columns (copies)."""
        order = (self._next - self._size + np.arange(self._size)) % self.capacity
        rows, d = self.rows[order], self.obs_dim
        return {"obs": rows[:, :d], "next_obs": rows[:, d : 2 * d],
                "actions": rows[:, 2 * d].astype(np.int64), "rewards": rows[:, 2 * d + 1],
                "dones": rows[:, 2 * d + 2].astype(bool)}

    def get_state(self) -> dict[str, Any]:
        """Contents, ring position and sampling-RNG state (for checkpoints)."""
        return {"rows": self.rows[: self._size].copy() if self._size < self.capacity
                else self.rows.copy(),
                "next": self._next, "size": self._size, "capacity": self.capacity,
                "obs_dim": self.obs_dim, "rng": array_to_state(self._rng_state)}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`get_state`. A state of another capacity is applied to this one: the
        newest ``min(size, capacity)`` transitions are kept, oldest first (``resized`` tells)."""
        if state["obs_dim"] != self.obs_dim:
            raise ValueError(f"replay state holds observations of size {state['obs_dim']}, "
                             f"this memory {self.obs_dim}")
        self._rng_state = state_to_array(state["rng"])
        if state["capacity"] == self.capacity:
            self.rows[: len(state["rows"])] = state["rows"]
            self._next, self._size = int(state["next"]), int(state["size"])
            return
        size, cap = int(state["size"]), int(state["capacity"])
        order = (int(state["next"]) - size + np.arange(size)) % cap  # oldest first
        keep = state["rows"][order][-self.capacity :]
        self.rows[: len(keep)] = keep
        self._size, self._next = len(keep), len(keep) % self.capacity
        self.resized = (cap, self.capacity)
