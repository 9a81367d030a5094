"""Unit tests of a2c_atari_lstm.py: returns, the LSTM state handling, the two env backends,
checkpoint/resume, Ctrl-C and bad input. Expected values are worked out by hand in the comments."""

import os
import signal
import subprocess
import time
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import ROOT, assert_user_error, load_script, read_scalars, run_script


@pytest.fixture(scope="module")
def a2c():
    return load_script("a2c_atari_lstm")


def col(*values):
    return torch.tensor(values, dtype=torch.float32)


def test_returns_with_episode_end_mid_rollout(a2c):
    # 5-step rollout, gamma 0.5, rewards 1 0 2 0 1, the critic values the observation after the rollout at 10.
    # env 0: terminated at step 2 -> nothing is bootstrapped there.
    #   R4 = 1 + .5*10 = 6, R3 = 0 + .5*6 = 3, R2 = 2 (end), R1 = 0 + .5*2 = 1, R0 = 1 + .5*1 = 1.5
    # env 1: truncated at step 2, critic's value of its final observation 4 -> bootstrapped.
    #   R4 = 6, R3 = 3, R2 = 2 + .5*4 = 4, R1 = .5*4 = 2, R0 = 1 + .5*2 = 2
    rewards = torch.stack([col(1, 0, 2, 0, 1), col(1, 0, 2, 0, 1)], dim=1)
    dones = torch.zeros(5, 2)
    dones[2] = 1.0
    final_values = torch.zeros(5, 2)
    final_values[2, 1] = 4.0
    returns = a2c.discounted_returns(rewards, dones, final_values, col(10, 10), gamma=0.5)
    torch.testing.assert_close(returns[:, 0], col(1.5, 1, 2, 3, 6))
    torch.testing.assert_close(returns[:, 1], col(2, 2, 4, 3, 6))


def test_dones_last_regression(a2c):
    # The article masks every step with dones[-1]. Rewards 1 0 2 0 1, gamma 0.5, last value 10.
    # Episode ends at the LAST step only: the article zeroes all five returns (dones[-1] = 1);
    # correct: R4 = 1, R3 = .5, R2 = 2.25, R1 = 1.125, R0 = 1.5625.
    rewards = col(1, 0, 2, 0, 1).unsqueeze(1)
    dones = col(0, 0, 0, 0, 1).unsqueeze(1)
    returns = a2c.discounted_returns(rewards, dones, torch.zeros(5, 1), col(10), gamma=0.5)
    torch.testing.assert_close(returns[:, 0], col(1.5625, 1.125, 2.25, 0.5, 1.0))
    # Episode ends at step 1 only: the article (dones[-1] = 0) leaks R2 into R1: 0 + .5*R2 with
    # R2 = 2 + .5*(0 + .5*6) = 3.5. Correct: R1 = 0, R0 = 1; the new episode R2 = 3.5, R3 = 3, R4 = 6.
    dones = col(0, 1, 0, 0, 0).unsqueeze(1)
    returns = a2c.discounted_returns(rewards, dones, torch.zeros(5, 1), col(10), gamma=0.5)
    torch.testing.assert_close(returns[:, 0], col(1.0, 0.0, 3.5, 3.0, 6.0))


def test_gae_lambda_one_equals_nstep_returns(a2c):
    gen = torch.Generator().manual_seed(0)
    rewards = torch.randn(5, 6, generator=gen)
    values = torch.randn(5, 6, generator=gen)
    dones = (torch.rand(5, 6, generator=gen) < 0.3).float()
    final_values = torch.randn(5, 6, generator=gen) * dones
    last_value = torch.randn(6, generator=gen)
    nstep = a2c.discounted_returns(rewards, dones, final_values, last_value, 0.99)
    _, gae_returns = a2c.compute_gae(rewards, values, dones, final_values, last_value, 0.99, 1.0)
    torch.testing.assert_close(gae_returns, nstep)
    _, gae_returns_095 = a2c.compute_gae(rewards, values, dones, final_values, last_value, 0.99, 0.95)
    assert not torch.allclose(gae_returns_095, nstep)  # lambda matters, so the equality above means something


def test_lstm_reset_zeroes_only_ended_envs(a2c):
    h, c = torch.randn(4, 288), torch.randn(4, 288)
    new_h, new_c = a2c.reset_lstm_state((h, c), torch.tensor([0.0, 1.0, 0.0, 1.0]))
    for i, ended in enumerate([False, True, False, True]):
        expected_h, expected_c = (torch.zeros(288), torch.zeros(288)) if ended else (h[i], c[i])
        assert torch.equal(new_h[i], expected_h) and torch.equal(new_c[i], expected_c)


class ScriptedGames:
    """Stands in for AtariGames: replays given frames and episode ends."""

    def __init__(self, frames, terminated, truncated, final_frames):
        self.frames, self.terminated, self.truncated, self.final_frames, self.t = frames, terminated, truncated, final_frames, 0

    def step(self, actions):
        t, self.t = self.t, self.t + 1
        reward = np.full(len(actions), float(t))
        no_games = (np.zeros(0), np.zeros(0, dtype=np.int64))
        return self.frames[t + 1].numpy(), reward, self.terminated[t], self.truncated[t], {"final_obs": self.final_frames[t]}, no_games

    def final_obs(self, infos, indices):
        return infos["final_obs"][indices].numpy()


class NoWriter:
    def add_scalar(self, *args):
        pass


def test_rollout_lstm_state_and_truncation_bootstrap(a2c):
    """collect_rollout as the script runs it, on 3 scripted games: env 0 terminates at step 1, env 2 is
    truncated at step 3, env 1 runs on. The state is zeroed for exactly the ended env at exactly that
    step, a truncation is valued with the state it belongs to, and the graph reaches the network but not
    the state carried in from the previous rollout."""
    torch.manual_seed(0)
    agent = a2c.Agent(num_actions=4)
    frames = torch.randint(0, 256, (6, 3, 4, 84, 84), dtype=torch.uint8)
    final_frames = torch.randint(0, 256, (5, 3, 4, 84, 84), dtype=torch.uint8)
    terminated, truncated = np.zeros((5, 3), bool), np.zeros((5, 3), bool)
    terminated[1, 0] = True
    truncated[3, 2] = True
    games = ScriptedGames(frames, terminated, truncated, final_frames)
    storage = a2c.make_storage(5, 3, "cpu")
    state0 = (torch.randn(3, 288, requires_grad=True), torch.randn(3, 288, requires_grad=True))
    next_obs, state, global_step, logits, values = a2c.collect_rollout(
        agent, games, frames[0], state0, storage, 0, NoWriter(), [], "cpu"
    )
    assert global_step == 15 and torch.equal(next_obs, frames[5])
    assert logits.shape == (5, 3, 4) and values.shape == (5, 3) and logits.requires_grad
    expected_dones = torch.zeros(5, 3)
    expected_dones[1, 0] = expected_dones[3, 2] = 1.0
    assert torch.equal(storage["dones"], expected_dones)
    torch.testing.assert_close(storage["rewards"][:, 0], torch.tensor([0.0, 1.0, 1.0, 1.0, 1.0]))  # clipped to 1
    with torch.no_grad():
        # env 0 from step 2 on is a fresh start; env 1 is not
        fresh = agent.initial_state(1, "cpu")
        for t in range(2, 5):
            fresh_logits, _, fresh = agent.step(frames[t, :1], fresh)
            torch.testing.assert_close(logits[t, :1], fresh_logits, atol=1e-5, rtol=1e-5)
        cold = agent.initial_state(1, "cpu")
        for t in range(2, 5):
            cold_logits, _, cold = agent.step(frames[t, 1:2], cold)
        assert not torch.allclose(logits[4, 1:2], cold_logits, atol=1e-4)
        # env 2: truncated at step 3 -> V(final frame) with the state after step 3, not zero
        st = (state0[0][2:], state0[1][2:])
        for t in range(4):
            _, _, st = agent.step(frames[t, 2:], st)
        _, final_value, _ = agent.step(final_frames[3, 2:], st)
    torch.testing.assert_close(storage["final_values"][3, 2:], final_value)
    assert storage["final_values"].count_nonzero() == 1
    values.sum().backward()
    assert agent.convs[0].weight.grad is not None and state0[0].grad is None  # detached at the boundary


def test_network_shape_and_init(a2c):
    agent = a2c.Agent(num_actions=6)
    assert agent.convs(torch.zeros(2, 4, 84, 84)).shape == (2, 288)
    convs = [m for m in agent.convs if isinstance(m, torch.nn.Conv2d)]
    assert [(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding) for m in convs] == [
        (4, 32, (3, 3), (2, 2), (1, 1))
    ] + [(32, 32, (3, 3), (2, 2), (1, 1))] * 3
    # orthogonal with leaky-relu gain: W W^T = gain^2 I on the flattened (32 x fan_in) weight
    w = convs[1].weight.reshape(32, -1)
    gain = torch.nn.init.calculate_gain("leaky_relu")
    torch.testing.assert_close(w @ w.T, gain**2 * torch.eye(32), atol=1e-4, rtol=1e-4)
    assert (agent.lstm.input_size, agent.lstm.hidden_size) == (288, 288)


def test_sample_actions_follows_the_policy(a2c):
    # probabilities 0.1 / 0.2 / 0.7 in every row; 20,000 samples each -> frequencies within 4 standard errors
    # (sd of a frequency <= sqrt(.25 / 20000) = 0.0035)
    torch.manual_seed(0)
    logits = torch.log(torch.tensor([[0.1, 0.2, 0.7]])).expand(20_000, 3) + 3.0  # shifted logits, same policy
    actions = a2c.sample_actions(logits)
    assert actions.shape == (20_000,) and actions.dtype == torch.long
    freqs = torch.bincount(actions, minlength=3).float() / 20_000
    torch.testing.assert_close(freqs, torch.tensor([0.1, 0.2, 0.7]), atol=0.014, rtol=0)
    assert (a2c.sample_actions(torch.tensor([[0.0, -1e9, -1e9]] * 50)) == 0).all()  # a certain action always


def test_backends_same_frames_and_whole_game_score(a2c):
    """Same actions, no noops: both backends give the same frames, rewards and life-loss ends; the
    whole-game score is the unclipped sum over all lives."""
    games = {b: a2c.AtariGames("BreakoutNoFrameskip-v4", 1, b, seed=0, noop_max=0) for b in ("ale", "gymnasium")}
    obs = {b: g.reset() for b, g in games.items()}
    assert obs["ale"].shape == (1, 4, 84, 84) and obs["ale"].dtype == np.uint8
    assert np.array_equal(obs["ale"], obs["gymnasium"])
    rng = np.random.default_rng(0)
    score, life_ends, ended = 0.0, 0, None
    for _ in range(3000):
        action = rng.integers(0, 4, size=1)
        out = {b: g.step(action) for b, g in games.items()}
        (o1, r1, te1, tr1, _, end1), (o2, r2, te2, tr2, _, end2) = out["ale"], out["gymnasium"]
        assert np.array_equal(o1, o2) and np.array_equal(r1, r2)
        assert np.array_equal(te1, te2) and np.array_equal(tr1, tr2)
        assert np.array_equal(end1[0], end2[0])
        score += float(r1[0])
        life_ends += int(te1[0])
        if len(end1[0]):
            ended = end1
            break
    for g in games.values():
        g.close()
    assert ended is not None, "no game ended in 3000 steps"
    assert life_ends == 5  # Breakout: 5 lives, each loss ends a training episode
    assert ended[0][0] == score and score >= 0


def test_non_atari_env_id_exits_2(tmp_path: Path):
    result = run_script("a2c_atari_lstm.py", ["--env-id", "CartPole-v1"], cwd=tmp_path)
    assert_user_error(result, tmp_path, "--env-id")


def test_bad_resume_file_exits_2(tmp_path: Path):
    (tmp_path / "bad.pt").write_text("not a checkpoint")
    result = run_script("a2c_atari_lstm.py", ["--resume", "bad.pt"], cwd=tmp_path)
    assert_user_error(result, tmp_path, "--resume")


def test_checkpoint_resumes_same_parameters_and_step(tmp_path: Path):
    common = ["--env-id", "BreakoutNoFrameskip-v4", "--num-envs", "2", "--checkpoint-interval", "40"]
    first = run_script("a2c_atari_lstm.py", [*common, "--total-timesteps", "80"], cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    (run_dir,) = list((tmp_path / "runs").iterdir())
    ckpt_path = run_dir / "checkpoint.pt"
    ckpt = torch.load(ckpt_path, weights_only=True)
    assert ckpt["global_step"] == 80 and ckpt["args"]["checkpoint_interval"] == 40
    # resuming with nothing left to do saves exactly the checkpoint's parameters
    again = run_script(
        "a2c_atari_lstm.py",
        ["--resume", str(ckpt_path), "--total-timesteps", "80", "--save-model", "--eval-episodes", "0"],
        cwd=tmp_path,
    )
    assert again.returncode == 0, again.stderr[-2000:]
    assert "at step 80" in again.stdout
    saved = torch.load(run_dir / "a2c_atari_lstm.pt", weights_only=True)["model"]
    assert saved.keys() == ckpt["model"].keys()
    assert all(torch.equal(saved[k], ckpt["model"][k]) for k in saved)
    # resuming further continues the same run directory and its curve after step 80; the
    # checkpoint's settings are kept (2 envs, interval 40: a checkpoint at 160)
    more = run_script("a2c_atari_lstm.py", ["--resume", str(ckpt_path), "--total-timesteps", "160"], cwd=tmp_path)
    assert more.returncode == 0, more.stderr[-2000:]
    assert list((tmp_path / "runs").iterdir()) == [run_dir]
    assert torch.load(ckpt_path, weights_only=True)["global_step"] == 160
    sps_steps = [s for s, _ in read_scalars(run_dir)["charts/SPS"]]
    assert sorted(sps_steps) == [80, 160]  # one curve: the first run's last point, then the resumed run's


def test_ctrl_c_saves_checkpoint_and_exits_130(tmp_path: Path):
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "a2c_atari_lstm.py"), "--env-id", "BreakoutNoFrameskip-v4", "--save-model"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        # as from a terminal: a background parent (CI, `cmd &`) may have SIGINT ignored, which children inherit
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert "run dir" in proc.stdout.readline()  # printed when training starts
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-2000:]
    (run_dir,) = list((tmp_path / "runs").iterdir())
    ckpt = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    assert ckpt["global_step"] > 0 and set(ckpt) >= {"model", "optimizer", "args", "run_name"}
    assert (run_dir / "a2c_atari_lstm.pt").exists()
