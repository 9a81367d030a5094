"""Tiny deterministic envs for the tests; importing this module registers them.

`fake_envs:Counting-v0` is also how a user's own env is passed to the scripts
(gymnasium imports the module before making the env).
"""

import gymnasium as gym
import numpy as np


class CountingEnv(gym.Env):
    """obs = [episode index, step in episode]; every episode lasts `length` steps and
    ends by termination (even episode index) or by truncation (odd index); reward 1 a step."""

    def __init__(self, length: int = 3):
        self.length = length
        self.observation_space = gym.spaces.Box(0.0, 1e6, shape=(2,), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self.episode = -1
        self.t = 0

    def _obs(self):
        return np.array([self.episode, self.t], dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.episode += 1
        self.t = 0
        return self._obs(), {}

    def step(self, action):
        self.t += 1
        ended = self.t >= self.length
        terminated = ended and self.episode % 2 == 0
        truncated = ended and self.episode % 2 == 1
        return self._obs(), 1.0, terminated, truncated, {}


class GridObsEnv(CountingEnv):
    """The same env with a 2-D (1 x 2) Box observation, which the scripts flatten."""

    def __init__(self, length: int = 3):
        super().__init__(length)
        self.observation_space = gym.spaces.Box(0.0, 1e6, shape=(1, 2), dtype=np.float32)

    def _obs(self):
        return super()._obs().reshape(1, 2)


gym.register("Counting-v0", entry_point=CountingEnv)
gym.register("GridObs-v0", entry_point=GridObsEnv, max_episode_steps=50)


class CrashingEnv(CountingEnv):
    """CountingEnv (with 4-value observations) whose `step` raises after `crash_after` steps in
    total: a broken user env, to test how a script handles an env that fails mid-run."""

    def __init__(self, length: int = 10, crash_after: int = 200):
        super().__init__(length)
        self.observation_space = gym.spaces.Box(0.0, 1e6, shape=(4,), dtype=np.float32)
        self.crash_after = crash_after
        self.total_steps = 0

    def _obs(self):
        return np.array([self.episode, self.t, 0.0, 0.0], dtype=np.float32)

    def step(self, action):
        self.total_steps += 1
        if self.total_steps > self.crash_after:
            raise RuntimeError(f"the env broke on purpose after {self.crash_after} steps")
        return super().step(action)


gym.register("Crashing-v0", entry_point=CrashingEnv)
