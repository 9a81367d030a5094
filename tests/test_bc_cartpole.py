"""Behaviour cloning's loss, the demonstrations file (shared format of bc_cartpole.py and
gail_cartpole.py) and the bad-input paths."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import assert_user_error, load_script, raises_user_error, read_scalars, run_script


@pytest.fixture(scope="module")
def bc():
    return load_script("bc_cartpole")


def test_bc_loss_is_the_negative_log_likelihood(bc):
    # softmax([ln 3, 0]) = [3/4, 1/4]; softmax([0, 0]) = [1/2, 1/2]
    logits = torch.tensor([[0.0, 0.0], [math.log(3.0), 0.0], [math.log(3.0), 0.0]])
    actions = torch.tensor([0, 0, 1])
    expected = (math.log(2.0) + -math.log(0.75) + math.log(4.0)) / 3  # = 0.789041
    loss = bc.bc_loss(logits, actions)
    assert loss.item() == pytest.approx(0.789041, abs=1e-6)
    assert loss.item() == pytest.approx(expected, abs=1e-6)
    assert loss.item() == pytest.approx(F.cross_entropy(logits, actions).item(), abs=1e-6)


def test_bc_loss_gradient_raises_the_expert_action(bc):
    policy = bc.PolicyNet(4, 128, 3)
    obs, actions = torch.randn(8, 4), torch.full((8,), 2)
    optimizer = torch.optim.Adam(policy.parameters(), lr=1e-2)
    before = torch.softmax(policy(obs), 1)[:, 2].mean().item()
    for _ in range(20):
        loss = bc.bc_loss(policy(obs), actions)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert torch.softmax(policy(obs), 1)[:, 2].mean().item() > max(before, 0.9)


def test_select_demonstrations(bc):
    obs = np.arange(10, dtype=np.float32).reshape(5, 2)
    actions = np.array([0, 1, 0, 1, 1])
    lengths = np.array([3, 2])
    o, a = bc.select_demonstrations(obs, actions, lengths, 1, 0, seed=1)  # first episode, all pairs
    assert o.tolist() == obs[:3].tolist() and a.tolist() == [0, 1, 0]
    o, a = bc.select_demonstrations(obs, actions, lengths, 2, -1, seed=1)
    assert len(a) == 5
    o, a = bc.select_demonstrations(obs, actions, lengths, 1, 2, seed=1)  # 2 distinct pairs of episode 1
    rows = {tuple(r) for r in o.tolist()}
    assert len(rows) == 2 and rows <= {tuple(r) for r in obs[:3].tolist()}
    # the inline path (lengths unknown, all sampled episodes) draws the same pairs as the file path
    o1, a1 = bc.select_demonstrations(obs, actions, None, 1, 3, seed=7)
    o2, a2 = bc.select_demonstrations(obs, actions, lengths, 2, 3, seed=7)
    assert o1.tolist() == o2.tolist() and a1.tolist() == a2.tolist()


def test_demonstrations_file_round_trip(bc, tmp_path):
    rng = np.random.default_rng(0)
    obs, actions = rng.normal(size=(7, 4)), rng.integers(0, 2, size=7)
    path = str(tmp_path / "demos.npz")
    bc.save_demonstrations(path, obs, actions, [12.0, 30.0], [3, 4])
    both = bc.Args(expert_data=path, num_expert_episodes=2, num_expert_samples=0)
    o, a, mean_return, lengths = bc.load_demonstrations(both, obs_dim=4, num_actions=2)
    assert o.dtype == np.float32 and a.dtype == np.int64
    np.testing.assert_allclose(o, obs.astype(np.float32))
    assert a.tolist() == actions.tolist() and mean_return == 21.0 and lengths.tolist() == [3, 4]
    # the first episode only; then 2 of its 3 pairs; the mean return stays the file's
    first = bc.Args(expert_data=path, num_expert_episodes=1, num_expert_samples=0)
    o, a, mean_return, lengths = bc.load_demonstrations(first, obs_dim=4, num_actions=2)
    assert a.tolist() == actions[:3].tolist() and mean_return == 21.0 and lengths.tolist() == [3]
    two = bc.Args(expert_data=path, num_expert_episodes=1, num_expert_samples=2, seed=3)
    o, a, _, _ = bc.load_demonstrations(two, obs_dim=4, num_actions=2)
    assert len(a) == 2 and {tuple(r) for r in o.tolist()} <= {tuple(r) for r in obs[:3].astype(np.float32).tolist()}
    # optional keys may be missing: all pairs of an unknown number of episodes, no return
    np.savez(path, obs=obs.astype(np.float32), actions=actions.astype(np.int64))
    many = bc.Args(expert_data=path, num_expert_episodes=5, num_expert_samples=0)
    o, a, mean_return, lengths = bc.load_demonstrations(many, obs_dim=4, num_actions=2)
    assert np.isnan(mean_return) and lengths is None and len(a) == 7


def write_bad_files(tmp: Path) -> dict:
    good_obs, good_actions = np.zeros((6, 4), np.float32), np.zeros(6, np.int64)
    files = {}
    files["missing"] = tmp / "nope.npz"
    files["not_npz"] = tmp / "not_npz.npz"
    files["not_npz"].write_text("obs,actions\n")
    cases = {
        "no_actions": dict(obs=good_obs),
        "obs_dim_5": dict(obs=np.zeros((6, 5), np.float32), actions=good_actions),
        "obs_1d": dict(obs=np.zeros(6, np.float32), actions=good_actions),
        "float_actions": dict(obs=good_obs, actions=np.zeros(6, np.float32)),
        "action_2_of_2": dict(obs=good_obs, actions=np.array([0, 1, 2, 0, 1, 0])),
        "negative_action": dict(obs=good_obs, actions=-good_actions - 1),
        "length_mismatch": dict(obs=good_obs, actions=np.zeros(5, np.int64)),
        "empty": dict(obs=np.zeros((0, 4), np.float32), actions=np.zeros(0, np.int64)),
        "nan_obs": dict(obs=np.full((6, 4), np.nan, np.float32), actions=good_actions),
        "bad_lengths": dict(obs=good_obs, actions=good_actions, episode_lengths=np.array([2, 2])),
        "too_few_episodes": dict(obs=good_obs, actions=good_actions, episode_lengths=np.array([6]), _episodes=2),
        "pickled_object": dict(obs=np.array([None] * 6, dtype=object), actions=good_actions),
    }
    for name, arrays in cases.items():
        arrays = {k: v for k, v in arrays.items() if not k.startswith("_")}
        files[name] = tmp / f"{name}.npz"
        np.savez(files[name], **arrays)
    return files


def test_bad_demonstration_files_fail_with_one_line(bc, tmp_path):
    for name, path in write_bad_files(tmp_path).items():
        episodes = 2 if "episodes" in name else 1
        args = bc.Args(expert_data=str(path), num_expert_episodes=episodes)
        message = raises_user_error(bc, lambda: bc.load_demonstrations(args, obs_dim=4, num_actions=2))
        assert message.startswith("--expert-data"), (name, message)


@pytest.mark.parametrize(
    "script,args",
    [
        ("bc_cartpole.py", ["--expert-data", "not_npz.npz"]),
        ("bc_cartpole.py", ["--env-id", "Acrobot-v1", "--expert-data", "cartpole_demos.npz"]),
        ("bc_cartpole.py", ["--env-id", "Pendulum-v1"]),
    ],
    ids=["unreadable", "obs-dim-of-another-env", "continuous-actions"],
)
def test_bad_input_exits_2_before_writing(script, args, tmp_path):
    write_bad_files(tmp_path)
    np.savez(tmp_path / "cartpole_demos.npz", obs=np.zeros((6, 4), np.float32), actions=np.zeros(6, np.int64))
    result = run_script(script, args, cwd=tmp_path, timeout=60)
    assert_user_error(result, tmp_path)


def test_ppo_discrete_export_is_loaded_by_bc(tmp_path):
    """ppo_discrete.py --save-demos-episodes writes a file bc_cartpole.py --expert-data reads."""
    result = run_script(
        "ppo_discrete.py",
        ["--total-timesteps", "1024", "--save-model", "--eval-episodes", "1", "--save-demos-episodes", "2"],
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    (demos_path,) = (tmp_path / "runs").glob("*/demos.npz")
    with np.load(demos_path) as data:
        n, expected_return = len(data["actions"]), float(np.mean(data["episode_returns"]))
    work = tmp_path / "bc"
    work.mkdir()
    result = run_script(
        "bc_cartpole.py",
        ["--expert-data", str(demos_path)]
        + "--num-expert-episodes 2 --num-expert-samples 0 --bc-iterations 20 --eval-interval 10".split()
        + "--eval-episodes 1 --final-eval-episodes 1".split(),
        cwd=work,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"cloning {n} expert state-action pairs (the file's return: {expected_return:.1f})" in result.stdout
    (run_dir,) = (work / "runs").iterdir()
    scalars = read_scalars(run_dir)
    assert scalars["charts/expert_return"][0][1] == pytest.approx(expected_return)
    assert len(scalars["losses/bc_loss"]) == 20 and [s for s, _ in scalars["eval/episodic_return"]] == [10, 20]


def test_greedy_demonstrations_take_the_argmax_action(bc):
    # logits favour action 1 only slightly (p = 0.525): greedy episodes record action 1 at every
    # step, sampled ones (the article's demonstrations) record both actions
    def logits_fn(x):
        return torch.tensor([[0.0, 0.1]]).expand(len(x), 2)

    _, _, _, greedy_actions = bc.run_episodes(logits_fn, "CartPole-v1", 3, 0, torch.device("cpu"), greedy=True)
    torch.manual_seed(0)
    _, _, _, sampled_actions = bc.run_episodes(logits_fn, "CartPole-v1", 3, 0, torch.device("cpu"), greedy=False)
    assert set(greedy_actions.tolist()) == {1}
    assert set(sampled_actions.tolist()) == {0, 1}


# --- CartPole-v0 (article 003's env, 200-step limit) -------------------------------------------


def balancer_logits(x: torch.Tensor) -> torch.Tensor:
    """A fixed controller that keeps CartPole's pole up for hundreds of steps, as logits."""
    score = 3 * x[:, 2] + x[:, 3] + 0.1 * x[:, 0] + 0.3 * x[:, 1]
    return torch.stack([-score, score], dim=1)


def test_cartpole_v0_episodes_are_truncated_at_200(bc):
    assert bc.reward_threshold("CartPole-v0") == 195  # "solved" in article 003
    returns, lengths, obs, actions = bc.run_episodes(balancer_logits, "CartPole-v0", 2, 0, torch.device("cpu"), True)
    assert lengths == [200, 200] and returns == [200.0, 200.0] and len(obs) == len(actions) == 400


def test_cartpole_v0_tiny_run(tmp_path):
    args = ["--env-id", "CartPole-v0", "--expert-timesteps", "0", "--num-expert-episodes", "3"]
    args += ["--bc-iterations", "2", "--eval-interval", "1", "--eval-episodes", "1", "--final-eval-episodes", "1"]
    result = run_script("bc_cartpole.py", args, cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    (run_dir,) = (tmp_path / "runs").iterdir()
    with np.load(run_dir / "demos.npz") as demos:
        lengths = demos["episode_lengths"]
        assert len(lengths) == 3 and lengths.max() <= 200 and lengths.sum() == len(demos["actions"])
    scalars = read_scalars(run_dir)
    assert len(scalars["losses/bc_loss"]) == 2 and [s for s, _ in scalars["eval/episodic_return"]] == [1, 2]
