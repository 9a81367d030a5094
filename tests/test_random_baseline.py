"""random_baseline.py: episode counting, the summary line, the saved summary and bad input."""

import re

import gymnasium as gym
import numpy as np
import pytest
import torch
from conftest import assert_user_error, load_script, read_scalars, run_script

SUMMARY = re.compile(r"^Average score across (\d+) episodes: (-?[\d.]+) ± ([\d.]+) \((-?[\d.e+]+) \.\. (-?[\d.e+]+)\)$")


@pytest.fixture(scope="module")
def rb():
    return load_script("random_baseline")


class FixedLengthEnv(gym.Env):
    """Every episode lasts `length` steps with reward 1 per step (so return == length)."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, length: int):
        self.length, self.t = length, 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(1, np.float32), {}

    def step(self, action):
        self.t += 1
        return np.zeros(1, np.float32), 1.0, self.t >= self.length, False, {}


def test_episode_quotas(rb):
    assert rb.episode_quotas(5, 3).tolist() == [2, 2, 1]
    assert rb.episode_quotas(4000, 1).tolist() == [4000]
    assert rb.episode_quotas(2, 4).tolist() == [1, 1, 0, 0]


def test_run_episodes_counts_a_fixed_share_per_env(rb):
    # env 0 ends an episode every step, env 1 every 5 steps. Counting the first 4 episodes to end
    # would give four 1-step episodes; a fixed share gives two of each, found at vector steps 1, 2, 5, 10.
    envs = gym.vector.SyncVectorEnv(
        [lambda: FixedLengthEnv(1), lambda: FixedLengthEnv(5)], autoreset_mode=gym.vector.AutoresetMode.SAME_STEP
    )
    envs = gym.wrappers.vector.RecordEpisodeStatistics(envs)
    envs.reset(seed=0)
    envs.action_space.seed(0)
    seen = []
    finished = rb.run_episodes(envs, 4, on_episode=lambda step, ret, length: seen.append((step, ret, length)))
    assert [(s, i, r, n) for s, i, r, n in finished] == [
        (2, 0, 1.0, 1),
        (4, 0, 1.0, 1),
        (10, 1, 5.0, 5),
        (20, 1, 5.0, 5),
    ]
    assert seen == [(2, 1.0, 1), (4, 1.0, 1), (10, 5.0, 5), (20, 5.0, 5)]


def test_action_repeat_keeps_the_action(rb):
    class Fake:
        class action_space:
            @staticmethod
            def sample():
                return np.array([7, 7, 7])

    old = np.array([1, 2, 3])
    since = np.array([0, 3, 6])  # with repeat 3: envs 0 and 2 are due a new action, env 1 too (3 % 3 == 0)
    assert rb.sample_actions(Fake, old, since, 3).tolist() == [7, 7, 7]
    assert rb.sample_actions(Fake, old, np.array([1, 2, 6]), 3).tolist() == [1, 2, 7]
    assert rb.sample_actions(Fake, old, np.array([1, 2, 4]), 1).tolist() == [7, 7, 7]


def test_summary_line(rb):
    # mean 2.5, population std sqrt(1.25) = 1.118
    assert rb.summary_line([1.0, 2.0, 3.0, 4.0]) == "Average score across 4 episodes: 2.50 ± 1.12 (1 .. 4)"
    assert rb.summary_line([-21.0, -20.0]) == "Average score across 2 episodes: -20.50 ± 0.50 (-21 .. -20)"


def test_cli_counts_episodes_and_is_seeded(tmp_path):
    outputs = []
    for attempt in ("a", "b"):
        cwd = tmp_path / attempt
        cwd.mkdir()
        args = ["--env-id", "CartPole-v1", "--num-episodes", "5", "--num-envs", "2", "--seed", "3", "--save-model"]
        result = run_script("random_baseline.py", args, cwd=cwd)
        assert result.returncode == 0, result.stderr[-3000:]
        lines = result.stdout.strip().splitlines()
        match = [SUMMARY.match(line) for line in lines if line.startswith("Average score")]
        assert len(match) == 1 and match[0], lines
        run_dir = next((cwd / "runs").iterdir())
        scalars = read_scalars(run_dir)
        returns = [v for _, v in scalars["charts/episodic_return"]]
        assert len(returns) == 5 and len(scalars["charts/episodic_length"]) == 5
        assert int(match[0].group(1)) == 5
        assert match[0].group(2) == f"{np.mean(returns):.2f}" and match[0].group(3) == f"{np.std(returns):.2f}"
        assert float(match[0].group(4)) == min(returns) and float(match[0].group(5)) == max(returns)
        # window 100 > 5 episodes: the last moving average is the mean of all five
        assert scalars["charts/moving_average_return"][-1][1] == pytest.approx(np.mean(returns))
        saved = torch.load(next(run_dir.glob("*.pt")), weights_only=True)
        assert saved["model"] == {} and saved["args"]["num_episodes"] == 5
        assert saved["episode_returns"].tolist() == returns
        outputs.append(returns)
    assert outputs[0] == outputs[1], "same seed, different episodes"


@pytest.mark.parametrize(
    "args,flag",
    [
        (["--env-id", "NoSuchEnv-v0"], "--env-id"),
        (["--num-episodes", "0"], "--num-episodes"),
    ],
)
def test_bad_input(args, flag, tmp_path):
    result = run_script("random_baseline.py", args, cwd=tmp_path)
    assert_user_error(result, tmp_path, flag)
