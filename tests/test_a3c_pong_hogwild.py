"""Unit tests of a3c_pong_hogwild.py: SharedAdam, GAE, the 42x42 frames, the stuck-action rule,
the Hogwild! gradient hand-over, and the process supervision (failing worker, Ctrl-C, resume)."""

import os
import signal
import subprocess
import sys
import time
from collections import deque
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
import torch.nn as nn

from conftest import ROOT, assert_user_error, load_script, read_scalars, run_script

SCRIPT = "a3c_pong_hogwild.py"
CARTPOLE_TINY = ["--env-id", "CartPole-v1", "--num-processes", "2", "--test-episodes", "2", "--eval-interval", "200"]


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


def test_gae_lambda_one_equals_n_step_returns_with_bootstrap(a3c):
    rewards, values = torch.tensor([1.0, 0.0, 2.0]), torch.tensor([0.5, 0.2, 0.1])
    advantages, returns = a3c.compute_gae(rewards, values, torch.tensor(3.0), gamma=0.9, gae_lambda=1.0)
    # R2 = 2 + 0.9 * 3 = 4.7, R1 = 0 + 0.9 * 4.7 = 4.23, R0 = 1 + 0.9 * 4.23 = 4.807
    torch.testing.assert_close(returns, torch.tensor([4.807, 4.23, 4.7]))
    torch.testing.assert_close(advantages, torch.tensor([4.307, 4.03, 4.6]))


def test_gae_lambda_one_equals_n_step_returns_without_bootstrap(a3c):
    rewards, values = torch.tensor([1.0, 0.0, 2.0]), torch.tensor([0.5, 0.2, 0.1])
    advantages, returns = a3c.compute_gae(rewards, values, torch.tensor(0.0), gamma=0.9, gae_lambda=1.0)
    # terminal: R2 = 2, R1 = 1.8, R0 = 1 + 0.9 * 1.8 = 2.62
    torch.testing.assert_close(returns, torch.tensor([2.62, 1.8, 2.0]))
    torch.testing.assert_close(advantages, torch.tensor([2.12, 1.6, 1.9]))


def test_gae_lambda_zero_is_the_one_step_td_error(a3c):
    rewards, values = torch.tensor([1.0, 0.0, 2.0]), torch.tensor([0.5, 0.2, 0.1])
    advantages, _ = a3c.compute_gae(rewards, values, torch.tensor(3.0), gamma=0.9, gae_lambda=0.0)
    # delta2 = 2 + 0.9 * 3 - 0.1, delta1 = 0 + 0.9 * 0.1 - 0.2, delta0 = 1 + 0.9 * 0.2 - 0.5
    torch.testing.assert_close(advantages, torch.tensor([0.68, -0.11, 4.6]))


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


def test_stuck_on_one_action_rule(a3c):
    actions = deque([3] * 99, maxlen=100)
    assert not a3c.stuck_on_one_action(actions)
    actions.append(3)
    assert a3c.stuck_on_one_action(actions)
    actions.append(1)
    assert not a3c.stuck_on_one_action(actions)


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
        return torch.zeros(1, 1), torch.tensor([[0.0, 5.0]]), state


def test_play_episode_ends_after_100_identical_actions(a3c):
    result = a3c.play_episode(_AlwaysAction1(), _EndlessEnv(), seed=0, greedy=True, max_repeat_actions=100)
    assert result == (100.0, 100)


# --- processes ------------------------------------------------------------------------------


def test_children_are_never_forked_from_the_parent(a3c):
    # forking a process whose torch thread pool is running hung the workers (see the smoke rows,
    # which run 2 worker processes to the end)
    assert a3c.start_method() in ("forkserver", "spawn")


def test_worker_that_raises_stops_the_run(tmp_path):
    start = time.time()
    result = run_script(
        SCRIPT,
        [*CARTPOLE_TINY, "--total-timesteps", "1000000"],
        cwd=tmp_path,
        timeout=60,
        env={"A3C_HOGWILD_FAIL_WORKER": "1"},
    )
    assert result.returncode == 1, result.stderr[-2000:]
    assert "worker 1 failed" in result.stderr and "raised on purpose" in result.stderr
    assert time.time() - start < 40
    assert processes_in(tmp_path) == []


def test_ctrl_c_saves_the_model_and_exits_130(tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / SCRIPT), *CARTPOLE_TINY, "--total-timesteps", "200000", "--save-model"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
        # as from a terminal: a background parent (CI, `cmd &`) may have SIGINT ignored, which children inherit
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        for line in proc.stdout:  # wait until training is under way
            if line.startswith("step "):
                break
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal does: the whole process group
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, stderr[-2000:]
    assert "Traceback" not in stderr
    (run_dir,) = (tmp_path / "runs").iterdir()
    checkpoint = torch.load(run_dir / "a3c_pong_hogwild.pt", weights_only=True)
    assert checkpoint["args"]["env_id"] == "CartPole-v1"
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
        [*tiny, "--total-timesteps", "1200", "--resume", str(run_dir / "checkpoint.pt"), "--exp-name", "b",
         "--no-shared-optimizer"],  # also covers one Adam per worker
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
        (["--env-id", "CartPole-v1", "--resume", "no_such_checkpoint.pt"], "--resume"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, flag, tmp_path):
    result = run_script(SCRIPT, args, cwd=tmp_path, timeout=60)
    assert_user_error(result, tmp_path, flag)


@pytest.mark.slow
def test_cartpole_greedy_mean_reaches_475(tmp_path):
    result = run_script(
        SCRIPT, ["--env-id", "CartPole-v1", "--num-processes", "2", "--total-timesteps", "200000"], tmp_path, timeout=900
    )
    assert result.returncode == 0, result.stderr[-2000:]
    (run_dir,) = (tmp_path / "runs").iterdir()
    means = [value for _, value in read_scalars(run_dir)["eval/mean_return"]]
    assert max(means) >= 475, means
