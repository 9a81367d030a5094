"""A3C with Hogwild! shared-memory workers: Atari Pong (conv + LSTM) and classic control (MLP).

Atari: a Huawei Cloud ModelArts case study of A3C on Atari Pong (no title or URL; it opens "A3C算法(Asynchronous
advantage actor critic)是基于Actor-critic架构提出来的一种并行强化学习算法"), after ikostrikov/pytorch-a3c
(https://github.com/ikostrikov/pytorch-a3c). Classic control: "DRL 教程 | 如何保持运动小车上的旗杆屹立不倒?
TensorFlow利用A3C算法训练智能体玩CartPole游戏" (https://www.cnblogs.com/alan-blog-TsingHua/p/9733925.html, a
translation of https://medium.com/tensorflow/deep-reinforcement-learning-playing-cartpole-through-asynchronous-advantage-actor-critic-a3c-7eab2eea5296).
Where the script departs from the articles, and why: docs/scripts/a3c_pong_hogwild.md.

One model and one SharedAdam live in shared memory; each of `--num-processes` worker processes
copies the weights, plays `--num-steps` steps and steps the shared optimizer with its gradients,
without a lock (Hogwild!). A test process plays greedy episodes; only the parent writes logs.
Needs: torch, gymnasium, ale-py, tyro, tensorboard, numpy, opencv-python-headless; moviepy and pygame for --capture-video.

Usage:
    python a3c_pong_hogwild.py                                   # PongDeterministic-v4, one worker per core
    python a3c_pong_hogwild.py --num-processes 16 --save-model   # the article's 16-process set-up
    python a3c_pong_hogwild.py --env-id CartPole-v1 --num-processes 2
    python a3c_pong_hogwild.py --resume runs/<run name>/checkpoint.pt
    python a3c_pong_hogwild.py --play runs/<run name>/a3c_pong_hogwild.pt   # watch a saved model play
"""

import importlib.util
import math
import os
import random
import signal
import sys
import time
import traceback
from collections import deque
from dataclasses import dataclass
from queue import Empty
from typing import NoReturn, Optional

import ale_py
import cv2
import gymnasium as gym
import numpy as np
import torch
import torch.multiprocessing as mp
import torch.nn as nn
import torch.nn.functional as F
import tyro
from torch.utils.tensorboard import SummaryWriter

SCRIPT = "a3c_pong_hogwild"  # recorded in every saved file; --play and --resume check it


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
    total_timesteps: int = 2_000_000
    """total env steps over all workers (`max_steps` in the article); classic control: 500000 unless given"""

    # Algorithm specific arguments
    num_processes: int = os.cpu_count() or 1
    """the number of training worker processes (default: the number of CPU cores)"""
    learning_rate: float = 1e-4
    """the Adam learning rate (`lr` in the articles); classic control: 5e-4 unless given"""
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
    compile: bool = False
    """if toggled, each worker compiles its model's forward with torch.compile (about a minute of compiling at start-up)"""
    clip_rewards: bool = True
    """if toggled, training rewards are clipped to [-1, 1] (logged returns never are); classic control: off unless given"""
    max_episode_steps: Optional[int] = None
    """cut (truncate) an episode after this many steps (`max_episode_length` in the article); default: the env's own limit"""
    eval_interval: int = 50_000
    """env steps between two evaluations of the test process; classic control: 10000 unless given"""
    test_episodes: int = 1
    """greedy episodes the test process plays per evaluation (0: no test process); classic control: 20 unless given"""
    greedy_eval: bool = True
    """if toggled, the test process takes the most likely action (as in the articles); `--no-greedy-eval` samples"""
    max_repeat_actions: int = 100
    """the test process cuts an episode stuck on one action for this many steps (0: never); logged apart as `eval/cut_return`"""
    checkpoint_interval: int = 500000
    """save `runs/<run name>/checkpoint.pt` every this many env steps and on Ctrl-C or SIGTERM (0: never)"""
    resume: Optional[str] = None
    """resume from a checkpoint file: shared weights, SharedAdam state and step counter"""
    eval_episodes: int = 10
    """the number of evaluation episodes run with the saved model (with `--save-model`), or played with `--play`"""
    play: Optional[str] = None
    """a `--save-model` file or checkpoint of this script: play `--eval-episodes` episodes with it, print the scores, write nothing else"""
    greedy: bool = True
    """with `--play`: take the most likely action (`--no-greedy` samples from the policy)"""


# article 001's values: a classic-control env (flat observation) takes them for the flags not given
CLASSIC_DEFAULTS = dict(
    total_timesteps=500_000, learning_rate=5e-4, clip_rewards=False, eval_interval=10_000, test_episodes=20
)
# each worker reports its losses averaged over this many updates
LOSS_REPORT_UPDATES = 10


# ---------------------------------------------------------------------------------------------
# environments


def env_kind(observation_space: gym.Space) -> Optional[str]:
    """ "atari" for an RGB frame, "classic" for a flat vector, None for anything else."""
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
    make_id, kwargs = env_id, {}
    if env_id.endswith("Deterministic-v4") and "/" not in env_id:  # an id ale-py 0.12 no longer registers
        make_id = env_id.removesuffix("Deterministic-v4") + "NoFrameskip-v4"
        kwargs = dict(frameskip=4, repeat_action_probability=0.0, max_episode_steps=100_000)
    if max_episode_steps is not None:
        kwargs["max_episode_steps"] = max_episode_steps
    if video_folder is not None:
        kwargs["render_mode"] = "rgb_array"
    env = gym.make(make_id, **kwargs)
    if video_folder is not None:
        env = gym.wrappers.RecordVideo(env, video_folder, episode_trigger=lambda episode: True)
    env = gym.wrappers.RecordEpisodeStatistics(env)
    if env_kind(env.observation_space) == "atari":
        frame_space = gym.spaces.Box(0.0, 1.0, (1, 42, 42), np.float32)
        env = RunningFrameNorm(gym.wrappers.TransformObservation(env, process_frame42, frame_space))
    return env


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
    """Four conv3x3/stride-2 layers of 32 filters (ELU) on a 42x42 frame, LSTMCell(288, 256) with zero
    biases, linear critic and actor heads."""

    def __init__(self, in_channels: int, num_actions: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 32, 3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(32, 32, 3, stride=2, padding=1)
        self.conv3 = nn.Conv2d(32, 32, 3, stride=2, padding=1)
        self.conv4 = nn.Conv2d(32, 32, 3, stride=2, padding=1)
        self.lstm = nn.LSTMCell(32 * 3 * 3, 256)
        self.critic_linear = nn.Linear(256, 1)
        self.actor_linear = nn.Linear(256, num_actions)
        with torch.no_grad():
            self.lstm.bias_ih.zero_()
            self.lstm.bias_hh.zero_()

    def initial_state(self):
        return (torch.zeros(1, 256), torch.zeros(1, 256))

    def forward(self, x: torch.Tensor, state):
        """Values (T,), logits (T, A) and the last state for T successive frames that follow `state`:
        the convolutions in one batch, then the LSTM cell over the frames in turn."""
        x = F.elu(self.conv1(x))
        x = F.elu(self.conv2(x))
        x = F.elu(self.conv3(x))
        x = F.elu(self.conv4(x))
        features = x.flatten(1)
        if len(features) == 1:  # one frame (acting): the cell itself (faster here than torch.lstm)
            state = self.lstm(features, state)
            hx = state[0]
        else:  # speed: the same cell over all T frames in one fused call (forward + backward 2.2x faster than a loop)
            lstm = self.lstm
            weights = (lstm.weight_ih, lstm.weight_hh, lstm.bias_ih, lstm.bias_hh)
            hx, h, c = torch.lstm(
                features.unsqueeze(1), tuple(s.unsqueeze(0) for s in state), weights, True, 1, 0.0, True, False, False
            )
            hx, state = hx.squeeze(1), (h.squeeze(0), c.squeeze(0))
        return self.critic_linear(hx).squeeze(1), self.actor_linear(hx), state


class MLPActorCritic(nn.Module):
    """Article 001's model: a 100-unit ReLU layer for the policy and another for the value; stateless
    (state is None)."""

    def __init__(self, obs_dim: int, num_actions: int, hidden: int = 100):
        super().__init__()
        self.actor_hidden = nn.Linear(obs_dim, hidden)
        self.critic_hidden = nn.Linear(obs_dim, hidden)
        self.actor_linear = nn.Linear(hidden, num_actions)
        self.critic_linear = nn.Linear(hidden, 1)

    def initial_state(self):
        return None

    def forward(self, x: torch.Tensor, state):
        value = self.critic_linear(F.relu(self.critic_hidden(x))).squeeze(1)
        return value, self.actor_linear(F.relu(self.actor_hidden(x))), state


def build_model(kind: str, obs_shape: tuple, num_actions: int) -> nn.Module:
    """Either model with the article's init: Glorot-uniform conv and linear layers, then the actor and
    critic heads re-drawn with normalised columns (std 0.01 and 1.0)."""
    if kind == "atari":
        model = AtariActorCritic(obs_shape[0], num_actions)
    else:
        model = MLPActorCritic(int(np.prod(obs_shape)), num_actions)
    model.apply(glorot_uniform_init)
    with torch.no_grad():
        model.actor_linear.weight.copy_(normalized_columns_init(model.actor_linear.weight, 0.01))
        model.critic_linear.weight.copy_(normalized_columns_init(model.critic_linear.weight, 1.0))
    return model


# ---------------------------------------------------------------------------------------------
# algorithm: the training worker, where the training loop runs, and what it calls, in that order
# (sampling, advantages, the loss, the Hogwild! update, the shared optimizer); then the test process


def train_worker(rank, args, kind, shared_model, optimizer, counter, stop_event, queue):
    """A training process: copy the shared weights, roll out up to `num_steps` steps, update the
    shared model; until the shared step counter reaches `total_timesteps` or the parent says stop."""
    try:
        child_setup(args.seed + rank)
        env = make_env(args.env_id, args.max_episode_steps)
        env.action_space.seed(args.seed + rank)
        model = build_model(kind, env.observation_space.shape, env.action_space.n).train()
        model.to(memory_format=torch.channels_last)  # speed: faster conv kernels (acting 0.81x, loss 0.93x the time)
        forward = compile_forward(model, args.num_steps) if args.compile else model
        if optimizer is None:
            optimizer = torch.optim.Adam(shared_model.parameters(), lr=args.learning_rate, fused=True)
        obs, _ = env.reset(seed=args.seed + rank)
        state = model.initial_state()
        num_updates, loss_sums, global_step = 0, np.zeros(4), counter.value
        while not stop_event.is_set() and counter.value < args.total_timesteps and parent_alive():
            model.load_state_dict(shared_model.state_dict())
            state = rollout_state = None if state is None else tuple(s.detach() for s in state)
            # rollout: without a graph; the loss re-runs the same frames through the same (local,
            # unchanged) weights in one batch, which gives the same gradients faster
            observations, actions, rewards = [], [], []
            with torch.no_grad():
                for _ in range(args.num_steps):
                    x = torch.as_tensor(obs, dtype=torch.float32).unsqueeze(0)
                    _, logits, state = forward(x, state)
                    action = int(sample_actions(logits))
                    obs, reward, terminated, truncated, info = env.step(action)
                    observations.append(x)
                    actions.append(action)
                    rewards.append(max(min(float(reward), 1.0), -1.0) if args.clip_rewards else float(reward))
                    if terminated or truncated:
                        break
                # V of the next observation, or of the final one of a truncated episode; 0 after a termination
                x = torch.as_tensor(obs, dtype=torch.float32).unsqueeze(0)
                last_value = torch.zeros(()) if terminated else forward(x, state)[0][0]
            with counter.get_lock():
                counter.value += len(rewards)
                global_step = counter.value
            if terminated or truncated:
                queue.put(("episode", global_step, float(info["episode"]["r"]), int(info["episode"]["l"])))
                obs, _ = env.reset()
                state = model.initial_state()
            # advantages: a rollout never crosses an episode end, so only its last step can be one
            values, logits, _ = forward(torch.cat(observations), rollout_state)
            dones, final_values = torch.zeros(len(rewards)), torch.zeros(len(rewards))
            dones[-1], final_values[-1] = float(terminated or truncated), last_value
            advantages, returns = compute_gae(
                torch.tensor(rewards), values.detach(), dones, final_values, last_value, args.gamma, args.gae_lambda
            )
            log_probs_all = F.log_softmax(logits, dim=-1)
            entropies = -(log_probs_all.exp() * log_probs_all).sum(-1)
            log_probs = log_probs_all.gather(1, torch.tensor(actions).unsqueeze(1)).squeeze(1)
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
        if num_updates % LOSS_REPORT_UPDATES:
            queue.put(("losses", global_step, *(loss_sums / (num_updates % LOSS_REPORT_UPDATES)).tolist()))
        env.close()
    except Exception:
        queue.put(("error", f"worker {rank}", traceback.format_exc()))
        sys.exit(1)


def compile_forward(model: nn.Module, num_steps: int):
    """`--compile`: the model's forward compiled with torch.compile for two lengths only: one frame
    (acting) and `num_steps` frames (the loss). A shorter rollout is padded with zero frames after its
    end, which changes none of its own outputs; they are cut back, and no state is returned for it."""
    compiled = torch.compile(model.forward, dynamic=False)

    def forward(x: torch.Tensor, state):
        length = len(x)
        if length in (1, num_steps):
            return compiled(x, state)
        values, logits, _ = compiled(torch.cat([x, x.new_zeros((num_steps - length, *x.shape[1:]))]), state)
        return values[:length], logits[:length], None

    return forward


# one action per row of logits, drawn from the policy: `Categorical(logits=logits).sample()`, cheaper
def sample_actions(logits):
    return torch.multinomial(logits.softmax(-1), 1).squeeze(-1)


def compute_gae(rewards, values, dones, final_values, last_value, gamma: float, gae_lambda: float):
    """Generalised advantage estimates and returns for a (num_steps, num_envs) rollout.

    `dones[t]` is 1 where the episode ended *by* step t (terminated or truncated); the
    observation after such a step belongs to a new episode, so the recursion is cut there and
    the step is bootstrapped from `final_values[t]` instead: the critic's value of the final
    observation for a truncation, 0 for a termination. `last_value` is the value of the
    observation that follows the last step of the rollout.
    """
    next_values = torch.cat([values[1:], last_value.unsqueeze(0)])
    next_values = torch.where(dones.bool(), final_values, next_values)
    deltas = rewards + gamma * next_values - values
    discounts = gamma * gae_lambda * (1.0 - dones)  # 0 where the episode ended: the recursion stops
    advantages = torch.zeros_like(rewards)
    lastgaelam = torch.zeros_like(last_value)
    for t in reversed(range(rewards.shape[0])):
        lastgaelam = deltas[t] + discounts[t] * lastgaelam
        advantages[t] = lastgaelam
    return advantages, advantages + values


def a3c_loss(log_probs, entropies, values, advantages, returns, ent_coef: float, vf_coef: float):
    """(total, policy, value) losses, summed over the rollout as in the article:
    policy = -sum(log pi(a|s) * A) - ent_coef * sum(H), value = sum(0.5 * (R - V)^2)."""
    policy_loss = -(log_probs * advantages.detach()).sum() - ent_coef * entropies.sum()
    value_loss = 0.5 * (returns - values).pow(2).sum()
    return policy_loss + vf_coef * value_loss, policy_loss, value_loss


def hogwild_update(local_model, shared_model, optimizer, loss, max_grad_norm: float) -> float:
    """Backpropagate `loss` through the local model, clip, and step the shared parameters' optimizer
    with exactly these gradients, without a lock. They are handed over on every update: the article's
    trick (point the shared `.grad` at the local one once) breaks on torch 2.x, where `zero_grad()` sets
    gradients to None and the stale pointers accumulate. A shared parameter's `.grad` is process-local."""
    local_model.zero_grad(set_to_none=True)
    loss.backward()
    grad_norm = nn.utils.clip_grad_norm_(local_model.parameters(), max_grad_norm)
    for local_param, shared_param in zip(local_model.parameters(), shared_model.parameters()):
        shared_param.grad = None if local_param.grad is None else local_param.grad.clone()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return float(grad_norm)


class SharedAdam(torch.optim.Adam):
    """`torch.optim.Adam` (its fused kernel) whose step counts and moments live in shared memory, so
    that every worker process updates the same statistics (call `share_memory()` before starting the
    workers). The state is made eagerly, as Adam makes it on its first step: a lazily made state would
    be private to the process that makes it."""

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8):
        super().__init__(params, lr=lr, betas=betas, eps=eps, fused=True)
        for group in self.param_groups:
            for p in group["params"]:
                step = torch.zeros((), device=p.device)
                self.state[p] = {"step": step, "exp_avg": torch.zeros_like(p), "exp_avg_sq": torch.zeros_like(p)}

    def share_memory(self) -> "SharedAdam":
        for group in self.param_groups:
            for p in group["params"]:
                for value in self.state[p].values():
                    value.share_memory_()
        return self


def test_worker(args, kind, shared_model, counter, stop_event, queue, first_eval_step, video_folder):
    """The test process: every `eval_interval` steps, play `test_episodes` episodes with the
    shared weights (the stuck rule on) and report them to the parent."""
    try:
        child_setup(args.seed + args.num_processes)
        env = make_env(args.env_id, args.max_episode_steps, video_folder)
        model = build_model(kind, env.observation_space.shape, env.action_space.n).eval()
        next_eval, seed = first_eval_step, args.seed + 100_000
        while not stop_event.is_set() and parent_alive():
            if counter.value < next_eval:
                stop_event.wait(0.05)
                continue
            eval_step = counter.value
            model.load_state_dict(shared_model.state_dict())
            results = run_episodes(
                model, env, args.test_episodes, seed, args.greedy_eval, args.max_repeat_actions, stop_event.is_set
            )
            seed += args.test_episodes
            if len(results) == args.test_episodes:
                queue.put(("evaluation", eval_step, results, time.time()))
            next_eval = eval_step + args.eval_interval
        env.close()
    except Exception:
        queue.put(("error", "test process", traceback.format_exc()))
        sys.exit(1)


@torch.no_grad()
def run_episodes(model, env, num_episodes: int, seed: int, greedy: bool, max_repeat_actions: int = 0, should_stop=None):
    """Play up to `num_episodes` episodes (seeds `seed`, `seed + 1`, ...): a list of
    (return, length, cut), `cut` when the test process's stuck rule (the last `max_repeat_actions`
    actions all the same; 0: never) ended it before the game ended. Fewer if `should_stop()`."""
    results = []
    for episode in range(num_episodes):
        obs, _ = env.reset(seed=seed + episode)
        state, recent_actions = model.initial_state(), deque(maxlen=max(max_repeat_actions, 1))
        episode_return, length, ended, cut = 0.0, 0, False, False
        while not (ended or cut):
            if should_stop is not None and should_stop():
                return results
            _, logits, state = model(torch.as_tensor(obs, dtype=torch.float32).unsqueeze(0), state)
            action = int(logits.argmax(dim=1) if greedy else sample_actions(logits))
            obs, reward, terminated, truncated, _ = env.step(action)
            episode_return, length, ended = episode_return + float(reward), length + 1, terminated or truncated
            recent_actions.append(action)
            stuck = len(recent_actions) == max_repeat_actions and recent_actions.count(action) == max_repeat_actions
            cut = stuck and not ended
        results.append((episode_return, length, cut))
    return results


def main() -> None:
    args = tyro.cli(Args, description=__doc__.splitlines()[0])
    stop = StopFlag()
    settings_from_file(args, args.play or args.resume, sys.argv[1:])
    validate_args(args)
    saved = load_saved(args.play or args.resume, args.env_id) if args.play or args.resume else None  # before ALE
    kind, obs_shape, num_actions = check_env(args.env_id)
    if kind == "classic":
        apply_classic_defaults(args, sys.argv[1:])
    if args.play is not None:
        video_folder = f"videos/{SCRIPT}_play_{int(time.time())}" if args.capture_video else None
        model = load_model(saved, kind, obs_shape, num_actions, "--play")
        print_scores(*play_saved(args, stop, model, args.seed, args.greedy, video_folder))
        if video_folder:
            print(f"videos saved to {video_folder}/")
        sys.exit(130 if stop.requested else 0)
    start_step = int(saved.get("global_step", 0)) if saved is not None else 0
    if start_step >= args.total_timesteps:
        fail(f"--total-timesteps {args.total_timesteps} is not beyond the checkpoint's step {start_step}")
    if args.cuda and torch.cuda.is_available():
        print("note: Hogwild! workers share CPU memory; --cuda is ignored", file=sys.stderr)

    # seeding
    seed_everything(args.seed, args.torch_deterministic)
    torch.set_num_threads(1)

    # env setup
    # each child makes its own env; here the shared model and optimizer, and the parent's writer
    if saved is None:
        shared_model = build_model(kind, obs_shape, num_actions).share_memory()
    else:
        shared_model = load_model(saved, kind, obs_shape, num_actions, "--resume").share_memory()
    optimizer = SharedAdam(shared_model.parameters(), lr=args.learning_rate) if args.shared_optimizer else None
    if optimizer is not None and saved is not None and "optimizer" in saved:
        try:
            optimizer.load_state_dict(saved["optimizer"])  # step counts and moments; shared below
        except Exception as e:
            fail(f"--resume: the checkpoint's optimizer state does not fit: {type(e).__name__}: {e}")
        optimizer.param_groups[0]["lr"] = args.learning_rate  # the learning rate of this run, not the saved one
    optimizer = optimizer.share_memory() if optimizer is not None else None
    run_name = make_run_dir(args)
    writer = make_writer(args, run_name)
    model_path, checkpoint_path = f"runs/{run_name}/{args.exp_name}.pt", f"runs/{run_name}/checkpoint.pt"

    # rollout
    # the workers (train_worker) roll out, compute their advantages and update the shared model, without a lock;
    # they share a step counter, a stop event and a queue to the parent
    ctx = mp.get_context(start_method())
    counter, stop_event, queue = ctx.Value("q", start_step), ctx.Event(), ctx.Queue()
    tests = "1 test process" if args.test_episodes else "no test process"
    adam = "SharedAdam" if args.shared_optimizer else "one Adam per worker"
    print(f"{args.env_id} ({kind}): {args.num_processes} training processes + {tests}, {adam}, lr {args.learning_rate}")
    start_time = time.time()
    log = ParentLog(queue, writer, args, start_step, start_time)
    video_folder = f"videos/{run_name}" if args.capture_video else None
    train_args = [
        (rank, args, kind, shared_model, optimizer, counter, stop_event, queue) for rank in range(args.num_processes)
    ]
    trainers = [ctx.Process(target=train_worker, args=a, daemon=True) for a in train_args]
    test_args = (args, kind, shared_model, counter, stop_event, queue, start_step, video_folder)
    tester = ctx.Process(target=test_worker, args=test_args, daemon=True)
    processes = trainers + [tester] if args.test_episodes > 0 else trainers
    mask_stop_signals(block=True)  # a Ctrl-C meanwhile waits for `stop`, it is not lost
    for p in processes:
        p.start()
    mask_stop_signals(block=False)

    # logging
    print_every = max(1, args.total_timesteps // 100)
    next_print = start_step + print_every
    next_checkpoint = start_step + args.checkpoint_interval if args.checkpoint_interval else None
    while not stop.requested and not log.errors:
        log.drain(0.2, stop)
        global_step = counter.value
        trainers_done = not any(p.is_alive() for p in trainers)
        if global_step >= next_print or trainers_done:
            elapsed = time.time() - start_time
            writer.add_scalar("charts/SPS", int((global_step - start_step) / max(elapsed, 1e-9)), global_step)
            writer.add_scalar("charts/learning_rate", args.learning_rate, global_step)
            print_progress(global_step, args.total_timesteps, log.recent_returns, elapsed, global_step - start_step)
            next_print = global_step + print_every
        if next_checkpoint is not None and global_step >= next_checkpoint:
            save_checkpoint(shared_model, optimizer, args, checkpoint_path, global_step)
            next_checkpoint = global_step + args.checkpoint_interval
        dead = [(i, p.exitcode) for i, p in enumerate(processes) if p.exitcode not in (None, 0)]
        if dead and not log.errors:
            log.drain(0.5)  # its error message may still be on the way
            name = f"worker {dead[0][0]}" if dead[0][0] < len(trainers) else "test process"
            log.errors = log.errors or [(name, f"exited with code {dead[0][1]} without a Python error")]
        if trainers_done:
            break

    # shutdown
    stop.saving = True  # from here a second signal only says "still saving"
    if stop.requested:
        print(f"interrupted at step {counter.value}", file=sys.stderr)
    stop_processes(processes, stop_event, log)
    global_step = counter.value
    if log.errors:
        print(f"error: {log.errors[0][0]} failed; all processes stopped\n{log.errors[0][1].rstrip()}", file=sys.stderr)
        writer.close()
        sys.exit(1)
    if stop.requested and args.checkpoint_interval:
        save_checkpoint(shared_model, optimizer, args, checkpoint_path, global_step)
        print(f"checkpoint saved to {checkpoint_path}")
    if args.save_model:
        save_agent(shared_model, args, model_path)
        print(f"model saved to {model_path}")
    stop.saving = False
    if args.save_model and args.eval_episodes > 0 and not stop.requested:
        # the file read back plays whole games (no stuck rule), as with --play
        model = load_model(load_saved(model_path, args.env_id), kind, obs_shape, num_actions, "--save-model")
        returns, _ = play_saved(args, stop, model, args.seed + 10_000, args.greedy_eval)
        for episodic_return in returns:
            writer.add_scalar("eval/episodic_return", episodic_return, global_step)
        if returns:
            print(
                f"eval: {len(returns)} episodes of the saved model, return {np.mean(returns):.2f} ± {np.std(returns):.2f}"
            )
    if log.best_eval is not None:
        mean, step, seconds = log.best_eval
        print(f"best test (whole games): mean return {mean:.2f} at step {step}, time {format_seconds(seconds)}")
    finish_run(writer, args, stop, run_name)


# ----------------------------------------------------------------------------------------------
# Plumbing: argument checks, run directory and writer, seeding, stopping, saving, console.
# The same code in every script (tests/test_consistency.py); nothing below is the algorithm.
# ----------------------------------------------------------------------------------------------


class UserError(Exception):
    """Bad input. Called from Python, this script's functions raise it; the command line prints it as one
    `error:` line and exits with status 2, having written nothing (the last lines of the file)."""


def fail(message: str) -> NoReturn:
    """A user error, its message on one line."""
    raise UserError(" ".join(message.split()))


def check_args(args, positive=(), non_negative=(), at_most=None) -> None:
    """The checks every script runs before anything is written: float flags finite, the seed within numpy's
    seeding, the fields in `positive` > 0, in `non_negative` >= 0, in `at_most` ({name: bound}) within it,
    a name that makes a file name, and the packages that `--track` and `--capture-video` need."""
    checks = [(name, math.isfinite(v), "a finite number") for name, v in vars(args).items() if isinstance(v, float)]
    checks += [("seed", 0 <= args.seed < 2**32, "in [0, 2**32)")]
    checks += [(name, getattr(args, name) > 0, "positive") for name in positive]
    checks += [(name, getattr(args, name) >= 0, ">= 0") for name in non_negative]
    checks += [(name, getattr(args, name) <= bound, f"at most {bound}") for name, bound in (at_most or {}).items()]
    for name, ok, what in checks:
        if not ok:
            fail(f"--{name.replace('_', '-')} must be {what}, got {getattr(args, name)}")
    if not args.exp_name or "/" in args.exp_name or os.sep in args.exp_name or args.exp_name.startswith("."):
        fail(f"--exp-name {args.exp_name!r} must be a plain file name (no '/', not starting with '.')")
    if args.track and importlib.util.find_spec("wandb") is None:
        fail("--track needs Weights and Biases: pip install wandb")
    if args.capture_video and None in (importlib.util.find_spec("moviepy"), importlib.util.find_spec("pygame")):
        fail('--capture-video needs moviepy and pygame: pip install -e ".[video]"')
    if args.capture_video:  # frames drawn off-screen need no display; SDL would print a false "error:" line
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")


def make_run_name(args) -> str:
    safe_env_id = args.env_id.replace("/", "-").replace(":", "-")
    return f"{safe_env_id}__{args.exp_name}__{args.seed}__{int(time.time())}"


def make_run_dir(args) -> str:
    """Create a new `runs/<run name>/` and return the run name; a run that started in the same second
    under the same name gets `-2`, `-3`, ... A directory that cannot be made is a user error."""
    base = make_run_name(args)
    for n in range(1, 1000):
        run_name = base if n == 1 else f"{base}-{n}"
        try:
            os.makedirs(f"runs/{run_name}")
            return run_name
        except FileExistsError:
            continue
        except OSError as e:  # `runs` is a file, or a directory we may not write to
            fail(f"cannot write the run directory 'runs/{run_name}': {e.strerror or e}")
    fail(f"cannot find a free run directory for 'runs/{base}'")


def make_writer(args, run_name: str, purge_step: Optional[int] = None) -> SummaryWriter:
    """The TensorBoard writer of `runs/<run name>/`, with the hyper-parameters as a text table first. A
    resumed run gives `purge_step`: TensorBoard drops the points the interrupted run logged from it on."""
    try:
        os.makedirs(f"runs/{run_name}", exist_ok=True)
    except OSError as e:
        fail(f"cannot write the run directory 'runs/{run_name}': {e.strerror or e}")
    print(f"run directory: runs/{run_name} (TensorBoard: tensorboard --logdir runs)", flush=True)
    if args.track:
        import wandb

        wandb.init(project=args.exp_name, sync_tensorboard=True, config=vars(args), name=run_name, save_code=True)
    writer = SummaryWriter(f"runs/{run_name}", purge_step=purge_step)
    writer.add_text("hyperparameters", "|param|value|\n|-|-|" + "".join(f"\n|{k}|{v}|" for k, v in vars(args).items()))
    return writer


def seed_everything(seed: int, torch_deterministic: bool) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.backends.cudnn.deterministic = torch_deterministic


class StopFlag:
    """Ctrl-C (SIGINT) and SIGTERM ask the loop to stop at the end of the current iteration, so that no
    optimizer step is cut in half and the results are saved; the script then exits 130. A second signal
    aborts at once, except while the results are being saved."""

    def __init__(self):
        self.requested = self.saving = False
        signal.signal(signal.SIGINT, self)
        signal.signal(signal.SIGTERM, self)

    def __call__(self, signum, frame):
        name = signal.Signals(signum).name
        if self.saving:
            print(f"{name}: still saving, please wait", file=sys.stderr, flush=True)
        elif self.requested:
            print(f"{name}: aborting", file=sys.stderr, flush=True)
            sys.exit(130)
        else:
            self.requested = True
            print(f"{name}: stopping after this iteration (again to abort)", file=sys.stderr, flush=True)


def atomic_save(obj: dict, path: str) -> None:
    """Write to a temporary file, then rename: a half-written file never replaces a good one."""
    torch.save(obj, path + ".tmp")
    os.replace(path + ".tmp", path)


def load_saved(path: str, env_id: Optional[str] = None) -> dict:
    """A `--save-model` file or checkpoint of this script (trained on `env_id`, when given); a missing,
    unreadable or foreign file is a user error."""
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        fail(f"{path!r}: no such file")
    except Exception as e:  # a directory, not a torch file, truncated, pickled objects
        fail(f"{path!r} cannot be read as a saved model: {type(e).__name__}: {e}")
    found = saved.get("script") if isinstance(saved, dict) else None
    if found != SCRIPT or "model" not in saved:
        fail(f"{path!r} was not saved by {SCRIPT}.py (its script: {found or 'unknown'})")
    if env_id is not None and saved["args"]["env_id"] != env_id:
        fail(f"{path!r} was trained on {saved['args']['env_id']}, not on --env-id {env_id}")
    return saved


def settings_from_file(args, path: Optional[str], argv: list[str], names=("env_id",)) -> None:
    """`--play` and `--resume` take these settings from the file they load (its env id first), unless the
    command line `argv` gives them; a given `--env-id` the file was not trained on stays an error."""
    if path is not None:
        given = given_flags(argv)
        saved_args = load_saved(path)["args"]
        for name in names:
            if name not in given and name in saved_args:
                setattr(args, name, saved_args[name])


def format_seconds(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def print_progress(
    global_step: int, total_steps: int, recent_returns, elapsed: float, steps_run: int, prefix=""
) -> None:
    """The console's progress line: the step, the mean of the last 20 returns, the speed, time spent and left."""
    mean_return = f"{np.mean(recent_returns):8.2f}" if recent_returns else "     n/a"
    sps, left = int(steps_run / max(elapsed, 1e-9)), elapsed / max(steps_run, 1) * (total_steps - global_step)
    print(
        f"{prefix}step {global_step:>9d}/{total_steps} | return(20) {mean_return} | "
        f"SPS {sps:>6d} | elapsed {format_seconds(elapsed)} | left {format_seconds(left)}",
        flush=True,
    )


def finish_run(writer, args, stop: StopFlag, run_name: str) -> None:
    """The run's closing tail: the writer (and Weights and Biases) closed, the files the run directory holds
    printed, then exit 130 after a signal."""
    writer.close()
    if args.track:
        import wandb

        wandb.finish()
    files = sorted(os.listdir(f"runs/{run_name}")) if os.path.isdir(f"runs/{run_name}") else []
    saved = ", ".join(name for name in files if not name.startswith("events.out.")) or "TensorBoard logs only"
    print(f"{'stopped' if stop.requested else 'done'}: runs/{run_name} holds {saved}", flush=True)
    if stop.requested:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # all is saved: a late signal must not turn exit 130
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # into a death by that signal while Python shuts down
        sys.exit(130)


def print_scores(returns: list, lengths: list) -> None:
    """`--play`'s console report: one line per episode, then the mean."""
    for i, (ret, length) in enumerate(zip(returns, lengths), start=1):
        print(f"episode {i}: score {ret:g}, length {length}")
    if returns:
        print(f"mean score over {len(returns)} episodes: {np.mean(returns):.2f} ± {np.std(returns):.2f}")


# ----------------------------------------------------------------------------------------------
# This script's own plumbing: checks, modes, processes, the parent's log, saving and playing.


def validate_args(args: Args) -> None:
    check_args(
        args,
        positive=["total_timesteps", "num_processes", "learning_rate", "num_steps", "eval_interval", "max_grad_norm"],
        non_negative=["test_episodes", "max_repeat_actions", "checkpoint_interval", "eval_episodes"],
        at_most={"num_processes": max(64, 4 * (os.cpu_count() or 1))},  # each one a process with its own env
    )
    if args.max_episode_steps is not None and args.max_episode_steps <= 0:
        fail(f"--max-episode-steps must be positive, got {args.max_episode_steps}")
    if not 0.0 < args.gamma <= 1.0 or not 0.0 <= args.gae_lambda <= 1.0:
        fail(f"--gamma must be in (0, 1] and --gae-lambda in [0, 1], got {args.gamma} and {args.gae_lambda}")
    if args.capture_video and args.test_episodes == 0 and args.play is None:
        fail("--capture-video records the test process's episodes and needs --test-episodes > 0")
    if args.compile and args.play is None:
        check_compile()  # here, not in every worker


def check_compile() -> None:
    """`--compile` on a platform without a working compiler: one error line before anything starts."""
    try:
        torch.compile(lambda x: x * 2, dynamic=False)(torch.ones(2))
    except Exception as e:
        fail(f"--compile: torch.compile does not work here: {type(e).__name__}: {(str(e).splitlines() or [''])[0]}")


def given_flags(argv: list[str]) -> set[str]:
    """The Args fields given on the command line `argv`, as `--flag value`, `--flag=value` or `--no-flag`
    (with '-' or '_'): tyro cannot tell a default from a value given equal to it."""
    given = {a[2:].split("=")[0].replace("-", "_") for a in argv if a.startswith("--")}
    return given | {name[3:] for name in given if name.startswith("no_")}


def apply_classic_defaults(args: Args, argv: list[str]) -> None:
    """Classic control: article 001's values for the CLASSIC_DEFAULTS flags not given in `argv`
    (as `--flag`, `--flag=value` or `--no-flag`, with '-' or '_')."""
    given = given_flags(argv)
    for name, value in CLASSIC_DEFAULTS.items():
        if name not in given:
            setattr(args, name, value)


def check_env(env_id: str) -> tuple[str, tuple, int]:
    """Make the env once; fail unless its spaces are supported. Returns its kind, the (preprocessed)
    observation shape and the number of actions. ALE's banner (C++, on fd 2) is silenced meanwhile,
    so that an error is one line."""
    gym.register_envs(ale_py)
    sys.stderr.flush()
    stderr_fd, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        env, error = make_env(env_id), None
    except Exception as e:  # unknown id, missing module, env constructor error
        env, error = None, e
    os.dup2(stderr_fd, 2)
    os.close(stderr_fd)
    os.close(devnull)
    if error is not None:
        fail(f"--env-id {env_id!r} cannot be made: {type(error).__name__}: {error}")
    action_space, raw_space, obs_shape = env.action_space, env.unwrapped.observation_space, env.observation_space.shape
    env.close()
    if not isinstance(action_space, gym.spaces.Discrete):
        fail(f"--env-id {env_id!r} has action space {action_space}; this script needs Discrete actions")
    kind = env_kind(raw_space)
    if kind is None:
        fail(f"--env-id {env_id!r} has observation space {raw_space}; this script needs RGB Atari frames or a flat Box")
    return kind, obs_shape, int(action_space.n)


def start_method() -> str:
    """ "forkserver" where the platform has it, else "spawn"; never "fork": forking a process whose
    torch thread pool runs can hang the children. The fork server's forks start in a fraction of a
    second instead of re-importing torch in every child (spawn)."""
    return "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"


def mask_stop_signals(block: bool) -> None:
    """Block or unblock SIGINT and SIGTERM in this thread: a blocked signal waits instead of being
    lost, and processes started meanwhile are born with it blocked."""
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_BLOCK if block else signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})


def child_setup(seed: int) -> None:
    # Ctrl-C and SIGTERM are the parent's business: it stops the children through `stop_event`
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    mask_stop_signals(block=False)
    torch.set_num_threads(1)
    seed_everything(seed, True)
    gym.register_envs(ale_py)
    ale_py.ALEInterface.setLoggerMode(ale_py.LoggerMode.Error)  # ALE's banner: the parent printed it once


def parent_alive() -> bool:
    """In a child: whether the process that started it still runs (a fork server's children
    are not the parent's children, so `os.getppid()` cannot tell)."""
    parent = mp.parent_process()
    return parent is None or parent.is_alive()


def stop_processes(processes, stop_event, log, timeout: float = 10.0) -> None:
    """Ask every child to stop, keep draining the queue meanwhile (a child that has put data on
    a queue cannot exit before it is read), then kill what is left (children ignore SIGTERM)."""
    stop_event.set()
    deadline = time.time() + timeout
    while any(p.is_alive() for p in processes) and time.time() < deadline:
        log.drain(0.05)
    for p in processes:
        if p.is_alive():
            p.kill()
        p.join()
    log.drain()


class ParentLog:
    """The parent's end of the queue: writes what the children send to TensorBoard and the console."""

    def __init__(self, queue, writer, args, start_step: int, start_time: float):
        self.queue, self.writer, self.args = queue, writer, args
        self.start_step, self.start_time = start_step, start_time
        self.recent_returns, self.errors = deque(maxlen=20), []
        self.best_eval = None  # (mean return, step, seconds) of the best evaluation in whole games

    def drain(self, timeout: float = 0.0, stop=None) -> None:
        """Handle every waiting message; wait at most `timeout` s for the first one, in 5 ms slices
        so that a stop request ends the wait at once (and the shutdown begins before a second signal)."""
        deadline = time.time() + timeout
        while True:
            try:
                message = self.queue.get(timeout=0.005) if timeout > 0 else self.queue.get_nowait()
            except Empty:
                if timeout > 0 and time.time() < deadline and not (stop is not None and stop.requested):
                    continue
                return
            timeout = 0.0
            getattr(self, message[0])(*message[1:])

    def episode(self, step, episodic_return, episodic_length):
        self.writer.add_scalar("charts/episodic_return", episodic_return, step)
        self.writer.add_scalar("charts/episodic_length", episodic_length, step)
        self.recent_returns.append(episodic_return)

    def losses(self, step, *values):
        for name, value in zip(["policy_loss", "value_loss", "entropy", "grad_norm"], values):
            self.writer.add_scalar(f"losses/{name}", value, step)

    def evaluation(self, step, results, wall):
        """Whole games go to `eval/episodic_return` and `eval/mean_return`. An episode cut by the
        stuck rule is no whole game: counted in `eval/cut_episodes`, its score in `eval/cut_return`."""
        whole, cut = [r for r, _, was_cut in results if not was_cut], [r for r, _, was_cut in results if was_cut]
        seconds = wall - self.start_time
        for tag, values in (("eval/episodic_return", whole), ("eval/cut_return", cut)):
            for value in values:
                self.writer.add_scalar(tag, value, step)
        self.writer.add_scalar("eval/cut_episodes", len(cut), step)
        self.writer.add_scalar("eval/time_seconds", seconds, step)
        self.writer.add_scalar("eval/SPS", (step - self.start_step) / max(seconds, 1e-9), step)
        line = f"eval  step {step:>9d} | "
        if whole:
            mean = float(np.mean(whole))
            self.writer.add_scalar("eval/mean_return", mean, step)
            if self.best_eval is None or mean > self.best_eval[0]:
                self.best_eval = (mean, step, seconds)
            greedy = "greedy " if self.args.greedy_eval else ""
            line += f"{len(whole)} whole {greedy}episodes, return {mean:8.2f} ± {float(np.std(whole)):.2f} | "
        if cut:
            partial = ", ".join(f"{value:g}" for value in cut)
            line += f"{len(cut)} cut after {self.args.max_repeat_actions} repeated actions (partial {partial}) | "
        print(line + f"time {format_seconds(seconds)}", flush=True)

    def error(self, name, text):
        self.errors.append((name, text))


def save_agent(model: nn.Module, args: Args, path: str, **extra) -> None:
    """The weights and the Args (and, for a checkpoint, the step counter and SharedAdam state)."""
    atomic_save({"script": SCRIPT, "model": model.state_dict(), "args": vars(args), **extra}, path)


def save_checkpoint(model: nn.Module, optimizer, args: Args, path: str, global_step: int) -> None:
    extra = {"optimizer": optimizer.state_dict()} if optimizer is not None else {}
    save_agent(model, args, path, global_step=int(global_step), **extra)


def load_model(saved: dict, kind: str, obs_shape: tuple, num_actions: int, flag: str) -> nn.Module:
    model = build_model(kind, obs_shape, num_actions)
    try:
        model.load_state_dict(saved["model"])
    except Exception as e:
        fail(f"{flag}: the saved model does not fit {saved['args']['env_id']!r}: {type(e).__name__}: {e}")
    return model


def play_saved(args: Args, stop: StopFlag, model: nn.Module, seed: int, greedy: bool, video_folder=None):
    """`--eval-episodes` whole episodes (all lives, raw score; no stuck rule: the env's time limit caps
    them), for `--play` and the saved model's evaluation: their returns and lengths."""
    env = make_env(args.env_id, args.max_episode_steps, video_folder)
    results = run_episodes(model.eval(), env, args.eval_episodes, seed, greedy, 0, lambda: stop.requested)
    env.close()
    return [score for score, _, _ in results], [length for _, length, _ in results]


if __name__ == "__main__":
    try:
        main()
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
