"""Unit tests of a2c_atari_lstm.py: returns, the LSTM state handling, the two env backends,
checkpoint/resume, play, signals and bad input. Expected values are worked out by hand in the comments."""

import importlib.util
import signal
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import assert_user_error, load_script, read_scalars, run_script, signal_when, start_script

SCRIPT = "a2c_atari_lstm.py"
BREAKOUT = ["--env-id", "BreakoutNoFrameskip-v4"]


@pytest.fixture(scope="module")
def a2c():
    return load_script("a2c_atari_lstm")


def col(*values):
    return torch.tensor(values, dtype=torch.float32)


def nstep_returns(a2c, rewards, dones, final_values, last_value, gamma):
    """The article's n-step returns are GAE with lambda 1: the values cancel, so any values give them."""
    values = torch.randn(rewards.shape, generator=torch.Generator().manual_seed(0)) * 5
    _, returns = a2c.compute_gae(rewards, values, dones, final_values, last_value, gamma, 1.0)
    return returns


def article_returns(rewards, dones, final_value, gamma):
    """The article's `_discount_rewards`: every step masked with `dones[-1]`, through `masked_scatter`."""
    keep = (1 - dones[-1]).bool()
    ret = torch.zeros_like(final_value).masked_scatter(keep, final_value)
    out = torch.zeros_like(rewards)
    for t in reversed(range(rewards.shape[0])):
        ret = torch.zeros_like(ret).masked_scatter(keep, rewards[t] + gamma * ret)
        out[t] = ret
    return out


def test_returns_with_episodes_ending_at_different_steps(a2c):
    # 5-step rollout, gamma 0.5, rewards 1 0 2 0 1 in every game; the critic values the observation
    # after the rollout at 10, 20, 30 (games 0, 1, 2).
    # game 0 terminated at the LAST step: R4 = 1, R3 = .5, R2 = 2.25, R1 = 1.125, R0 = 1.5625
    # game 1 terminated at step 1: R4 = 1 + .5*20 = 11, R3 = 5.5, R2 = 2 + 2.75 = 4.75, R1 = 0, R0 = 1
    # game 2 truncated at step 2, critic's value of its final observation 4:
    #   R4 = 1 + .5*30 = 16, R3 = 8, R2 = 2 + .5*4 = 4, R1 = .5*4 = 2, R0 = 1 + .5*2 = 2
    rewards = col(1, 0, 2, 0, 1).unsqueeze(1).repeat(1, 3)
    dones, final_values = torch.zeros(5, 3), torch.zeros(5, 3)
    dones[4, 0] = dones[1, 1] = dones[2, 2] = 1.0
    final_values[2, 2] = 4.0
    returns = nstep_returns(a2c, rewards, dones, final_values, col(10, 20, 30), gamma=0.5)
    torch.testing.assert_close(returns[:, 0], col(1.5625, 1.125, 2.25, 0.5, 1.0))
    torch.testing.assert_close(returns[:, 1], col(1.0, 0.0, 4.75, 5.5, 11.0))
    torch.testing.assert_close(returns[:, 2], col(2.0, 2.0, 4.0, 8.0, 16.0))
    # the article: dones[-1] = (1, 0, 0), so masked_scatter packs its source into games 1 and 2 in
    # order: R = (0, 10, 20) before the loop (games 1, 2 get the bootstraps of games 0, 1), then at
    # step 4 the source (1 + .5*0, 1 + .5*10, 1 + .5*20) = (1, 6, 11) gives R4 = (0, 1, 6), not (1, 11, 16)
    article = article_returns(rewards, dones, col(10, 20, 30), 0.5)
    torch.testing.assert_close(article[4], col(0.0, 1.0, 6.0))
    assert not torch.allclose(article, returns)


def test_dones_last_regression(a2c):
    # The article masks every step with dones[-1]. Rewards 1 0 2 0 1, gamma 0.5, last value 10.
    # Episode ends at the LAST step only: the article zeroes all five returns (dones[-1] = 1);
    # correct: R4 = 1, R3 = .5, R2 = 2.25, R1 = 1.125, R0 = 1.5625.
    rewards = col(1, 0, 2, 0, 1).unsqueeze(1)
    dones = col(0, 0, 0, 0, 1).unsqueeze(1)
    returns = nstep_returns(a2c, rewards, dones, torch.zeros(5, 1), col(10), gamma=0.5)
    torch.testing.assert_close(returns[:, 0], col(1.5625, 1.125, 2.25, 0.5, 1.0))
    assert torch.equal(article_returns(rewards, dones, col(10), 0.5), torch.zeros(5, 1))
    # Episode ends at step 1 only: the article (dones[-1] = 0) leaks R2 into R1: 0 + .5*R2 with
    # R2 = 2 + .5*(0 + .5*6) = 3.5. Correct: R1 = 0, R0 = 1; the new episode R2 = 3.5, R3 = 3, R4 = 6.
    dones = col(0, 1, 0, 0, 0).unsqueeze(1)
    returns = nstep_returns(a2c, rewards, dones, torch.zeros(5, 1), col(10), gamma=0.5)
    torch.testing.assert_close(returns[:, 0], col(1.0, 0.0, 3.5, 3.0, 6.0))
    torch.testing.assert_close(article_returns(rewards, dones, col(10), 0.5)[:2, 0], col(1.875, 1.75))


def test_gae_lambda_below_one_uses_the_values(a2c):
    # one step before the bootstrap, gamma 1: delta_1 = 1 + 10 - 4 = 7, delta_0 = 0 + 4 - 2 = 2;
    # lambda .5: A_1 = 7, A_0 = 2 + .5*7 = 5.5, returns = A + V = (7.5, 11); lambda 1: (11, 11)
    rewards, values = col(0, 1).unsqueeze(1), col(2, 4).unsqueeze(1)
    zeros = torch.zeros(2, 1)
    _, returns = a2c.compute_gae(rewards, values, zeros, zeros, col(10), 1.0, 0.5)
    torch.testing.assert_close(returns[:, 0], col(7.5, 11.0))
    _, returns = a2c.compute_gae(rewards, values, zeros, zeros, col(10), 1.0, 1.0)
    torch.testing.assert_close(returns[:, 0], col(11.0, 11.0))


def test_lstm_reset_zeroes_only_ended_envs(a2c):
    h, c = torch.randn(4, 288), torch.randn(4, 288)
    new_h, new_c = a2c.reset_lstm_state((h, c), torch.tensor([0.0, 1.0, 0.0, 1.0]))
    for i, ended in enumerate([False, True, False, True]):
        expected_h, expected_c = (torch.zeros(288), torch.zeros(288)) if ended else (h[i], c[i])
        assert torch.equal(new_h[i], expected_h) and torch.equal(new_c[i], expected_c)


class ScriptedGames:
    """Stands in for AtariGames: replays given frames and episode ends."""

    def __init__(self, frames, terminated, truncated, final_frames):
        self.frames, self.terminated, self.truncated, self.final_frames = frames, terminated, truncated, final_frames
        self.num_envs, self.t = frames.shape[1], 0

    def step(self, actions):
        t, self.t = self.t, self.t + 1
        reward = np.full(len(actions), float(t))
        no_games = (np.zeros(0), np.zeros(0, dtype=np.int64))
        info = {"final_obs": self.final_frames[t]}
        return self.frames[t + 1].numpy(), reward, self.terminated[t], self.truncated[t], info, no_games

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


def rollouts(a2c, agent, games, obs, rollouts: int):
    """`rollouts` successive rollouts of `games` from `obs` and a zero state, as the main loop runs them;
    then the loss of the last one backpropagated: (actions, rewards, dones, final values, next obs,
    logits, values and gradients)."""
    storage, num_envs = a2c.make_storage(5, len(obs), "cpu"), len(obs)
    state, global_step, seen = agent.initial_state(num_envs, "cpu"), 0, {k: [] for k in storage}
    for _ in range(rollouts):
        obs, state, global_step, logits, values = a2c.collect_rollout(
            agent, games, obs, state, storage, global_step, NoWriter(), [], "cpu"
        )
        for key, value in storage.items():
            seen[key].append(value.clone())
    agent.zero_grad(set_to_none=True)
    returns = storage["rewards"] + 0.5 * values.detach()  # any fixed targets
    a2c.a2c_loss(logits, values, storage["actions"], returns, 0.02, 0.5)[0].backward()
    grads = [p.grad.clone() for p in agent.parameters()]
    assert global_step == rollouts * 5 * num_envs
    return {k: torch.stack(v) for k, v in seen.items()}, obs, logits.detach(), values.detach(), grads


def assert_same_rollouts(plain, other):
    storage, obs, logits, values, grads = plain
    for key, value in storage.items():
        torch.testing.assert_close(other[0][key], value, rtol=1e-5, atol=1e-6, msg=key)
    assert torch.equal(other[1], obs)
    torch.testing.assert_close(other[2], logits, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(other[3], values, rtol=1e-5, atol=1e-6)
    for a, b in zip(grads, other[4]):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-6)


@pytest.mark.slow
def test_compiled_step_gives_the_plain_rollout(a2c, monkeypatch):
    """`--compile`: the compiled step gives the plain one's storage, logits, values and gradients."""
    monkeypatch.setattr(a2c, "sample_actions", lambda logits: logits.argmax(-1))
    frames = torch.randint(0, 256, (11, 3, 4, 84, 84), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))
    no_end = np.zeros((10, 3), bool)
    torch.manual_seed(0)
    agent = a2c.Agent(num_actions=4)
    plain = rollouts(a2c, agent, ScriptedGames(frames, no_end, no_end, frames), frames[0], 2)
    agent.step = torch.compile(agent.step, dynamic=False)
    assert_same_rollouts(plain, rollouts(a2c, agent, ScriptedGames(frames, no_end, no_end, frames), frames[0], 2))


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
    result = run_script(SCRIPT, ["--env-id", "CartPole-v1"], cwd=tmp_path)
    assert_user_error(result, tmp_path, "--env-id")


@pytest.mark.parametrize(
    "flags, flag",
    [
        (["--learning-rate", "nan"], "--learning-rate"),
        (["--learning-rate", "inf"], "--learning-rate"),
        (["--seed", "-1"], "--seed"),
        (["--seed", str(2**64)], "--seed"),
        (["--num-envs", "100000"], "--num-envs"),
    ],
)
def test_bad_values_exit_2_before_anything_is_written(tmp_path: Path, flags, flag):
    assert_user_error(run_script(SCRIPT, flags, cwd=tmp_path), tmp_path, flag)


def test_unwritable_run_directory_exits_2(tmp_path: Path):
    (tmp_path / "runs").write_text("a file where the run directory should go")
    result = run_script(SCRIPT, [*BREAKOUT, "--num-envs", "2", "--total-timesteps", "10"], cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.strip().startswith("error: cannot write the run directory")
    assert len(result.stderr.strip().splitlines()) == 1 and (tmp_path / "runs").is_file()


def test_bad_resume_file_exits_2(tmp_path: Path):
    (tmp_path / "bad.pt").write_text("not a checkpoint")
    result = run_script(SCRIPT, ["--resume", "bad.pt"], cwd=tmp_path)
    assert_user_error(result, tmp_path, "bad.pt")
    assert_user_error(run_script(SCRIPT, ["--resume", "missing.pt"], cwd=tmp_path), tmp_path, "no such file")


@pytest.mark.parametrize("mode", ["--play", "--resume"])
def test_file_of_another_script_or_env_exits_2(tmp_path: Path, mode):
    other = {"script": "ppo_discrete", "model": {}, "args": {"env_id": "CartPole-v1"}}
    torch.save(other, tmp_path / "other.pt")
    assert_user_error(run_script(SCRIPT, [mode, "other.pt"], cwd=tmp_path), tmp_path, "ppo_discrete")
    mine = {"script": "a2c_atari_lstm", "model": {}, "args": {"env_id": "BreakoutNoFrameskip-v4"}}
    torch.save(mine, tmp_path / "breakout.pt")
    # the env id comes from the file; a given --env-id it was not trained on stays an error
    pong = [mode, "breakout.pt", "--env-id", "PongNoFrameskip-v4"]
    assert_user_error(run_script(SCRIPT, pong, cwd=tmp_path), tmp_path, "not on --env-id PongNoFrameskip-v4")
    # this script's, its env taken from it, but no network in it (--play) / no optimizer or step counter (--resume)
    expected = "does not hold this script's network" if mode == "--play" else "not a checkpoint"
    assert_user_error(run_script(SCRIPT, [mode, "breakout.pt"], cwd=tmp_path), tmp_path, expected)


def test_resume_takes_the_checkpoint_settings_except_the_flags_given(a2c, tmp_path: Path):
    saved_args = vars(a2c.Args(env_id="BreakoutNoFrameskip-v4", num_envs=2, num_steps=9, save_model=True, seed=3))
    checkpoint = {"script": "a2c_atari_lstm", "model": {}, "optimizer": {}, "global_step": 40, "run_name": "r"}
    torch.save({**checkpoint, "args": {**saved_args, "batch_size": 18}}, tmp_path / "ckpt.pt")
    args = a2c.Args(env_id="BreakoutNoFrameskip-v4", resume=str(tmp_path / "ckpt.pt"), save_model=False, num_steps=7)
    argv = ["--resume", args.resume, "--env-id", args.env_id, "--no-save-model", "--num-steps=7"]
    assert a2c.resume_from(args, argv)["global_step"] == 40
    assert (args.num_envs, args.seed) == (2, 3)  # from the checkpoint
    assert (args.save_model, args.num_steps) == (False, 7)  # given: `--no-flag` and `--flag=value`
    assert not hasattr(args, "batch_size") and args.resume == str(tmp_path / "ckpt.pt")


def all_scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """The scalars as TensorBoard shows them: all event files of the run in one accumulator, so that a
    resumed run's purge of the interrupted run's later points takes effect."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_checkpoint_resumes_same_parameters_and_step(tmp_path: Path):
    common = [*BREAKOUT, "--num-envs", "2", "--checkpoint-interval", "40", "--eval-episodes", "0"]
    first = run_script(SCRIPT, [*common, "--total-timesteps", "80", "--save-model"], cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    (run_dir,) = list((tmp_path / "runs").iterdir())
    ckpt_path, model_path = run_dir / "checkpoint.pt", run_dir / "a2c_atari_lstm.pt"
    ckpt = torch.load(ckpt_path, weights_only=True)
    assert (ckpt["script"], ckpt["global_step"], ckpt["args"]["checkpoint_interval"]) == ("a2c_atari_lstm", 80, 40)
    # as if the run had crashed after logging a point past its checkpoint: TensorBoard must drop that
    # point when the run resumes, and keep the one logged at the checkpoint step
    time.sleep(1.1)  # event files are read in the order of their names, which start with the second
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(str(run_dir)) as stray:
        stray.add_scalar("charts/SPS", 999.0, 120)
    # resuming with nothing left to do saves exactly the checkpoint's parameters (--save-model comes
    # from the checkpoint)
    model_path.unlink()
    again = run_script(SCRIPT, ["--resume", str(ckpt_path), "--total-timesteps", "80"], cwd=tmp_path)  # its env
    assert again.returncode == 0, again.stderr[-2000:]
    assert "at step 80" in again.stdout
    saved = torch.load(model_path, weights_only=True)["model"]
    assert saved.keys() == ckpt["model"].keys() and all(torch.equal(saved[k], ckpt["model"][k]) for k in saved)
    # resuming further continues the same run directory and its curve after step 80 with the checkpoint's
    # settings (2 envs, interval 40: a checkpoint at 160), except the flags given: --no-save-model
    model_path.unlink()
    more = run_script(
        SCRIPT, ["--resume", str(ckpt_path), *BREAKOUT, "--total-timesteps=160", "--no-save-model"], cwd=tmp_path
    )
    assert more.returncode == 0, more.stderr[-2000:]
    assert list((tmp_path / "runs").iterdir()) == [run_dir]
    ckpt = torch.load(ckpt_path, weights_only=True)
    assert ckpt["global_step"] == 160 and ckpt["args"]["save_model"] is False and ckpt["args"]["num_envs"] == 2
    assert not model_path.exists()  # --no-save-model won over the checkpoint's --save-model
    assert [s for s, _ in all_scalars(run_dir)["charts/SPS"]] == [80, 160]  # one curve, the stray point gone
    assert sorted(s for s, _ in read_scalars(run_dir)["charts/SPS"]) == [80, 120, 160]  # (it is in the files)
    # every event file the resumed runs wrote starts with the settings they ran with
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    newest = EventAccumulator(str(max(run_dir.glob("events.out.*"))))
    newest.Reload()
    (text,) = newest.Tensors("hyperparameters/text_summary")
    table = text.tensor_proto.string_val[0].decode()
    assert "|total_timesteps|160|" in table and "|save_model|False|" in table


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_saves_model_and_checkpoint_and_exits_130(tmp_path: Path, signum):
    # --checkpoint-interval 0: no periodic checkpoints, but a stopped run still saves one
    proc = start_script([SCRIPT, *BREAKOUT, "--num-envs", "2", "--save-model", "--checkpoint-interval", "0"], tmp_path)
    out, err = signal_when(proc, "BreakoutNoFrameskip-v4: 2 games", lambda: proc.send_signal(signum), settle=1.0)
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err and "checkpoint saved" in err
    (run_dir,) = list((tmp_path / "runs").iterdir())
    ckpt = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    assert ckpt["global_step"] > 0 and set(ckpt) >= {"script", "model", "optimizer", "args", "run_name"}
    assert torch.load(run_dir / "a2c_atari_lstm.pt", weights_only=True)["script"] == "a2c_atari_lstm"
    assert "eval:" not in out  # no evaluation games after a stop
    assert f"stopped: runs/{run_dir.name} holds a2c_atari_lstm.pt, checkpoint.pt" in out


def always_fire_model(a2c, path: Path) -> None:
    """A --save-model file whose greedy policy always presses FIRE: a Breakout game then ends in a few
    hundred steps (a policy that never fires can wait for the 108,000-frame limit)."""
    agent = a2c.Agent(num_actions=4)
    with torch.no_grad():
        agent.actor.weight.zero_()
        agent.actor.bias.copy_(torch.tensor([0.0, 5.0, 0.0, 0.0]))
    args = vars(a2c.Args(env_id="BreakoutNoFrameskip-v4"))
    torch.save({"script": "a2c_atari_lstm", "model": agent.state_dict(), "args": args}, path)


def test_play_a_saved_model_prints_scores_and_writes_nothing(a2c, tmp_path: Path):
    train_dir, play_dir = tmp_path / "train", tmp_path / "play"
    train_dir.mkdir()
    play_dir.mkdir()
    trained = run_script(
        SCRIPT,
        [*BREAKOUT, "--num-envs", "2", "--total-timesteps", "20", "--save-model", "--eval-episodes", "0"],
        cwd=train_dir,
    )
    assert trained.returncode == 0, trained.stderr[-2000:]
    (model_path,) = (train_dir / "runs").glob("*/a2c_atari_lstm.pt")
    played = run_script(
        SCRIPT, ["--play", str(model_path), *BREAKOUT, "--eval-episodes", "1", "--no-greedy"], cwd=play_dir
    )
    assert played.returncode == 0, played.stderr[-2000:]
    lines = played.stdout.strip().splitlines()
    assert lines[0].startswith("episode 1: score ") and ", length " in lines[0]
    assert lines[-1].startswith("mean score over 1 episodes: ")
    assert list(play_dir.iterdir()) == []
    # greedy (the default), two games
    always_fire_model(a2c, tmp_path / "fire.pt")
    played = run_script(SCRIPT, ["--play", str(tmp_path / "fire.pt"), *BREAKOUT, "--eval-episodes", "2"], cwd=play_dir)
    assert played.returncode == 0, played.stderr[-2000:]
    lines = played.stdout.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == ["episode 1", "episode 2", "mean score over 2 episodes"]
    assert list(play_dir.iterdir()) == []


@pytest.mark.skipif(
    None in (importlib.util.find_spec("moviepy"), importlib.util.find_spec("pygame")), reason="needs the video extra"
)
def test_play_capture_video_writes_mp4(a2c, tmp_path: Path):
    always_fire_model(a2c, tmp_path / "fire.pt")
    played = run_script(
        SCRIPT, ["--play", "fire.pt", *BREAKOUT, "--eval-episodes", "1", "--capture-video"], cwd=tmp_path
    )
    assert played.returncode == 0, played.stderr[-2000:]
    assert len(list((tmp_path / "videos").rglob("*.mp4"))) == 1 and not (tmp_path / "runs").exists()


def test_actor_init_std_scales_the_actor_heads_initial_weights(a2c):
    """`--actor-init-std`: orthogonal rows of that norm (1.0, the article's; 0.01, A3C's), the critic untouched."""
    for std in (1.0, 0.01):
        torch.manual_seed(0)
        agent = a2c.Agent(6, actor_std=std)
        torch.testing.assert_close(torch.linalg.norm(agent.actor.weight, dim=1), torch.full((6,), std))
        torch.testing.assert_close(torch.linalg.norm(agent.critic.weight, dim=1), torch.ones(1))


def test_rmsprop_trains_checkpoints_and_resumes(tmp_path: Path):
    """`--optimizer rmsprop`: RMSprop's state in the checkpoint, and a resume takes the optimizer from it."""
    common = [*BREAKOUT, "--num-envs", "2", "--checkpoint-interval", "40", "--eval-episodes", "0"]
    first = run_script(SCRIPT, [*common, "--total-timesteps", "40", "--optimizer", "rmsprop"], cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    (run_dir,) = list((tmp_path / "runs").iterdir())
    ckpt = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    assert ckpt["args"]["optimizer"] == "rmsprop" and "square_avg" in ckpt["optimizer"]["state"][0]
    again = run_script(SCRIPT, ["--resume", str(run_dir / "checkpoint.pt"), "--total-timesteps", "80"], cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    resumed = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    assert resumed["global_step"] == 80 and "square_avg" in resumed["optimizer"]["state"][0]


def test_frame_size_42_frames_network_and_saved_files(a2c, tmp_path: Path):
    """`--frame-size 42`: 42x42 frames, the same on both backends; the network skips its pooling and still
    feeds 288 features to the LSTM; a saved model plays on its own frame size and refuses another."""
    games = {
        b: a2c.AtariGames("BreakoutNoFrameskip-v4", 1, b, seed=0, size=42, noop_max=0) for b in ("ale", "gymnasium")
    }
    obs = {b: g.reset() for b, g in games.items()}
    for g in games.values():
        g.close()
    assert obs["ale"].shape == (1, 4, 42, 42) and np.array_equal(obs["ale"], obs["gymnasium"])
    agent = a2c.Agent(num_actions=6, size=42)
    assert agent.convs(torch.zeros(2, 4, 42, 42)).shape == (2, 288)
    assert not any(isinstance(m, torch.nn.AvgPool2d) for m in agent.convs)
    train = [*BREAKOUT, "--num-envs", "2", "--total-timesteps", "20", "--save-model", "--eval-episodes", "0"]
    trained = run_script(SCRIPT, [*train, "--frame-size", "42"], cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr[-2000:]
    (model_path,) = (tmp_path / "runs").glob("*/a2c_atari_lstm.pt")
    played = run_script(SCRIPT, ["--play", str(model_path), "--eval-episodes", "1", "--no-greedy"], cwd=tmp_path)
    assert played.returncode == 0 and "mean score over 1 episodes" in played.stdout, played.stderr[-2000:]
    refused = run_script(SCRIPT, ["--play", str(model_path), "--frame-size", "84"], cwd=tmp_path)
    assert refused.returncode == 2 and "trained on 42x42 frames, not --frame-size 84" in refused.stderr
