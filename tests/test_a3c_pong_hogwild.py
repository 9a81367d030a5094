"""Unit tests of a3c_pong_hogwild.py: SharedAdam, GAE, the 42x42 frames, the stuck-action rule and
how cut test episodes are logged, the Hogwild! gradient hand-over, the process supervision (failing
env, Ctrl-C and SIGTERM, also during start-up, resume), bad input, and `--play`."""

import os
import re
import signal
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
import torch.nn as nn
from conftest import ROOT, assert_user_error, load_script, read_scalars, run_script, signal_when, start_script

SCRIPT = "a3c_pong_hogwild.py"
CARTPOLE_TINY = ["--env-id", "CartPole-v1", "--num-processes", "2", "--test-episodes", "2", "--eval-interval", "200"]
TESTS_DIR = str(Path(__file__).resolve().parent)


@pytest.fixture(scope="module")
def a3c():
    module = load_script("a3c_pong_hogwild")
    # a spawned child unpickles SharedAdam by module name: make it importable under that name
    sys.modules["a3c_pong_hogwild"] = module
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return module


def processes_in(directory: Path, grace: float = 3.0) -> list[int]:
    """Pids of live processes whose working directory is `directory` (children inherit it),
    after giving helper processes (fork server, resource tracker) `grace` seconds to exit."""
    deadline = time.time() + grace
    while True:
        pids = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if Path(os.readlink(entry / "cwd")) == directory:
                        pids.append(int(entry.name))
                except OSError:
                    pass
        if not pids or time.time() > deadline:
            return pids
        time.sleep(0.1)


# --- SharedAdam ---------------------------------------------------------------------------


def test_shared_adam_matches_torch_adam(a3c):
    torch.manual_seed(0)
    reference = nn.Linear(3, 2)
    shared = nn.Linear(3, 2)
    shared.load_state_dict(reference.state_dict())
    adam = torch.optim.Adam(reference.parameters(), lr=1e-2)
    shared_adam = a3c.SharedAdam(shared.parameters(), lr=1e-2).share_memory()
    for step in range(5):
        grads = [torch.randn_like(p) * (step + 1) for p in reference.parameters()]
        for p, q, g in zip(reference.parameters(), shared.parameters(), grads):
            p.grad, q.grad = g.clone(), g.clone()
        adam.step()
        shared_adam.step()
        for p, q in zip(reference.parameters(), shared.parameters()):
            torch.testing.assert_close(q, p, rtol=0, atol=1e-7)
    assert float(shared_adam.state[shared.weight]["step"]) == 5.0


def _child_adam_step(model, optimizer):
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    optimizer.step()


def test_shared_adam_state_is_shared_with_a_spawned_process(a3c):
    torch.manual_seed(0)
    shared = nn.Linear(2, 1)
    reference = nn.Linear(2, 1)
    reference.load_state_dict(shared.state_dict())
    shared.share_memory()
    optimizer = a3c.SharedAdam(shared.parameters(), lr=0.1).share_memory()
    child = mp.get_context("spawn").Process(target=_child_adam_step, args=(shared, optimizer))
    child.start()
    child.join(60)
    assert child.exitcode == 0
    state = optimizer.state[shared.weight]
    # the child's step is visible here: one step, first moment (1 - 0.9) * 1, second (1 - 0.999) * 1
    assert float(state["step"]) == 1.0
    torch.testing.assert_close(state["exp_avg"], torch.full_like(shared.weight, 0.1))
    torch.testing.assert_close(state["exp_avg_sq"], torch.full_like(shared.weight, 0.001))
    # Adam's first step moves every weight by lr * sign(grad) (up to eps)
    torch.testing.assert_close(shared.weight.detach(), reference.weight.detach() - 0.1, rtol=0, atol=1e-6)
    # a second step here continues the child's moments exactly as one Adam would
    adam = torch.optim.Adam(reference.parameters(), lr=0.1)
    for _ in range(2):
        for p in reference.parameters():
            p.grad = torch.ones_like(p)
        adam.step()
    _child_adam_step(shared, optimizer)
    assert float(state["step"]) == 2.0
    for p, q in zip(reference.parameters(), shared.parameters()):
        torch.testing.assert_close(q.detach(), p.detach(), rtol=0, atol=1e-6)


# --- the Hogwild! gradient hand-over (torch 2.x zero_grad sets grads to None) ---------------


def test_repeated_updates_apply_exactly_the_local_gradient(a3c):
    shared = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        shared.weight.fill_(10.0)
    shared.share_memory()
    local = nn.Linear(1, 1, bias=False)
    optimizer = torch.optim.SGD(shared.parameters(), lr=1.0)
    for k in range(1, 5):
        local.load_state_dict(shared.state_dict())
        loss = (local.weight * 2.0).sum()  # d loss / d w = 2 on every update
        a3c.hogwild_update(local, shared, optimizer, loss, max_grad_norm=50.0)
        # accumulating gradients would move the weight by 2, 4, 6, 8: 10 -> 8 -> 4 -> -2 -> -10
        assert shared.weight.item() == pytest.approx(10.0 - 2.0 * k)
        assert local.weight.grad.item() == pytest.approx(2.0)


def test_update_clips_the_local_gradient_norm(a3c):
    shared = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        shared.weight.fill_(0.0)
    local = nn.Linear(1, 1, bias=False)
    local.load_state_dict(shared.state_dict())
    optimizer = torch.optim.SGD(shared.parameters(), lr=1.0)
    norm = a3c.hogwild_update(local, shared, optimizer, (local.weight * 200.0).sum(), max_grad_norm=50.0)
    assert norm == pytest.approx(200.0)
    assert shared.weight.item() == pytest.approx(-50.0, rel=1e-5)


# --- GAE / n-step returns -------------------------------------------------------------------


def gae(a3c, rewards, values, last_value, gamma, gae_lambda, ended=None):
    """The worker's call: a rollout of one episode's steps; only its last step can end the episode
    ("terminated": value 0; "truncated": bootstrapped from `last_value`, the final observation's value)."""
    dones, final_values = torch.zeros(len(rewards)), torch.zeros(len(rewards))
    if ended is not None:
        dones[-1] = 1.0
        final_values[-1] = last_value if ended == "truncated" else 0.0
    return a3c.compute_gae(rewards, values, dones, final_values, torch.tensor(last_value), gamma, gae_lambda)


def test_gae_lambda_one_equals_n_step_returns_with_bootstrap(a3c):
    rewards, values = torch.tensor([1.0, 0.0, 2.0]), torch.tensor([0.5, 0.2, 0.1])
    advantages, returns = gae(a3c, rewards, values, 3.0, gamma=0.9, gae_lambda=1.0)
    # R2 = 2 + 0.9 * 3 = 4.7, R1 = 0 + 0.9 * 4.7 = 4.23, R0 = 1 + 0.9 * 4.23 = 4.807
    torch.testing.assert_close(returns, torch.tensor([4.807, 4.23, 4.7]))
    torch.testing.assert_close(advantages, torch.tensor([4.307, 4.03, 4.6]))


def test_gae_lambda_one_equals_n_step_returns_without_bootstrap(a3c):
    rewards, values = torch.tensor([1.0, 0.0, 2.0]), torch.tensor([0.5, 0.2, 0.1])
    advantages, returns = gae(a3c, rewards, values, 0.0, gamma=0.9, gae_lambda=1.0, ended="terminated")
    # terminal: R2 = 2, R1 = 1.8, R0 = 1 + 0.9 * 1.8 = 2.62
    torch.testing.assert_close(returns, torch.tensor([2.62, 1.8, 2.0]))
    torch.testing.assert_close(advantages, torch.tensor([2.12, 1.6, 1.9]))


def test_gae_lambda_zero_is_the_one_step_td_error(a3c):
    rewards, values = torch.tensor([1.0, 0.0, 2.0]), torch.tensor([0.5, 0.2, 0.1])
    advantages, _ = gae(a3c, rewards, values, 3.0, gamma=0.9, gae_lambda=0.0)
    # delta2 = 2 + 0.9 * 3 - 0.1, delta1 = 0 + 0.9 * 0.1 - 0.2, delta0 = 1 + 0.9 * 0.2 - 0.5
    torch.testing.assert_close(advantages, torch.tensor([0.68, -0.11, 4.6]))


def test_gae_truncation_bootstraps_from_the_final_value_and_termination_does_not(a3c):
    rewards, values = torch.tensor([1.0, 2.0]), torch.tensor([0.5, 0.1])
    _, truncated = gae(a3c, rewards, values, 3.0, gamma=0.9, gae_lambda=1.0, ended="truncated")
    _, terminated = gae(a3c, rewards, values, 3.0, gamma=0.9, gae_lambda=1.0, ended="terminated")
    # truncated: R1 = 2 + 0.9 * 3 = 4.7, R0 = 1 + 0.9 * 4.7; terminated: R1 = 2, R0 = 1 + 0.9 * 2
    torch.testing.assert_close(truncated, torch.tensor([5.23, 4.7]))
    torch.testing.assert_close(terminated, torch.tensor([2.8, 2.0]))


def test_a3c_loss_by_hand(a3c):
    log_probs = torch.tensor([-0.5, -1.0])
    entropies = torch.tensor([0.6, 0.4])
    values = torch.tensor([1.0, 2.0])
    advantages, returns = torch.tensor([2.0, -1.0]), torch.tensor([3.0, 1.0])
    total, policy, value = a3c.a3c_loss(log_probs, entropies, values, advantages, returns, ent_coef=0.01, vf_coef=0.5)
    # policy = -(-0.5 * 2 + -1 * -1) - 0.01 * 1.0 = -0.01; value = 0.5 * (4 + 1) = 2.5
    assert policy.item() == pytest.approx(-0.01)
    assert value.item() == pytest.approx(2.5)
    assert total.item() == pytest.approx(-0.01 + 0.5 * 2.5)


# --- 42x42 frames and their running normalisation ------------------------------------------


def test_process_frame42_shape_crop_and_scale(a3c):
    frame = np.zeros((210, 160, 3), dtype=np.uint8)
    frame[:34] = 255  # the score bar above the playing field is cropped away
    frame[194:] = 255  # and so is the bottom border
    out = a3c.process_frame42(frame)
    assert out.shape == (1, 42, 42) and out.dtype == np.float32
    assert out.max() == 0.0
    frame[34:194] = (30, 60, 90)  # grey = mean of the channels = 60, scaled by 1/255
    np.testing.assert_allclose(a3c.process_frame42(frame), np.full((1, 42, 42), 60 / 255, np.float32), rtol=1e-6)


class _FrameEnv(gym.Env):
    observation_space = gym.spaces.Box(-np.inf, np.inf, (1, 42, 42), np.float32)
    action_space = gym.spaces.Discrete(2)


def test_running_frame_norm_is_bias_corrected(a3c):
    norm = a3c.RunningFrameNorm(_FrameEnv(), alpha=0.9999)
    first = np.zeros((1, 42, 42), np.float32)
    first[0, :21] = 1.0  # mean 0.5, std 0.5
    out = norm.observation(first)
    # after one frame the bias-corrected statistics are the frame's own: (x - 0.5) / 0.5
    np.testing.assert_allclose(out, (first - 0.5) / 0.5, atol=1e-5)
    second = np.full((1, 42, 42), 2.0, np.float32)  # mean 2, std 0
    out = norm.observation(second)
    a = 0.9999
    mean = (a * 0.5 + 2.0) / (1 + a)  # ((1-a) a 0.5 + (1-a) 2) / (1 - a^2)
    std = (a * 0.5 + 0.0) / (1 + a)
    np.testing.assert_allclose(out, np.full_like(second, (2.0 - mean) / (std + 1e-8)), rtol=1e-4)


def test_pong_deterministic_v4_is_mapped_and_preprocessed(a3c):
    import ale_py

    gym.register_envs(ale_py)
    env = a3c.make_env("PongDeterministic-v4")
    obs, _ = env.reset(seed=0)
    assert obs.shape == (1, 42, 42) and obs.dtype == np.float32
    assert abs(float(obs.mean())) < 1e-3 and abs(float(obs.std()) - 1.0) < 1e-3
    assert env.unwrapped._frameskip == 4
    assert env.unwrapped.ale.getFloat("repeat_action_probability") == 0.0
    assert env.spec.max_episode_steps == 100_000
    env.close()


# --- the test process's stuck-action rule --------------------------------------------------


class _EndlessEnv(gym.Env):
    observation_space = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def reset(self, seed=None, options=None):
        return np.zeros(4, np.float32), {}

    def step(self, action):
        return np.zeros(4, np.float32), 1.0, False, False, {}


class _AlwaysAction1(nn.Module):
    def initial_state(self):
        return None

    def forward(self, x, state):
        return torch.zeros(1), torch.tensor([[0.0, 5.0]]), state


class _ShortEnv(_EndlessEnv):
    """An episode of 50 steps: a whole game even for a policy stuck on one action."""

    def reset(self, seed=None, options=None):
        self.t = 0
        return super().reset(seed=seed)

    def step(self, action):
        self.t += 1
        return np.zeros(4, np.float32), 1.0, self.t >= 50, False, {}


def test_test_episode_stuck_on_one_action_is_cut_after_100_steps(a3c):
    results = a3c.run_episodes(_AlwaysAction1(), _EndlessEnv(), 2, seed=0, greedy=True, max_repeat_actions=100)
    assert results == [(100.0, 100, True), (100.0, 100, True)]
    # a game that ends on its own is whole, and without the rule (0, as in --play) nothing is cut
    assert a3c.run_episodes(_AlwaysAction1(), _ShortEnv(), 1, 0, True, 100) == [(50.0, 50, False)]
    assert a3c.run_episodes(_AlwaysAction1(), _ShortEnv(), 1, 0, True, 0) == [(50.0, 50, False)]
    stopped = a3c.run_episodes(_AlwaysAction1(), _EndlessEnv(), 3, 0, True, 100, should_stop=lambda: True)
    assert stopped == []


class _RecordingWriter:
    def __init__(self):
        self.scalars = {}

    def add_scalar(self, tag, value, step):
        self.scalars.setdefault(tag, []).append((step, value))


def test_cut_test_episodes_are_logged_apart_from_whole_games(a3c, capsys):
    writer = _RecordingWriter()
    log = a3c.ParentLog(None, writer, SimpleNamespace(greedy_eval=True, max_repeat_actions=100), 0, 0.0)
    log.evaluation(1000, [(-2.0, 100, True)], wall=10.0)  # early in training: cut at -2, no whole game
    line = capsys.readouterr().out
    assert "cut" in line and "-2" in line and "whole" not in line
    assert "eval/episodic_return" not in writer.scalars and "eval/mean_return" not in writer.scalars
    assert writer.scalars["eval/cut_return"] == [(1000, -2.0)]
    assert writer.scalars["eval/cut_episodes"] == [(1000, 1)]
    assert log.best_eval is None  # a cut episode never counts towards the best (solved) figure
    log.evaluation(2000, [(19.0, 3000, False), (5.0, 100, True)], wall=20.0)
    line = capsys.readouterr().out
    assert "1 whole greedy episodes" in line and "1 cut" in line
    assert writer.scalars["eval/episodic_return"] == [(2000, 19.0)]
    assert writer.scalars["eval/mean_return"] == [(2000, 19.0)]
    assert writer.scalars["eval/cut_episodes"][-1] == (2000, 1)
    assert log.best_eval == (19.0, 2000, 20.0)


def test_classic_defaults_apply_only_to_flags_not_given(a3c):
    args = a3c.Args()
    a3c.apply_classic_defaults(args, ["--env-id", "CartPole-v1", "--learning-rate=1e-4", "--clip-rewards"])
    assert args.learning_rate == 1e-4 and args.clip_rewards  # given: kept, although they are the Atari defaults
    assert args.total_timesteps == 500_000 and args.eval_interval == 10_000 and args.test_episodes == 20
    args = a3c.Args(clip_rewards=False, test_episodes=3)  # as parsed from the command line below
    a3c.apply_classic_defaults(args, ["--no-clip_rewards", "--test_episodes", "3"])
    assert args.learning_rate == 5e-4 and not args.clip_rewards and args.test_episodes == 3


# --- processes ------------------------------------------------------------------------------


def test_children_are_never_forked_from_the_parent(a3c):
    # forking a process whose torch thread pool is running hung the workers (see the smoke rows,
    # which run 2 worker processes to the end)
    assert a3c.start_method() in ("forkserver", "spawn")


def test_worker_whose_env_raises_stops_the_run(tmp_path):
    start = time.time()
    result = run_script(
        SCRIPT,
        [
            "--env-id",
            "fake_envs:Crashing-v0",
            "--num-processes",
            "2",
            "--test-episodes",
            "0",
            "--total-timesteps",
            "1000000",
        ],
        cwd=tmp_path,
        timeout=60,
        env={"PYTHONPATH": TESTS_DIR},
    )
    assert result.returncode == 1, result.stderr[-2000:]
    assert re.search(r"error: worker \d failed", result.stderr) and "broke on purpose" in result.stderr
    assert time.time() - start < 40
    assert processes_in(tmp_path) == []


def start_run(args: list[str], cwd: Path):
    return start_script([SCRIPT, *args], cwd)


def test_ctrl_c_saves_the_model_and_exits_130(tmp_path):
    proc = start_run([*CARTPOLE_TINY, "--total-timesteps", "200000", "--save-model"], tmp_path)
    # what a terminal does: SIGINT to the whole process group, once training is under way
    stdout, stderr = signal_when(proc, "step ", lambda: os.killpg(proc.pid, signal.SIGINT))
    assert proc.returncode == 130, stderr[-2000:]
    assert "stopped: runs/" in stdout.splitlines()[-1]
    assert "Traceback" not in stderr
    (run_dir,) = (tmp_path / "runs").iterdir()
    checkpoint = torch.load(run_dir / "a3c_pong_hogwild.pt", weights_only=True)
    assert checkpoint["args"]["env_id"] == "CartPole-v1" and checkpoint["script"] == "a3c_pong_hogwild"
    assert processes_in(tmp_path) == []


def test_sigterm_saves_the_model_and_a_checkpoint_and_exits_130(tmp_path):
    """SIGTERM to the parent alone, as `kill PID` sends it (signals during the shutdown: test_first_hour.py)."""
    proc = start_run([*CARTPOLE_TINY, "--total-timesteps", "2000000", "--save-model"], tmp_path)
    _, stderr = signal_when(proc, "step ", lambda: proc.send_signal(signal.SIGTERM))
    assert proc.returncode == 130, stderr[-2000:]
    assert "Traceback" not in stderr and "SIGTERM" in stderr
    (run_dir,) = (tmp_path / "runs").iterdir()
    model = torch.load(run_dir / "a3c_pong_hogwild.pt", weights_only=True)
    checkpoint = torch.load(run_dir / "checkpoint.pt", weights_only=True)  # not only every 500000 steps
    assert model["script"] == checkpoint["script"] == "a3c_pong_hogwild"
    assert 0 < checkpoint["global_step"] < 2000000 and "optimizer" in checkpoint
    assert processes_in(tmp_path) == []


def test_ctrl_c_while_the_children_start_stops_the_run(tmp_path):
    proc = start_run([*CARTPOLE_TINY, "--total-timesteps", "10000000"], tmp_path)
    # the header line is printed just before the processes are started
    stdout, stderr = signal_when(proc, "CartPole-v1 (classic)", lambda: os.killpg(proc.pid, signal.SIGINT))
    assert proc.returncode == 130, stderr[-2000:]
    assert "Traceback" not in stderr and "interrupted at step" in stderr
    assert "step 10000000/" not in stdout
    assert processes_in(tmp_path) == []


def test_checkpoint_and_resume(tmp_path):
    tiny = ["--env-id", "CartPole-v1", "--num-processes", "2", "--test-episodes", "0"]
    first = run_script(SCRIPT, [*tiny, "--total-timesteps", "600", "--checkpoint-interval", "300"], tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    (run_dir,) = (tmp_path / "runs").iterdir()
    checkpoint = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    assert checkpoint["global_step"] >= 300 and "optimizer" in checkpoint
    second = run_script(
        SCRIPT,
        [
            *tiny,
            "--total-timesteps",
            "1200",
            "--resume",
            str(run_dir / "checkpoint.pt"),
            "--exp-name",
            "b",
            "--no-shared-optimizer",
        ],  # also covers one Adam per worker
        tmp_path,
    )
    assert second.returncode == 0, second.stderr[-2000:]
    (resumed_dir,) = [d for d in (tmp_path / "runs").iterdir() if "__b__" in d.name]
    steps = [step for step, _ in read_scalars(resumed_dir)["charts/SPS"]]
    assert min(steps) > checkpoint["global_step"] and max(steps) >= 1200


@pytest.mark.parametrize(
    "args,flag",
    [
        (["--env-id", "CartPole-v1", "--num-processes", "0"], "--num-processes"),
        (["--env-id", "Pendulum-v1"], "--env-id"),
        (["--env-id", "CartPole-v1", "--resume", "no_such_checkpoint.pt"], "no_such_checkpoint.pt"),
        (["--env-id", "CartPole-v1", "--num-processes", "100000"], "--num-processes"),
        (["--play", "no_such_model.pt"], "no_such_model.pt"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, flag, tmp_path):
    result = run_script(SCRIPT, args, cwd=tmp_path, timeout=60)
    assert_user_error(result, tmp_path, flag)


@pytest.mark.slow
def test_cartpole_greedy_mean_reaches_475(tmp_path):
    result = run_script(
        SCRIPT,
        ["--env-id", "CartPole-v1", "--num-processes", "2", "--total-timesteps", "200000"],
        tmp_path,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    (run_dir,) = (tmp_path / "runs").iterdir()
    means = [value for _, value in read_scalars(run_dir)["eval/mean_return"]]
    assert max(means) >= 475, means


# --- --play and saved files -----------------------------------------------------------------


def save_file(a3c, path: Path, script: str = "a3c_pong_hogwild", env_id: str = "CartPole-v1", model=None) -> Path:
    model = a3c.build_model("classic", (4,), 2).state_dict() if model is None else model
    torch.save({"script": script, "model": model, "args": {"env_id": env_id}}, path)
    return path


def test_play_prints_each_episode_and_writes_nothing(a3c, tmp_path):
    model = save_file(a3c, tmp_path / "model.pt")
    result = run_script(SCRIPT, ["--env-id", "CartPole-v1", "--play", str(model), "--eval-episodes", "2"], tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert re.fullmatch(r"episode 1: score \d+, length \d+", lines[0]) and lines[1].startswith("episode 2: ")
    assert lines[-1].startswith("mean score over 2 episodes: ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]


@pytest.mark.parametrize(
    "script,env_id,model,message",
    [
        ("ppo_discrete", "CartPole-v1", None, "ppo_discrete"),  # another script's file
        ("a3c_pong_hogwild", "Acrobot-v1", None, "trained on Acrobot-v1, not on --env-id CartPole-v1"),  # a given env
        # an Atari id: the error comes after the env was made, without ALE's two banner lines
        ("a3c_pong_hogwild", "PongDeterministic-v4", {}, "--play"),
    ],
)
def test_play_of_a_wrong_file_is_one_line(a3c, tmp_path, script, env_id, model, message):
    path = save_file(a3c, tmp_path / "other.pt", script, env_id, model)
    result = run_script(
        SCRIPT, ["--env-id", "PongDeterministic-v4" if model == {} else "CartPole-v1", "--play", str(path)], tmp_path
    )
    assert_user_error(result, tmp_path, message)


def test_play_with_capture_video_records_mp4(a3c, tmp_path):
    pytest.importorskip("moviepy")
    pytest.importorskip("pygame")
    model = save_file(a3c, tmp_path / "model.pt")
    args = ["--env-id", "CartPole-v1", "--play", str(model), "--eval-episodes", "1", "--capture-video"]
    result = run_script(SCRIPT, args, tmp_path)
    assert result.returncode == 0, result.stderr
    assert list((tmp_path / "videos").glob("*/*.mp4")) and not (tmp_path / "runs").exists()
    assert "videos saved to videos/" in result.stdout and "error" not in result.stderr.lower()


# --- article 001's reward and CartPole-v0 (classic-control mode) -----------------------------


class _ListQueue(list):
    def put(self, item):
        self.append(item)


def run_train_worker(a3c, monkeypatch, args, env_fn=None):
    """Run `train_worker` in this process (no child, signals left alone) until the counter reaches
    `args.total_timesteps`; returns what it handed to `compute_gae`, one dict per rollout, and
    what it put on the queue."""
    calls = []
    real_compute_gae = a3c.compute_gae

    def recording_compute_gae(rewards, values, dones, final_values, last_value, gamma, gae_lambda):
        advantages, returns = real_compute_gae(rewards, values, dones, final_values, last_value, gamma, gae_lambda)
        calls.append(
            dict(rewards=rewards.clone(), dones=dones.clone(), final_values=final_values.clone(), returns=returns)
        )
        return advantages, returns

    monkeypatch.setattr(a3c, "compute_gae", recording_compute_gae)
    monkeypatch.setattr(a3c, "child_setup", lambda seed: a3c.seed_everything(seed, True))
    monkeypatch.setattr(a3c, "parent_alive", lambda: True)
    if env_fn is not None:
        monkeypatch.setattr(a3c, "make_env", lambda env_id, max_episode_steps=None: env_fn())
    env = (env_fn or (lambda: a3c.make_env(args.env_id)))()
    shared = a3c.build_model("classic", env.observation_space.shape, env.action_space.n)
    env.close()
    counter, queue = mp.get_context("spawn").Value("q", 0), _ListQueue()
    try:
        a3c.train_worker(0, args, "classic", shared, None, counter, threading.Event(), queue)
    except (SystemExit, a3c.UserError):
        pytest.fail("train_worker failed: " + "".join(str(m[-1]) for m in queue if m[0] == "error"))
    return calls, queue


def test_classic_mode_trains_on_cartpoles_own_terminal_reward(a3c, monkeypatch):
    """Article 001 replaced the reward of CartPole's terminal step by -1; here the worker must hand
    the env's own +1 to the advantages, and the terminal return is that reward alone."""
    argv = ["--env-id", "CartPole-v1", "--total-timesteps", "300"]
    args = a3c.Args(env_id="CartPole-v1", total_timesteps=300, num_steps=20)
    a3c.apply_classic_defaults(args, argv)
    assert not args.clip_rewards  # classic control: no clipping unless asked for
    calls, queue = run_train_worker(a3c, monkeypatch, args)
    assert sum(len(c["rewards"]) for c in calls) >= 300
    terminal = [c for c in calls if c["dones"][-1] == 1.0]
    assert len(terminal) >= 3  # random CartPole episodes last ~20 steps: several ended in 300 steps
    for c in calls:
        assert c["rewards"].tolist() == [1.0] * len(c["rewards"])  # every step, the terminal one included
    for c in terminal:
        assert c["final_values"][-1] == 0.0  # a termination (v1's 500-step limit is not reached)
        assert c["returns"][-1].item() == pytest.approx(1.0)  # R_T = r_T = +1, not -1
        assert c["dones"][:-1].sum() == 0  # a rollout ends at the episode end, never crosses it
    episodes = [m for m in queue if m[0] == "episode"]
    assert episodes and all(ret == length for _, _, ret, length in episodes)


class _ScoredEnv(gym.Env):
    """Five steps with rewards 3, -0.5, -2, 0.25, 3 (the last one terminal), flat observations."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)
    action_space = gym.spaces.Discrete(2)
    REWARDS = [3.0, -0.5, -2.0, 0.25, 3.0]

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(4, np.float32), {}

    def step(self, action):
        self.t += 1
        return np.zeros(4, np.float32), self.REWARDS[self.t - 1], self.t == 5, False, {}


@pytest.mark.parametrize("mode", ["classic", "atari"])
def test_reward_clipping_is_on_for_atari_only(a3c, monkeypatch, mode):
    """Atari's defaults clip the training reward to [-1, 1]; classic control's defaults keep the
    env's reward, the terminal step's included."""
    args = a3c.Args(total_timesteps=15, num_steps=20)
    if mode == "classic":
        a3c.apply_classic_defaults(args, ["--env-id", "CartPole-v1", "--total-timesteps", "15", "--num-steps", "20"])
    assert args.clip_rewards == (mode == "atari")
    calls, queue = run_train_worker(a3c, monkeypatch, args, lambda: gym.wrappers.RecordEpisodeStatistics(_ScoredEnv()))
    expected = [3.0, -0.5, -2.0, 0.25, 3.0] if mode == "classic" else [1.0, -0.5, -1.0, 0.25, 1.0]
    assert len(calls) == 3  # 3 episodes of 5 steps: each rollout stops at its episode's end
    for c in calls:
        assert c["rewards"].tolist() == expected
        assert c["dones"].tolist() == [0.0, 0.0, 0.0, 0.0, 1.0] and c["final_values"][-1] == 0.0
        assert c["returns"][-1].item() == pytest.approx(expected[-1])
    # the logged episode return is the env's, never clipped
    assert [m[2] for m in queue if m[0] == "episode"] == [3.75] * 3


class _Balancer(nn.Module):
    """A fixed controller that keeps CartPole's pole up for hundreds of steps."""

    def initial_state(self):
        return None

    def forward(self, x, state):
        score = 3 * x[:, 2] + x[:, 3] + 0.1 * x[:, 0] + 0.3 * x[:, 1]
        return torch.zeros(len(x)), torch.stack([-score, score], dim=1), state


def test_cartpole_v0_keeps_its_200_step_limit(a3c):
    env = a3c.make_env("CartPole-v0")
    assert a3c.env_kind(env.unwrapped.observation_space) == "classic"
    assert env.spec.max_episode_steps == 200
    # a policy that balances is cut (truncated) at 200, a whole game, not a cut test episode
    assert a3c.run_episodes(_Balancer(), env, 2, seed=0, greedy=True, max_repeat_actions=100) == [
        (200.0, 200, False),
        (200.0, 200, False),
    ]
    env.close()


def test_cartpole_v0_tiny_run(tmp_path):
    args = ["--env-id", "CartPole-v0", "--num-processes", "1", "--total-timesteps", "500", "--test-episodes", "0"]
    result = run_script(SCRIPT, args, tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "CartPole-v0 (classic)" in result.stdout
    (run_dir,) = (tmp_path / "runs").iterdir()
    scalars = read_scalars(run_dir)
    lengths = [value for _, value in scalars["charts/episodic_length"]]
    returns = [value for _, value in scalars["charts/episodic_return"]]
    assert lengths and max(lengths) <= 200
    assert returns == lengths  # +1 a step, the terminal one included
    assert "losses/policy_loss" in scalars


# --- the worker's fast paths: the same policy, values and gradients as the plain model ------


def plain_forward(model, x, state):
    """The model's maths written plainly: the LSTM cell frame by frame in a Python loop."""
    for conv in (model.conv1, model.conv2, model.conv3, model.conv4):
        x = torch.nn.functional.elu(conv(x))
    hiddens = []
    for features in x.flatten(1).split(1):
        state = model.lstm(features, state)
        hiddens.append(state[0])
    hx = torch.cat(hiddens)
    return model.critic_linear(hx).squeeze(1), model.actor_linear(hx), state


def fixed_frames(count: int) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(0).standard_normal((count, 1, 42, 42)).astype(np.float32))


def worker_model(a3c, plain):
    """A copy of `plain` set up as a training worker sets up its own (channels-last convolutions)."""
    model = a3c.build_model("atari", (1, 42, 42), 6).train()
    model.to(memory_format=torch.channels_last)
    model.load_state_dict(plain.state_dict())
    return model


def act_and_loss(forward, model, frames, seed: int):
    """A worker's rollout of `frames` (acting frame by frame, sampled with `seed`), then the loss
    forward over the whole rollout and its gradients: (actions, log-probs, values, grads)."""
    torch.manual_seed(seed)
    state, actions, log_probs = model.initial_state(), [], []
    with torch.no_grad():
        for x in frames.split(1):
            _, logits, state = forward(x, state)
            actions.append(int(torch.multinomial(logits.softmax(-1), 1)))
            log_probs.append(logits.log_softmax(-1)[0, actions[-1]])
    values, logits, _ = forward(frames, model.initial_state())
    chosen = logits.log_softmax(-1).gather(1, torch.tensor(actions).unsqueeze(1)).squeeze(1)
    model.zero_grad(set_to_none=True)
    ((chosen * torch.linspace(-1, 1, len(frames))).sum() + values.pow(2).sum()).backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters()}
    return actions, torch.stack(log_probs), chosen.detach(), values.detach(), grads


def assert_same_rollout(plain, fast):
    assert fast[0] == plain[0]  # the same sampled actions
    for a, b in zip(plain[1:4], fast[1:4]):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)
    for name, grad in plain[4].items():
        torch.testing.assert_close(fast[4][name], grad, rtol=1e-4, atol=1e-6, msg=name)


@pytest.mark.parametrize("length", [20, 7])
def test_worker_fast_paths_give_the_plain_models_actions_values_and_gradients(a3c, length):
    """The fused LSTM over a rollout and the channels-last convolutions change no action, log-prob,
    value or gradient beyond float rounding; state dict keys are unchanged."""
    torch.manual_seed(3)
    plain = a3c.build_model("atari", (1, 42, 42), 6).train()
    fast = worker_model(a3c, plain)
    assert list(fast.state_dict()) == list(plain.state_dict())
    frames = fixed_frames(length)
    for seed in (0, 1, 2):
        reference = act_and_loss(lambda x, s: plain_forward(plain, x, s), plain, frames, seed)
        assert_same_rollout(reference, act_and_loss(fast, fast, frames, seed))
    # the last state of a rollout, which the next rollout starts from
    with torch.no_grad():
        state = (torch.randn(1, 256), torch.randn(1, 256))
        for a, b in zip(plain_forward(plain, frames, state)[2], fast(frames, state)[2]):
            torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_compiled_forward_gives_the_plain_models_actions_values_and_gradients(a3c):
    """`--compile`: the same for the compiled forward, a full rollout and a shorter (padded) one."""
    torch.manual_seed(3)
    plain = a3c.build_model("atari", (1, 42, 42), 6).train()
    fast = worker_model(a3c, plain)
    forward = a3c.compile_forward(fast, num_steps=20)
    for length in (20, 7):
        frames = fixed_frames(length)
        reference = act_and_loss(lambda x, s: plain_forward(plain, x, s), plain, frames, seed=length)
        assert_same_rollout(reference, act_and_loss(forward, fast, frames, seed=length))
    assert list(fast.state_dict()) == list(plain.state_dict())
