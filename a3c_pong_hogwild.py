"""A3C with Hogwild! shared-memory workers: Atari Pong (conv + LSTM) and classic control (MLP).

Follows, for the Atari mode, a Huawei Cloud ModelArts case study of A3C on Atari Pong (the stored
copy has no title or URL; it opens "A3C算法(Asynchronous advantage actor critic)是基于Actor-critic
架构提出来的一种并行强化学习算法"), after ikostrikov/pytorch-a3c
(https://github.com/ikostrikov/pytorch-a3c); for the classic-control mode, "DRL 教程 | 如何保持运动
小车上的旗杆屹立不倒?TensorFlow利用A3C算法训练智能体玩CartPole游戏"
(https://www.cnblogs.com/alan-blog-TsingHua/p/9733925.html, a translation of
https://medium.com/tensorflow/deep-reinforcement-learning-playing-cartpole-through-asynchronous-advantage-actor-critic-a3c-7eab2eea5296).

Usage:
    python a3c_pong_hogwild.py                                   # PongDeterministic-v4, one worker per core
    python a3c_pong_hogwild.py --num-processes 16 --save-model   # the article's 16-process set-up
    python a3c_pong_hogwild.py --env-id CartPole-v1 --num-processes 2
    python a3c_pong_hogwild.py --resume runs/<run name>/checkpoint.pt

How it works: the parent process owns one model in shared memory (`share_memory()`) and, by
default, a `SharedAdam` whose step counts and moments are in shared memory too. Each of the
`--num-processes` training workers (started by a fork server, or spawned; never forked from this
process; one torch thread each) copies the shared weights into a local model, plays up to
`--num-steps` steps of its own env,
computes the A3C loss, and writes its gradients into the shared parameters and steps the
optimizer without any lock (Hogwild!). A shared counter of env steps ends the run at
`--total-timesteps`. A separate test process plays greedy episodes with the shared weights
every `--eval-interval` steps. Only the parent writes TensorBoard: workers and the test
process send their episode statistics, losses and evaluations through a multiprocessing queue.

The defaults that differ between the two articles are `None` in Args and resolved from the
observation space: an image observation (Atari) takes article 002's values, a flat vector
observation (classic control) article 001's (see MODE_DEFAULTS). A value given on the command
line always wins.

Departures from the articles:
- gymnasium 1.x API (`reset(seed=...)`, 5-tuple `step`), terminated vs truncated: a time-limit
  truncation is bootstrapped from the critic, a termination is not;
- `PongDeterministic-v4` (and any `<Game>Deterministic-v4`) is no longer registered by ale-py;
  it is mapped to its old meaning: `<Game>NoFrameskip-v4` with a fixed frame skip of 4, no
  sticky actions and at most 100000 steps per episode;
- SharedAdam is rewritten for today's torch (keyword `alpha=`/`value=` arithmetic, the same
  update as `torch.optim.Adam`); gradients are copied into the shared parameters explicitly on
  every update (torch 2.x `zero_grad()` sets them to None, which breaks the article's trick of
  pointing the shared `.grad` at the local one once);
- the "forkserver" start method ("spawn" where there is none) and `torch.set_num_threads(1)`
  inside each worker (setting `OMP_NUM_THREADS` after importing torch and then forking can hang
  the workers);
- CartPole runs in processes, not threads (the article's threads share one GIL), uses the
  same PyTorch A3C machinery as Pong (summed losses, entropy as a bonus: article 001's code has
  the entropy sign reversed), and does not overwrite the terminal reward with -1;
- the test process plays `--test-episodes` episodes every `--eval-interval` steps instead of
  back to back, so that it does not take a core from the workers;
- the parent supervises its children: a failing worker stops the run with its error, Ctrl-C
  saves and exits 130; checkpoints and `--resume`.
"""

import contextlib
import io
import math
import os
import random
import signal
import sys
import time
import traceback
from collections import deque
from queue import Empty
from dataclasses import dataclass
from typing import Optional

import cv2
import gymnasium as gym
import numpy as np
import torch
import torch.multiprocessing as mp
import torch.nn as nn
import torch.nn.functional as F
import tyro
from torch.utils.tensorboard import SummaryWriter


@dataclass
class Args:
    exp_name: str = os.path.basename(__file__)[: -len(".py")]
    """the name of this experiment (used in the run name and the saved model's file name)"""
    seed: int = 1
    """seed of the experiment (Python, NumPy, torch and the environments)"""
    torch_deterministic: bool = True
    """if toggled, sets `torch.backends.cudnn.deterministic=True`"""
    cuda: bool = True
    """if toggled, cuda is used when available"""
    track: bool = False
    """if toggled, the run is also tracked with Weights and Biases (needs `pip install wandb`)"""
    capture_video: bool = False
    """if toggled, videos of the first environment are saved to `videos/` (needs the `video` extra)"""
    save_model: bool = False
    """if toggled, the model is saved to `runs/<run name>/<exp_name>.pt` and evaluated"""

    env_id: str = "PongDeterministic-v4"
    """an Atari id or a flat-Box env with Discrete actions (`env_name` in the article); `<Game>Deterministic-v4` = `<Game>NoFrameskip-v4` with frameskip 4, no sticky actions"""
    total_timesteps: Optional[int] = None
    """total env steps over all workers (`max_steps` in the article); default 2000000 (Atari), 500000 (classic control)"""

    # Algorithm specific arguments
    num_processes: Optional[int] = None
    """the number of training worker processes; default: the number of CPU cores"""
    learning_rate: Optional[float] = None
    """the Adam learning rate (`lr` in the articles); default 1e-4 (Atari), 5e-4 (classic control)"""
    num_steps: int = 20
    """the steps of a rollout between updates, cut short at an episode end (`update_freq` in article 001)"""
    gamma: float = 0.99
    """the discount factor gamma"""
    gae_lambda: float = 1.0
    """the lambda for the generalised advantage estimate of the policy loss"""
    ent_coef: float = 0.01
    """coefficient of the entropy bonus (`entropy_coef` in the article)"""
    vf_coef: float = 0.5
    """coefficient of the value loss (`value_loss_coef` in the article)"""
    max_grad_norm: float = 50.0
    """the maximum norm for gradient clipping of each worker's gradients"""
    shared_optimizer: bool = True
    """if toggled, one SharedAdam (moments in shared memory) serves all workers; `--no-shared-optimizer` gives each its own Adam"""
    clip_rewards: Optional[bool] = None
    """if toggled, training rewards are clipped to [-1, 1] (logged returns never are); default on (Atari), off (classic control)"""
    max_episode_steps: Optional[int] = None
    """cut (truncate) an episode after this many steps (`max_episode_length` in the article); default: the env's own limit"""
    eval_interval: Optional[int] = None
    """env steps between two evaluations of the test process; default 50000 (Atari), 10000 (classic control)"""
    test_episodes: Optional[int] = None
    """greedy episodes the test process plays per evaluation (0: no test process); default 1 (Atari), 20 (classic control)"""
    greedy_eval: bool = True
    """if toggled, the test process takes the most likely action (as in the articles); `--no-greedy-eval` samples"""
    max_repeat_actions: int = 100
    """the test process ends an episode stuck on one action for this many steps (0: never)"""
    checkpoint_interval: int = 500000
    """save `runs/<run name>/checkpoint.pt` every this many env steps (0: never)"""
    resume: Optional[str] = None
    """resume from a checkpoint file: shared weights, SharedAdam state and step counter"""
    eval_episodes: int = 10
    """the number of evaluation episodes run with the saved model (with `--save-model`)"""


# values of the `None` defaults above, per kind of observation
MODE_DEFAULTS = {
    "atari": dict(
        total_timesteps=2_000_000, learning_rate=1e-4, clip_rewards=True, eval_interval=50_000, test_episodes=1
    ),
    "classic": dict(
        total_timesteps=500_000, learning_rate=5e-4, clip_rewards=False, eval_interval=10_000, test_episodes=20
    ),
}
# each worker reports its losses averaged over this many updates
LOSS_REPORT_UPDATES = 10
# testing hook, not a flag: the training worker with this rank raises after its first update
FAIL_WORKER_ENV = "A3C_HOGWILD_FAIL_WORKER"


def fail(message: str) -> None:
    """A user error: one line on stderr (a multi-line message, e.g. from an exception, is joined),
    exit status 2, before anything is written."""
    print("error: " + " ".join(message.split()), file=sys.stderr)
    sys.exit(2)


def parse_args() -> Args:
    """`tyro.cli(Args)`, with a parse error (a bad value, an unknown flag) shortened from tyro's box to
    one `error:` line; --help is untouched."""
    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured):
            return tyro.cli(Args)
    except SystemExit as e:
        box = [line.strip("│╭╰─ ") for line in captured.getvalue().splitlines()]
        message = []
        for line in box[1:]:  # box[0] is the title bar; the message runs to the first rule
            if not line:
                break
            message.append(line)
        if e.code == 2 and message:
            guess = box[box.index("Perhaps you meant:") + 1].split()[0] if "Perhaps you meant:" in box else ""
            fail(" ".join(message) + (f" (did you mean {guess}?)" if guess else " (see --help)"))
        sys.stderr.write(captured.getvalue())
        raise


def make_run_name(args) -> str:
    safe_env_id = args.env_id.replace("/", "-").replace(":", "-")
    return f"{safe_env_id}__{args.exp_name}__{args.seed}__{int(time.time())}"


def make_writer(args, run_name: str) -> SummaryWriter:
    if args.track:
        import wandb

        wandb.init(project=args.exp_name, sync_tensorboard=True, config=vars(args), name=run_name, save_code=True)
    writer = SummaryWriter(f"runs/{run_name}")
    writer.add_text(
        "hyperparameters",
        "|param|value|\n|-|-|\n%s" % ("\n".join([f"|{key}|{value}|" for key, value in vars(args).items()])),
    )
    return writer


def seed_everything(seed: int, torch_deterministic: bool) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.backends.cudnn.deterministic = torch_deterministic


def format_seconds(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


# ---------------------------------------------------------------------------------------------
# environments


def resolve_env_id(env_id: str) -> tuple[str, dict]:
    """Map the ids ale-py 0.12 no longer registers to their old meaning: (id to make, kwargs)."""
    if env_id.endswith("Deterministic-v4") and "/" not in env_id:
        game = env_id[: -len("Deterministic-v4")]
        return f"{game}NoFrameskip-v4", dict(frameskip=4, repeat_action_probability=0.0, max_episode_steps=100_000)
    return env_id, {}


def env_kind(observation_space: gym.Space) -> Optional[str]:
    """"atari" for an RGB frame, "classic" for a flat vector, None for anything else."""
    if isinstance(observation_space, gym.spaces.Box):
        if len(observation_space.shape) == 3 and observation_space.shape[-1] == 3:
            return "atari"
        if len(observation_space.shape) == 1:
            return "classic"
    return None


def process_frame42(frame: np.ndarray) -> np.ndarray:
    """Crop the playing field, resize to 42x42 (via 80x80, on uint8 as the article does), average
    the colour channels and scale to [0, 1]: a float32 array of shape (1, 42, 42)."""
    frame = frame[34 : 34 + 160, :160]
    frame = cv2.resize(frame, (80, 80))
    frame = cv2.resize(frame, (42, 42))
    frame = frame.mean(2, keepdims=True).astype(np.float32) * (1.0 / 255.0)
    return np.moveaxis(frame, -1, 0)


class Rescale42x42(gym.ObservationWrapper):
    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.observation_space = gym.spaces.Box(0.0, 1.0, (1, 42, 42), np.float32)

    def observation(self, observation):
        return process_frame42(observation)


class RunningFrameNorm(gym.ObservationWrapper):
    """Normalise each frame by an exponential running mean and std of the frames' means and stds
    (alpha 0.9999), bias-corrected like Adam's moments. The statistics persist across episodes."""

    def __init__(self, env: gym.Env, alpha: float = 0.9999):
        super().__init__(env)
        self.alpha = alpha
        self.state_mean = 0.0
        self.state_std = 0.0
        self.num_steps = 0
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, env.observation_space.shape, np.float32)

    def observation(self, observation):
        self.num_steps += 1
        self.state_mean = self.state_mean * self.alpha + float(observation.mean()) * (1 - self.alpha)
        self.state_std = self.state_std * self.alpha + float(observation.std()) * (1 - self.alpha)
        correction = 1 - self.alpha**self.num_steps
        mean, std = self.state_mean / correction, self.state_std / correction
        return ((observation - mean) / (std + 1e-8)).astype(np.float32)


def make_env(env_id: str, max_episode_steps: Optional[int] = None, video_folder: Optional[str] = None) -> gym.Env:
    """One environment: episode statistics (true, unclipped whole-game returns) recorded before
    any preprocessing; Atari frames become normalised 42x42 grey frames."""
    make_id, kwargs = resolve_env_id(env_id)
    if max_episode_steps is not None:
        kwargs["max_episode_steps"] = max_episode_steps
    if video_folder is not None:
        kwargs["render_mode"] = "rgb_array"
    env = gym.make(make_id, **kwargs)
    if video_folder is not None:
        env = gym.wrappers.RecordVideo(env, video_folder, episode_trigger=lambda episode: True)
    env = gym.wrappers.RecordEpisodeStatistics(env)
    if env_kind(env.observation_space) == "atari":
        env = RunningFrameNorm(Rescale42x42(env))
    return env


def check_env(env_id: str) -> str:
    """Build the env once; fail unless its spaces are supported. Returns its kind."""
    try:
        import ale_py

        gym.register_envs(ale_py)
    except ImportError:
        pass
    try:
        env = make_env(env_id)
    except Exception as e:  # unknown id, missing module, env constructor error
        fail(f"--env-id {env_id!r} cannot be made: {type(e).__name__}: {e}")
    action_space, observation_space = env.action_space, env.unwrapped.observation_space
    env.close()
    if not isinstance(action_space, gym.spaces.Discrete):
        fail(f"--env-id {env_id!r} has action space {action_space}; this script needs Discrete actions")
    kind = env_kind(observation_space)
    if kind is None:
        fail(
            f"--env-id {env_id!r} has observation space {observation_space}; this script needs "
            "RGB Atari frames (H, W, 3) or a flat Box"
        )
    return kind


# ---------------------------------------------------------------------------------------------
# networks


def normalized_columns_init(weight: torch.Tensor, std: float = 1.0) -> torch.Tensor:
    """Gaussian weights scaled so that each output unit's weight vector has norm `std`."""
    out = torch.randn(weight.size())
    out *= std / torch.sqrt(out.pow(2).sum(1, keepdim=True))
    return out


def glorot_uniform_init(module: nn.Module) -> None:
    """The article's `weights_init`: Glorot-uniform conv and linear weights, zero biases."""
    if isinstance(module, (nn.Conv2d, nn.Linear)):
        fan_in = np.prod(module.weight.shape[1:])
        fan_out = np.prod(module.weight.shape[2:]) * module.weight.shape[0]
        bound = float(np.sqrt(6.0 / (fan_in + fan_out)))
        with torch.no_grad():
            module.weight.uniform_(-bound, bound)
            module.bias.zero_()


class AtariActorCritic(nn.Module):
    """Four conv3x3/stride-2 layers of 32 filters (ELU) on a 42x42 frame, LSTMCell(288, 256),
    linear critic and actor heads with normalised-columns init (std 1.0 and 0.01)."""

    def __init__(self, in_channels: int, num_actions: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 32, 3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(32, 32, 3, stride=2, padding=1)
        self.conv3 = nn.Conv2d(32, 32, 3, stride=2, padding=1)
        self.conv4 = nn.Conv2d(32, 32, 3, stride=2, padding=1)
        self.lstm = nn.LSTMCell(32 * 3 * 3, 256)
        self.critic_linear = nn.Linear(256, 1)
        self.actor_linear = nn.Linear(256, num_actions)
        self.apply(glorot_uniform_init)
        with torch.no_grad():
            self.actor_linear.weight.copy_(normalized_columns_init(self.actor_linear.weight, 0.01))
            self.critic_linear.weight.copy_(normalized_columns_init(self.critic_linear.weight, 1.0))
            self.lstm.bias_ih.zero_()
            self.lstm.bias_hh.zero_()

    def initial_state(self):
        return (torch.zeros(1, 256), torch.zeros(1, 256))

    def forward(self, x: torch.Tensor, state):
        x = F.elu(self.conv1(x))
        x = F.elu(self.conv2(x))
        x = F.elu(self.conv3(x))
        x = F.elu(self.conv4(x))
        hx, cx = self.lstm(x.flatten(1), state)
        return self.critic_linear(hx), self.actor_linear(hx), (hx, cx)

    def forward_rollout(self, x: torch.Tensor, state):
        """Values (T,) and logits (T, A) of a rollout of T frames that started in `state`: the
        convolutions in one batch, the LSTM cell step by step."""
        x = F.elu(self.conv1(x))
        x = F.elu(self.conv2(x))
        x = F.elu(self.conv3(x))
        x = F.elu(self.conv4(x))
        features, hiddens = x.flatten(1), []
        for t in range(features.shape[0]):
            state = self.lstm(features[t : t + 1], state)
            hiddens.append(state[0])
        hx = torch.cat(hiddens)
        return self.critic_linear(hx).squeeze(1), self.actor_linear(hx)


class MLPActorCritic(nn.Module):
    """Article 001's model: a 100-unit ReLU layer for the policy and another for the value; the
    heads get the same normalised-columns init as the Atari model. Stateless (state is None)."""

    def __init__(self, obs_dim: int, num_actions: int, hidden: int = 100):
        super().__init__()
        self.actor_hidden = nn.Linear(obs_dim, hidden)
        self.critic_hidden = nn.Linear(obs_dim, hidden)
        self.actor_linear = nn.Linear(hidden, num_actions)
        self.critic_linear = nn.Linear(hidden, 1)
        self.apply(glorot_uniform_init)
        with torch.no_grad():
            self.actor_linear.weight.copy_(normalized_columns_init(self.actor_linear.weight, 0.01))
            self.critic_linear.weight.copy_(normalized_columns_init(self.critic_linear.weight, 1.0))

    def initial_state(self):
        return None

    def forward(self, x: torch.Tensor, state):
        value = self.critic_linear(F.relu(self.critic_hidden(x)))
        logits = self.actor_linear(F.relu(self.actor_hidden(x)))
        return value, logits, state

    def forward_rollout(self, x: torch.Tensor, state):
        value, logits, _ = self.forward(x, state)
        return value.squeeze(1), logits


def build_model(kind: str, obs_shape: tuple, num_actions: int) -> nn.Module:
    if kind == "atari":
        return AtariActorCritic(obs_shape[0], num_actions)
    return MLPActorCritic(int(np.prod(obs_shape)), num_actions)


def detach_state(state):
    return None if state is None else tuple(s.detach() for s in state)


# ---------------------------------------------------------------------------------------------
# algorithm: returns, losses, the Hogwild! update, the shared optimizer


def compute_gae(
    rewards: torch.Tensor, values: torch.Tensor, bootstrap_value: torch.Tensor, gamma: float, gae_lambda: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Advantages (GAE) and discounted n-step returns of one worker's rollout of T steps.

    `values` holds V(s_0..s_{T-1}); `bootstrap_value` is V(s_T): 0 when the episode terminated
    at the last step, the critic's value of the next (or, for a truncation, the final)
    observation otherwise. A rollout never crosses an episode end. With `gae_lambda` = 1 the
    advantages equal the n-step returns minus the values.
    """
    reward_list, value_list = rewards.tolist(), values.detach().tolist()
    advantages, returns = [0.0] * len(reward_list), [0.0] * len(reward_list)
    ret = next_value = float(bootstrap_value)
    gae = 0.0
    for t in reversed(range(len(reward_list))):
        ret = reward_list[t] + gamma * ret
        returns[t] = ret
        delta = reward_list[t] + gamma * next_value - value_list[t]
        gae = delta + gamma * gae_lambda * gae
        advantages[t] = gae
        next_value = value_list[t]
    return torch.tensor(advantages, dtype=torch.float32), torch.tensor(returns, dtype=torch.float32)


def a3c_loss(
    log_probs: torch.Tensor,
    entropies: torch.Tensor,
    values: torch.Tensor,
    advantages: torch.Tensor,
    returns: torch.Tensor,
    ent_coef: float,
    vf_coef: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(total, policy, value) losses, summed over the rollout as in the article:
    policy = -sum(log pi(a|s) * A) - ent_coef * sum(H), value = sum(0.5 * (R - V)^2)."""
    policy_loss = -(log_probs * advantages.detach()).sum() - ent_coef * entropies.sum()
    value_loss = 0.5 * (returns - values).pow(2).sum()
    return policy_loss + vf_coef * value_loss, policy_loss, value_loss


def hogwild_update(
    local_model: nn.Module, shared_model: nn.Module, optimizer, loss: torch.Tensor, max_grad_norm: float
) -> float:
    """Backpropagate `loss` through the local model, clip, and step the optimizer of the shared
    parameters with exactly these gradients, without a lock.

    The gradients are handed over explicitly on every update. The article's trick (point the
    shared parameter's `.grad` at the local one once, skip when it is already set) breaks on
    torch 2.x, where `zero_grad()` sets gradients to None: the pointers go stale and gradients
    accumulate. A shared parameter's `.grad` lives in this process only; its data is shared.
    """
    local_model.zero_grad(set_to_none=True)
    loss.backward()
    grad_norm = nn.utils.clip_grad_norm_(local_model.parameters(), max_grad_norm)
    for local_param, shared_param in zip(local_model.parameters(), shared_model.parameters()):
        shared_param.grad = None if local_param.grad is None else local_param.grad.clone()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return float(grad_norm)


class SharedAdam(torch.optim.Optimizer):
    """Adam whose step counts and moments live in shared memory, so that every worker process
    updates the same statistics (call `share_memory()` before starting the workers).

    The state is made eagerly (a lazily made state would be private to the process that makes
    it); the update is `torch.optim.Adam`'s (no AMSGrad), written with today's keyword forms.
    """

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))
        for group in self.param_groups:
            for p in group["params"]:
                state = self.state[p]
                state["step"] = torch.zeros(())
                state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)

    def share_memory(self) -> "SharedAdam":
        for group in self.param_groups:
            for p in group["params"]:
                for value in self.state[p].values():
                    value.share_memory_()
        return self

    def load_shared_state(self, state_dict: dict) -> None:
        """Copy a saved `state_dict()` into the existing (shared) state tensors in place."""
        saved = state_dict["state"]
        params = [p for group in self.param_groups for p in group["params"]]
        for index, p in enumerate(params):
            for key in ("step", "exp_avg", "exp_avg_sq"):
                self.state[p][key].copy_(saved[index][key])

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                if group["weight_decay"] != 0:
                    grad = grad.add(p, alpha=group["weight_decay"])
                state = self.state[p]
                state["step"] += 1
                step = float(state["step"])
                state["exp_avg"].mul_(beta1).add_(grad, alpha=1 - beta1)
                state["exp_avg_sq"].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                bias_correction1 = 1 - beta1**step
                bias_correction2_sqrt = math.sqrt(1 - beta2**step)
                denom = (state["exp_avg_sq"].sqrt() / bias_correction2_sqrt).add_(group["eps"])
                p.addcdiv_(state["exp_avg"], denom, value=-group["lr"] / bias_correction1)
        return loss


def stuck_on_one_action(recent_actions: deque) -> bool:
    """The test process's rule: the last `maxlen` actions (a full window) are all the same."""
    return len(recent_actions) == recent_actions.maxlen and recent_actions.count(recent_actions[0]) == len(
        recent_actions
    )


@torch.no_grad()
def play_episode(model, env, seed: Optional[int], greedy: bool, max_repeat_actions: int, stop_event=None):
    """One whole episode; returns (return, length), or None when `stop_event` was set."""
    obs, _ = env.reset(seed=seed)
    state = model.initial_state()
    recent_actions = deque(maxlen=max_repeat_actions) if max_repeat_actions > 0 else None
    episode_return, episode_length = 0.0, 0
    while True:
        if stop_event is not None and stop_event.is_set():
            return None
        _, logits, state = model(torch.as_tensor(obs, dtype=torch.float32).unsqueeze(0), state)
        if greedy:
            action = int(logits.argmax(dim=1))
        else:
            action = int(torch.multinomial(F.softmax(logits, dim=-1), 1))
        obs, reward, terminated, truncated, _ = env.step(action)
        episode_return += float(reward)
        episode_length += 1
        if recent_actions is not None:
            recent_actions.append(action)
        if terminated or truncated or (recent_actions is not None and stuck_on_one_action(recent_actions)):
            return episode_return, episode_length


# ---------------------------------------------------------------------------------------------
# processes


def parent_alive() -> bool:
    """In a child: whether the process that started it still runs (a fork server's children
    are not the parent's children, so `os.getppid()` cannot tell)."""
    parent = mp.parent_process()
    return parent is None or parent.is_alive()


def _child_setup(seed: int) -> None:
    # Ctrl-C is the parent's business: it stops the children through `stop_event`
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(1)
    seed_everything(seed, True)
    try:
        import ale_py

        gym.register_envs(ale_py)
    except ImportError:
        pass


def train_worker(rank, args, kind, shared_model, optimizer, counter, stop_event, queue):
    """A training process: sync, roll out up to `num_steps` steps, update the shared model."""
    try:
        _child_setup(args.seed + rank)
        fail_rank = os.environ.get(FAIL_WORKER_ENV)
        env = make_env(args.env_id, args.max_episode_steps)
        env.action_space.seed(args.seed + rank)
        model = build_model(kind, env.observation_space.shape, env.action_space.n)
        model.train()
        rng = np.random.default_rng(args.seed + rank)
        if optimizer is None:
            optimizer = torch.optim.Adam(shared_model.parameters(), lr=args.learning_rate)
        obs, _ = env.reset(seed=args.seed + rank)
        state = model.initial_state()
        num_updates, loss_sums = 0, np.zeros(4)
        while not stop_event.is_set() and counter.value < args.total_timesteps:
            if not parent_alive():  # the parent died without stopping us
                break
            model.load_state_dict(shared_model.state_dict())
            state = detach_state(state)
            rollout_state = state
            # the rollout runs without a graph; the loss re-runs the same inputs through the same
            # (local, unchanged) weights in one batch, which gives the same gradients faster
            observations, actions, rewards = [], [], []
            terminated = truncated = False
            with torch.no_grad():
                for _ in range(args.num_steps):
                    x = torch.as_tensor(obs, dtype=torch.float32).unsqueeze(0)
                    _, logits, state = model(x, state)
                    probs = F.softmax(logits, dim=-1)[0].numpy().astype(np.float64)
                    action = min(int(np.searchsorted(np.cumsum(probs), rng.random() * probs.sum())), len(probs) - 1)
                    observations.append(x)
                    actions.append(action)
                    obs, reward, terminated, truncated, info = env.step(action)
                    if args.clip_rewards:
                        reward = max(min(float(reward), 1.0), -1.0)
                    rewards.append(float(reward))
                    if terminated or truncated:
                        break
                if terminated:
                    bootstrap = torch.zeros(())
                else:  # the next observation, or the final one of a truncated episode
                    bootstrap = model(torch.as_tensor(obs, dtype=torch.float32).unsqueeze(0), state)[0].reshape(())
            with counter.get_lock():
                counter.value += len(rewards)
                global_step = counter.value
            if terminated or truncated:
                queue.put(("episode", rank, global_step, float(info["episode"]["r"]), int(info["episode"]["l"])))
                obs, _ = env.reset()
                state = model.initial_state()
            # advantages
            values, logits = model.forward_rollout(torch.cat(observations), rollout_state)
            log_probs_all = F.log_softmax(logits, dim=-1)
            entropies = -(log_probs_all.exp() * log_probs_all).sum(-1)
            log_probs = log_probs_all.gather(1, torch.tensor(actions).unsqueeze(1)).squeeze(1)
            advantages, returns = compute_gae(
                torch.tensor(rewards), values, bootstrap, args.gamma, args.gae_lambda
            )
            # update
            loss, policy_loss, value_loss = a3c_loss(
                log_probs, entropies, values, advantages, returns, args.ent_coef, args.vf_coef
            )
            grad_norm = hogwild_update(model, shared_model, optimizer, loss, args.max_grad_norm)
            num_updates += 1
            loss_sums += np.array([policy_loss.item(), value_loss.item(), float(entropies.detach().mean()), grad_norm])
            if num_updates % LOSS_REPORT_UPDATES == 0:
                queue.put(("losses", global_step, *(loss_sums / LOSS_REPORT_UPDATES).tolist()))
                loss_sums[:] = 0.0
            if fail_rank is not None and int(fail_rank) == rank:
                raise RuntimeError(f"worker {rank} raised on purpose ({FAIL_WORKER_ENV}={fail_rank})")
        if num_updates % LOSS_REPORT_UPDATES:
            queue.put(("losses", global_step, *(loss_sums / (num_updates % LOSS_REPORT_UPDATES)).tolist()))
        env.close()
    except Exception:
        queue.put(("error", f"worker {rank}", traceback.format_exc()))
        sys.exit(1)


def test_worker(args, kind, shared_model, counter, stop_event, queue, first_eval_step, video_folder):
    """The test process: every `eval_interval` steps, play `test_episodes` episodes with the
    shared weights and report them to the parent."""
    try:
        _child_setup(args.seed + args.num_processes)
        env = make_env(args.env_id, args.max_episode_steps, video_folder)
        model = build_model(kind, env.observation_space.shape, env.action_space.n)
        model.eval()
        next_eval, episode_seed = first_eval_step, args.seed + 100_000
        while not stop_event.is_set() and parent_alive():
            if counter.value < next_eval:
                stop_event.wait(0.05)
                continue
            eval_step = counter.value
            model.load_state_dict(shared_model.state_dict())
            returns, lengths = [], []
            for _ in range(args.test_episodes):
                result = play_episode(model, env, episode_seed, args.greedy_eval, args.max_repeat_actions, stop_event)
                episode_seed += 1
                if result is None:
                    break
                returns.append(result[0])
                lengths.append(result[1])
            if len(returns) == args.test_episodes:
                queue.put(("eval", eval_step, returns, lengths, time.time()))
            next_eval = eval_step + args.eval_interval
        env.close()
    except Exception:
        queue.put(("error", "test process", traceback.format_exc()))
        sys.exit(1)


def start_method() -> str:
    """"forkserver" where the platform has it, else "spawn"; never "fork": forking a process in
    which torch has already started its thread pool can leave the children hung. The fork server
    is a fresh process that only imports this file, so its forks start in a fraction of a second
    instead of re-importing torch in every child (spawn)."""
    return "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"


def stop_processes(processes, stop_event, handle_message, timeout: float = 10.0) -> None:
    """Ask every child to stop, keep draining the queue meanwhile (a child that has put data on
    a queue cannot exit before it is read), then terminate and kill what is left."""
    stop_event.set()
    deadline = time.time() + timeout
    while any(p.is_alive() for p in processes) and time.time() < deadline:
        handle_message(0.05)
    for p in processes:
        if p.is_alive():
            p.terminate()
    for p in processes:
        p.join(2.0)
        if p.is_alive():
            p.kill()
            p.join()
    handle_message(0.0)


# ---------------------------------------------------------------------------------------------
# models and checkpoints on disk


def save_atomic(payload: dict, path: str) -> None:
    """Atomic save: a half-written file never replaces a good one."""
    tmp_path = path + ".tmp"
    torch.save(payload, tmp_path)
    os.replace(tmp_path, path)


def load_checkpoint(path: str) -> dict:
    """Read a `checkpoint.pt` (or a `--save-model` file); a user error when it is not one."""
    if not os.path.isfile(path):
        fail(f"--resume {path!r}: no such file")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        fail(f"--resume {path!r} is not a checkpoint file: {type(e).__name__}: {e}")
    if not isinstance(checkpoint, dict) or "model" not in checkpoint or "args" not in checkpoint:
        fail(f"--resume {path!r} is not a checkpoint of this script (needs 'model' and 'args')")
    return checkpoint


def load_model(path: str) -> tuple[nn.Module, dict]:
    """Load a `--save-model` file: returns the model (in eval mode) and the Args as a dict."""
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    saved_args = checkpoint["args"]
    env = make_env(saved_args["env_id"])
    model = build_model(env_kind(env.unwrapped.observation_space), env.observation_space.shape, env.action_space.n)
    env.close()
    model.load_state_dict(checkpoint["model"])
    return model.eval(), saved_args


def validate_args(args: Args) -> None:
    for name in ("total_timesteps", "num_processes", "num_steps", "eval_interval"):
        if getattr(args, name) <= 0:
            fail(f"--{name.replace('_', '-')} must be a positive integer, got {getattr(args, name)}")
    for name in ("test_episodes", "max_repeat_actions", "checkpoint_interval", "eval_episodes"):
        if getattr(args, name) < 0:
            fail(f"--{name.replace('_', '-')} must be >= 0, got {getattr(args, name)}")
    if args.max_episode_steps is not None and args.max_episode_steps <= 0:
        fail(f"--max-episode-steps must be a positive integer, got {args.max_episode_steps}")
    if args.learning_rate <= 0:
        fail(f"--learning-rate must be positive, got {args.learning_rate}")
    if not 0.0 < args.gamma <= 1.0 or not 0.0 <= args.gae_lambda <= 1.0:
        fail("--gamma must be in (0, 1] and --gae-lambda in [0, 1]")
    if args.max_grad_norm <= 0:
        fail(f"--max-grad-norm must be positive, got {args.max_grad_norm}")
    if args.capture_video and args.test_episodes == 0:
        fail("--capture-video records the test process's episodes and needs --test-episodes > 0")
    if args.track:
        try:
            import wandb  # noqa: F401
        except ImportError:
            fail("--track needs Weights and Biases: pip install wandb")
    if args.capture_video:
        try:
            import moviepy  # noqa: F401
        except ImportError:
            fail('--capture-video needs moviepy: pip install -e ".[video]"')


def resolve_defaults(args: Args, kind: str) -> None:
    """Fill the `None` defaults from MODE_DEFAULTS (and the core count)."""
    for name, value in MODE_DEFAULTS[kind].items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.num_processes is None:
        args.num_processes = os.cpu_count() or 1


if __name__ == "__main__":
    args = parse_args()
    kind = check_env(args.env_id)
    resolve_defaults(args, kind)
    validate_args(args)
    checkpoint = load_checkpoint(args.resume) if args.resume is not None else None
    if checkpoint is not None and checkpoint["args"].get("env_id") != args.env_id:
        fail(f"--resume was made with --env-id {checkpoint['args'].get('env_id')!r}, not {args.env_id!r}")
    if args.cuda and torch.cuda.is_available():
        print("note: Hogwild! workers share CPU memory; --cuda is ignored", file=sys.stderr)

    # seeding
    seed_everything(args.seed, args.torch_deterministic)
    torch.set_num_threads(1)

    # env setup
    probe_env = make_env(args.env_id)
    obs_shape, num_actions = probe_env.observation_space.shape, int(probe_env.action_space.n)
    probe_env.close()
    shared_model = build_model(kind, obs_shape, num_actions)
    if checkpoint is not None:
        try:
            shared_model.load_state_dict(checkpoint["model"])
        except Exception as e:
            fail(f"--resume: the checkpoint's model does not fit {args.env_id!r}: {e}")
    shared_model.share_memory()
    optimizer = None
    if args.shared_optimizer:
        optimizer = SharedAdam(shared_model.parameters(), lr=args.learning_rate)
        if checkpoint is not None and "optimizer" in checkpoint:
            try:
                optimizer.load_shared_state(checkpoint["optimizer"])
            except Exception as e:
                fail(f"--resume: the checkpoint's optimizer state does not fit: {type(e).__name__}: {e}")
        optimizer.share_memory()
    start_step = int(checkpoint.get("global_step", 0)) if checkpoint is not None else 0
    if start_step >= args.total_timesteps:
        fail(f"--total-timesteps {args.total_timesteps} is not beyond the checkpoint's step {start_step}")

    run_name = make_run_name(args)
    writer = make_writer(args, run_name)
    model_path = f"runs/{run_name}/{args.exp_name}.pt"
    checkpoint_path = f"runs/{run_name}/checkpoint.pt"

    # storage
    ctx = mp.get_context(start_method())
    counter = ctx.Value("q", start_step)
    stop_event = ctx.Event()
    queue = ctx.Queue()
    recent_returns = deque(maxlen=20)
    errors = []
    last_eval = None

    def handle_message(timeout: float) -> None:
        """Write whatever the children sent; wait at most `timeout` s for the first message."""
        global last_eval
        while True:
            try:
                message = queue.get(timeout=timeout) if timeout > 0 else queue.get_nowait()
            except Empty:
                return
            timeout = 0.0
            kind_of = message[0]
            if kind_of == "episode":
                _, rank, step, episodic_return, episodic_length = message
                writer.add_scalar("charts/episodic_return", episodic_return, step)
                writer.add_scalar("charts/episodic_length", episodic_length, step)
                recent_returns.append(episodic_return)
            elif kind_of == "losses":
                _, step, policy_loss, value_loss, entropy, grad_norm = message
                writer.add_scalar("losses/policy_loss", policy_loss, step)
                writer.add_scalar("losses/value_loss", value_loss, step)
                writer.add_scalar("losses/entropy", entropy, step)
                writer.add_scalar("losses/grad_norm", grad_norm, step)
            elif kind_of == "eval":
                _, step, returns, lengths, wall = message
                for episodic_return in returns:
                    writer.add_scalar("eval/episodic_return", episodic_return, step)
                mean = float(np.mean(returns))
                writer.add_scalar("eval/mean_return", mean, step)
                writer.add_scalar("eval/time_seconds", wall - start_time, step)
                writer.add_scalar("eval/SPS", (step - start_step) / max(wall - start_time, 1e-9), step)
                last_eval = (step, mean, len(returns))
                print(
                    f"eval  step {step:>9d} | {len(returns)} {'greedy ' if args.greedy_eval else ''}episodes "
                    f"| return {mean:8.2f} ± {float(np.std(returns)):.2f} | time {format_seconds(wall - start_time)}",
                    flush=True,
                )
            elif kind_of == "error":
                errors.append((message[1], message[2]))

    # rollout
    print(
        f"{args.env_id} ({kind}): {args.num_processes} training processes + "
        f"{'1 test process' if args.test_episodes else 'no test process'}, "
        f"{'SharedAdam' if args.shared_optimizer else 'one Adam per worker'}, lr {args.learning_rate}, "
        f"{args.total_timesteps} steps",
        flush=True,
    )
    start_time = time.time()
    interrupted = False
    processes = []
    video_folder = f"videos/{run_name}" if args.capture_video else None
    previous_sigint = signal.signal(signal.SIGINT, signal.SIG_IGN)  # children start immune to Ctrl-C
    for rank in range(args.num_processes):
        p = ctx.Process(
            target=train_worker,
            args=(rank, args, kind, shared_model, optimizer, counter, stop_event, queue),
            daemon=True,
        )
        p.start()
        processes.append(p)
    trainers = list(processes)
    if args.test_episodes > 0:
        p = ctx.Process(
            target=test_worker,
            args=(args, kind, shared_model, counter, stop_event, queue, start_step, video_folder),
            daemon=True,
        )
        p.start()
        processes.append(p)
    signal.signal(signal.SIGINT, previous_sigint)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # a terminated parent still cleans up

    print_every = max(1, args.total_timesteps // 100)
    next_print = start_step + print_every
    next_checkpoint = start_step + args.checkpoint_interval if args.checkpoint_interval else None
    try:
        while True:
            handle_message(0.2)
            global_step = counter.value
            # logging
            if global_step >= next_print or not any(p.is_alive() for p in trainers):
                elapsed = time.time() - start_time
                sps = int((global_step - start_step) / max(elapsed, 1e-9))
                writer.add_scalar("charts/SPS", sps, global_step)
                writer.add_scalar("charts/learning_rate", args.learning_rate, global_step)
                mean_return = f"{np.mean(recent_returns):8.2f}" if recent_returns else "     n/a"
                left = elapsed / max(global_step - start_step, 1) * max(args.total_timesteps - global_step, 0)
                print(
                    f"step {global_step:>9d}/{args.total_timesteps} | return(20) {mean_return} | "
                    f"SPS {sps:>6d} | elapsed {format_seconds(elapsed)} | left {format_seconds(left)}",
                    flush=True,
                )
                next_print = global_step + print_every
            if next_checkpoint is not None and global_step >= next_checkpoint:
                payload = {"model": shared_model.state_dict(), "args": vars(args), "global_step": int(global_step)}
                if optimizer is not None:
                    payload["optimizer"] = optimizer.state_dict()
                save_atomic(payload, checkpoint_path)
                next_checkpoint = global_step + args.checkpoint_interval
            if errors:
                break
            dead = [(i, p.exitcode) for i, p in enumerate(processes) if p.exitcode not in (None, 0)]
            if dead:
                handle_message(0.5)  # its error message may still be on the way
                if not errors:
                    i, code = dead[0]
                    name = f"worker {i}" if i < len(trainers) else "test process"
                    errors.append((name, f"exited with code {code} without a Python error\n"))
                break
            if not any(p.is_alive() for p in trainers):
                break
    except KeyboardInterrupt:
        interrupted = True
        print(f"interrupted at step {counter.value}", file=sys.stderr)

    # shutdown
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not break the clean-up
    stop_processes(processes, stop_event, handle_message)
    global_step = counter.value
    if errors:
        name, error = errors[0]
        print(f"error: {name} failed; all processes stopped\n{error.rstrip()}", file=sys.stderr)
        writer.close()
        sys.exit(1)
    if args.save_model:
        save_atomic({"model": shared_model.state_dict(), "args": vars(args)}, model_path)
        print(f"model saved to {model_path}")
        if not interrupted and args.eval_episodes > 0:
            signal.signal(signal.SIGINT, previous_sigint)
            try:
                eval_model, _ = load_model(model_path)
                eval_env = make_env(args.env_id, args.max_episode_steps)
                eval_returns = []
                for idx in range(args.eval_episodes):
                    episodic_return, _ = play_episode(
                        eval_model, eval_env, args.seed + 10_000 + idx, args.greedy_eval, args.max_repeat_actions
                    )
                    eval_returns.append(episodic_return)
                    writer.add_scalar("eval/episodic_return", episodic_return, global_step)
                eval_env.close()
                print(
                    f"eval: {len(eval_returns)} episodes of the saved model, "
                    f"return {np.mean(eval_returns):.2f} ± {np.std(eval_returns):.2f}"
                )
            except KeyboardInterrupt:
                interrupted = True
    if last_eval is not None:
        print(f"last test: step {last_eval[0]}, mean return {last_eval[1]:.2f} over {last_eval[2]} episodes")
    writer.close()
    if args.track:
        import wandb

        wandb.finish()
    if interrupted:
        sys.exit(130)
