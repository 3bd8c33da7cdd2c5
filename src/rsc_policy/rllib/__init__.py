"""The RLlib plugin: config, algorithm, learner, RLModule (new API stack)."""
