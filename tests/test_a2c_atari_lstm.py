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

from conftest import ROOT, load_script, read_scalars, run_script


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


def test_unroll_matches_acting_and_resets_per_env(a2c):
    """The loss replays the rollout from its stored initial state: same outputs as while acting,
    and an episode end of one env restarts only that env's memory."""
    torch.manual_seed(0)
    agent = a2c.Agent(num_actions=4)
    obs = torch.randint(0, 256, (5, 2, 4, 84, 84), dtype=torch.uint8)
    dones = torch.zeros(5, 2)
    dones[1, 0] = 1.0  # env 0's episode ends at step 1
    state0 = (torch.randn(2, 288) * 0.1, torch.randn(2, 288) * 0.1)
    with torch.no_grad():
        state, acted_logits, acted_values = state0, [], []
        for t in range(5):
            logits, value, state = agent.step(obs[t], state)
            acted_logits.append(logits)
            acted_values.append(value)
            state = a2c.reset_lstm_state(state, dones[t])
        logits, values, final_state = agent.unroll(obs, state0, dones)
    torch.testing.assert_close(logits, torch.stack(acted_logits), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(values, torch.stack(acted_values), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(final_state[0], state[0], atol=1e-5, rtol=1e-5)
    # env 0 from step 2 on equals a fresh start at step 2; env 1 keeps its memory
    with torch.no_grad():
        fresh_logits, _, _ = agent.unroll(obs[2:, :1], agent.initial_state(1, "cpu"), torch.zeros(3, 1))
        cold_logits, _, _ = agent.unroll(obs[2:, 1:], agent.initial_state(1, "cpu"), torch.zeros(3, 1))
    torch.testing.assert_close(logits[2:, :1], fresh_logits, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(logits[2:, 1:], cold_logits, atol=1e-4)


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
    assert result.returncode == 2
    assert "--env-id" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()


def test_bad_resume_file_exits_2(tmp_path: Path):
    (tmp_path / "bad.pt").write_text("not a checkpoint")
    result = run_script("a2c_atari_lstm.py", ["--resume", "bad.pt"], cwd=tmp_path)
    assert result.returncode == 2 and "--resume" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists()


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
