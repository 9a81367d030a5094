"""Unit tests of ppo_discrete.py: GAE, the clipped losses, episode boundaries, determinism, bad input."""

import importlib.util
import math
from collections import deque
from pathlib import Path
from types import SimpleNamespace

import fake_envs  # noqa: F401  (registers Counting-v0)
import numpy as np
import pytest
import torch
from conftest import assert_user_error, read_scalars, run_script

TESTS_DIR = str(Path(__file__).resolve().parent)


def column(values):
    """A (T,) list -> (T, 1) tensor: one environment."""
    return torch.tensor(values, dtype=torch.float32).unsqueeze(1)


# ---------------------------------------------------------------- GAE, worked by hand
# gamma = lambda = 0.5, rewards [1, 1, 1], values [0.5, 2, 2], value after the rollout 4.
#   t=2: delta = 1 + 0.5*4 - 2 = 1                      adv = 1
#   t=1 (episode ends here): next value = final value F  delta = 1 + 0.5*F - 2
#   t=0: delta = 1 + 0.5*2 - 0.5 = 1.5                  adv = 1.5 + 0.25*adv1
def gae(ppo, dones, final_values, last_value=4.0, rewards=(1, 1, 1), values=(0.5, 2, 2)):
    adv, ret = ppo.compute_gae(
        column(rewards), column(values), column(dones), column(final_values), torch.tensor([last_value]), 0.5, 0.5
    )
    return adv.squeeze(1).tolist(), ret.squeeze(1).tolist()


def test_gae_termination_mid_rollout(ppo):
    # F = 0: adv1 = -1, and the recursion is cut there: adv0 = 1.5 + 0.25*(-1) = 1.25
    adv, ret = gae(ppo, dones=[0, 1, 0], final_values=[0, 0, 0])
    assert adv == pytest.approx([1.25, -1.0, 1.0])
    assert ret == pytest.approx([1.75, 1.0, 3.0])


def test_gae_truncation_is_bootstrapped_from_final_obs_value(ppo):
    # F = 3 (critic's value of the final observation): adv1 = 1 + 1.5 - 2 = 0.5, adv0 = 1.5 + 0.125
    adv, ret = gae(ppo, dones=[0, 1, 0], final_values=[0, 3.0, 0])
    assert adv == pytest.approx([1.625, 0.5, 1.0])
    assert ret == pytest.approx([2.125, 2.5, 3.0])


def test_gae_across_rollout_end(ppo):
    # no episode end: the last step bootstraps from last_value and the recursion runs through
    # t=1: delta = 1 + 0.5*2 - 2 = 0, adv1 = 0 + 0.25*1 = 0.25; t=0: adv0 = 1.5 + 0.25*0.25
    adv, _ = gae(ppo, dones=[0, 0, 0], final_values=[0, 0, 0])
    assert adv == pytest.approx([1.5625, 0.25, 1.0])
    # an episode terminating on the last step ignores last_value (the next episode's first obs)
    adv, _ = gae(ppo, dones=[0, 0, 1], final_values=[0, 0, 0], last_value=100.0)
    assert adv[2] == pytest.approx(1 + 0 - 2)


def test_gae_envs_are_independent(ppo):
    rewards = torch.tensor([[1.0, 1.0], [1.0, 1.0], [1.0, 1.0]])
    values = torch.tensor([[0.5, 0.5], [2.0, 2.0], [2.0, 2.0]])
    dones = torch.tensor([[0.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    final_values = torch.tensor([[0.0, 0.0], [0.0, 3.0], [0.0, 0.0]])
    adv, _ = ppo.compute_gae(rewards, values, dones, final_values, torch.tensor([4.0, 4.0]), 0.5, 0.5)
    assert adv[:, 0].tolist() == pytest.approx([1.25, -1.0, 1.0])
    assert adv[:, 1].tolist() == pytest.approx([1.625, 0.5, 1.0])


# ---------------------------------------------------------------- losses, worked by hand
def test_clipped_surrogate_and_value_loss(ppo):
    # ratios 1.5, 0.5, 1.0 (old log-probs 0); advantages 1, 1, -2; clip 0.2
    #   sample 0: max(-1.5, -1.2) = -1.2   sample 1: max(-0.5, -0.8) = -0.5   sample 2: max(2, 2) = 2
    newlogprob = torch.log(torch.tensor([1.5, 0.5, 1.0]))
    oldlogprob = torch.zeros(3)
    advantages = torch.tensor([1.0, 1.0, -2.0])
    # values: new [1, 3, 0], old [0.5, 2, 0], returns [2, 2, 1]
    #   sample 0: unclipped (1-2)^2 = 1, clipped (0.7-2)^2 = 1.69 -> 1.69
    #   sample 1: unclipped (3-2)^2 = 1, clipped (2.2-2)^2 = 0.04 -> 1
    #   sample 2: unclipped 1, clipped 1 -> 1
    newvalue, oldvalue, returns = (
        torch.tensor([1.0, 3.0, 0.0]),
        torch.tensor([0.5, 2.0, 0.0]),
        torch.tensor([2.0, 2.0, 1.0]),
    )
    pg_loss, v_loss = ppo.ppo_losses(newlogprob, oldlogprob, advantages, newvalue, oldvalue, returns, 0.2, True)
    assert pg_loss.item() == pytest.approx((-1.2 - 0.5 + 2.0) / 3)
    assert v_loss.item() == pytest.approx(0.5 * (1.69 + 1 + 1) / 3)
    _, v_loss_plain = ppo.ppo_losses(newlogprob, oldlogprob, advantages, newvalue, oldvalue, returns, 0.2, False)
    assert v_loss_plain.item() == pytest.approx(0.5)


# ---------------------------------------------------------------- episode boundaries
class RecordingWriter:
    def __init__(self):
        self.scalars = []

    def add_scalar(self, tag, value, step):
        self.scalars.append((tag, value, step))


def test_rollout_never_links_two_episodes(ppo):
    """Counting-v0 episodes last 3 steps, so a 10-step rollout crosses several boundaries."""
    torch.manual_seed(0)
    args = SimpleNamespace(env_id="Counting-v0", num_envs=2, capture_video=False)
    envs = ppo.make_vector_env(args, "test")
    agent = ppo.Agent(2, 2)
    storage = ppo.make_storage(10, 2, 2, torch.device("cpu"))
    obs, _ = envs.reset(seed=0)
    writer = RecordingWriter()
    next_obs, global_step = ppo.collect_rollout(agent, envs, torch.as_tensor(obs), storage, 0, writer, deque(maxlen=20))
    envs.close()
    assert global_step == 20
    obs, dones, final_values = storage["obs"], storage["dones"], storage["final_values"]
    for env in range(2):
        for t in range(10):
            episode, step_in_episode = obs[t, env].tolist()
            following = obs[t + 1, env].tolist() if t < 9 else next_obs[env].tolist()
            if dones[t, env] == 0:
                # a stored transition continues the same episode ...
                assert following == [episode, step_in_episode + 1]
                assert final_values[t, env] == 0
            else:
                # ... or is flagged as its end; the next stored obs is the new episode's first
                assert step_in_episode == 2 and following == [episode + 1, 0]
                if episode % 2 == 0:  # terminated: no bootstrap
                    assert final_values[t, env] == 0
                else:  # truncated: bootstrapped from the final obs [episode, 3], not the reset obs
                    expected = agent.get_value(torch.tensor([[episode, 3.0]])).item()
                    assert final_values[t, env].item() == pytest.approx(expected)
    returns = [v for tag, v, _ in writer.scalars if tag == "charts/episodic_return"]
    lengths = [v for tag, v, _ in writer.scalars if tag == "charts/episodic_length"]
    assert returns == [3.0] * 6 and lengths == [3] * 6  # 3 whole episodes per env, none split


# ---------------------------------------------------------------- whole runs
def episodic_returns(run_root: Path):
    (run_dir,) = list((run_root / "runs").iterdir())
    return read_scalars(run_dir)["charts/episodic_return"]


def test_same_seed_gives_identical_returns(tmp_path):
    args = ["--total-timesteps", "1536", "--seed", "7"]
    runs = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        result = run_script("ppo_discrete.py", args, cwd=tmp_path / name)
        assert result.returncode == 0, result.stderr
        runs.append(episodic_returns(tmp_path / name))
    assert len(runs[0]) > 10
    assert runs[0] == runs[1]


def test_custom_env_module_syntax_and_flattening(tmp_path):
    result = run_script(
        "ppo_discrete.py",
        ["--env-id", "fake_envs:GridObs-v0", "--total-timesteps", "512", "--num-envs", "2", "--save-model"]
        + ["--eval-episodes", "2"],
        cwd=tmp_path,
        env={"PYTHONPATH": TESTS_DIR},
    )
    assert result.returncode == 0, result.stderr
    assert {v for _, v in episodic_returns(tmp_path)} == {3.0}
    # the evaluation and --play make the env without a render mode, which an env of your own need not take
    (model,) = (tmp_path / "runs").glob("*/ppo_discrete.pt")
    played = run_script(
        "ppo_discrete.py",
        ["--env-id", "fake_envs:GridObs-v0", "--play", str(model), "--eval-episodes", "1"],
        cwd=tmp_path,
        env={"PYTHONPATH": TESTS_DIR},
    )
    assert played.returncode == 0 and "episode 1: score 3" in played.stdout, played.stderr


@pytest.mark.parametrize(
    "args,message",
    [
        (["--env-id", "Pendulum-v1"], "Discrete"),
        (["--env-id", "NoSuchEnv-v0"], "--env-id"),
        (["--env-id", "no_such_module:Foo-v0"], "--env-id"),
        (["--num-minibatches", "3"], "--num-minibatches"),
        (["--num-envs", "0"], "--num-envs"),
        (["--num-steps", "-5"], "--num-steps"),
        (["--total-timesteps", "100"], "--total-timesteps"),
        (["--save-demos-episodes", "2"], "--save-model"),
    ],
)
def test_bad_input_one_line_exit_2_nothing_written(args, message, tmp_path):
    result = run_script("ppo_discrete.py", args, cwd=tmp_path)
    assert_user_error(result, tmp_path, message)


def test_saved_model_loads_and_demos_export(tmp_path, ppo):
    result = run_script(
        "ppo_discrete.py",
        ["--total-timesteps", "1024", "--save-model", "--eval-episodes", "2", "--save-demos-episodes", "2"],
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    (run_dir,) = list((tmp_path / "runs").iterdir())
    agent, saved_args = ppo.load_model(str(run_dir / "ppo_discrete.pt"), "CartPole-v1")
    assert saved_args["env_id"] == "CartPole-v1" and isinstance(agent, ppo.Agent)
    demos = np.load(run_dir / "demos.npz")
    assert demos["obs"].dtype == np.float32 and demos["obs"].shape[1] == 4
    assert demos["actions"].dtype == np.int64 and len(demos["actions"]) == len(demos["obs"])
    assert len(demos["episode_returns"]) == 2
    assert demos["episode_lengths"].dtype == np.int64 and demos["episode_lengths"].sum() == len(demos["actions"])
    assert math.isclose(demos["episode_returns"].sum(), len(demos["actions"]))  # CartPole: reward 1 a step
    assert len(read_scalars(run_dir)["eval/episodic_return"]) == 2


@pytest.mark.slow
def test_learns_cartpole(tmp_path):
    result = run_script("ppo_discrete.py", ["--total-timesteps", "150000"], cwd=tmp_path, timeout=900)
    assert result.returncode == 0, result.stderr
    last = [v for _, v in episodic_returns(tmp_path)][-20:]
    assert np.mean(last) > 300


def test_policy_matches_torch_categorical(ppo):
    """The written-out categorical gives torch.distributions.Categorical's log-probs and entropy."""
    torch.manual_seed(0)
    agent = ppo.Agent(4, 3)
    x = torch.randn(6, 4)
    actions = torch.tensor([0, 1, 2, 2, 1, 0])
    _, logprob, entropy, value = agent.get_action_and_value(x, actions)
    reference = torch.distributions.Categorical(logits=agent.actor(x))
    assert torch.allclose(logprob, reference.log_prob(actions), atol=1e-6)
    assert torch.allclose(entropy, reference.entropy(), atol=1e-6)
    sampled, sampled_logprob, sampled_value = agent.act(x)
    assert torch.allclose(sampled_logprob, reference.log_prob(sampled), atol=1e-6)
    assert torch.allclose(sampled_value, value.squeeze(-1))


@pytest.mark.skipif(
    None in (importlib.util.find_spec("moviepy"), importlib.util.find_spec("pygame")),
    reason='needs the video extra: pip install -e ".[video]"',
)
def test_play_capture_video_writes_mp4(tmp_path):
    """`--capture-video` with the video extra alone: classic control renders through pygame."""
    trained = run_script("ppo_discrete.py", ["--total-timesteps", "512", "--save-model"], cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    (model,) = (tmp_path / "runs").glob("*/ppo_discrete.pt")
    play_dir = tmp_path / "play"
    play_dir.mkdir()
    played = run_script(
        "ppo_discrete.py", ["--play", str(model), "--eval-episodes", "2", "--capture-video"], cwd=play_dir
    )
    assert played.returncode == 0, played.stderr
    assert "error" not in played.stderr.lower(), played.stderr  # no false error line without a display
    assert len(list(play_dir.glob("videos/*/*.mp4"))) == 2
    assert not (play_dir / "runs").exists()
