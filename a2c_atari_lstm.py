"""Synchronous A2C with a conv + LSTMCell agent on Atari (PongNoFrameskip-v4 by default).

Follows the article "A2C(Advantage Actor-Critic)算法", a walk-through of rpatrik96/pytorch-a2c
(https://github.com/rpatrik96/pytorch-a2c): 8 parallel games, 4 stacked 84x84 grey frames, 5-step
rollouts, n-step returns bootstrapped from the critic, loss = policy + 0.5 value - 0.02 entropy.
Where the script departs from the article, and why: docs/scripts/a2c_atari_lstm.md.
Needs: torch, gymnasium, ale-py, tyro, tensorboard, numpy, opencv-python-headless; moviepy and pygame for --capture-video.

Usage:
    python a2c_atari_lstm.py                                      # PongNoFrameskip-v4, 10M steps
    python a2c_atari_lstm.py --env-id BreakoutNoFrameskip-v4 --total-timesteps 1000000
    python a2c_atari_lstm.py --env-backend gymnasium              # gymnasium wrappers, same frames
    python a2c_atari_lstm.py --resume runs/<run name>/checkpoint.pt --total-timesteps 20000000
    python a2c_atari_lstm.py --save-model --eval-episodes 10      # save, then play 10 whole games
    python a2c_atari_lstm.py --play runs/<run name>/a2c_atari_lstm.pt   # watch a saved model play
    torchrun --standalone --nproc-per-node 2 a2c_atari_lstm.py    # data-parallel: 2 ranks x 8 games
"""

import importlib.util
import math
import os
import random
import signal
import sys
import time
from collections import deque
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal, NoReturn, Optional

import gymnasium as gym
import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
import torch.optim as optim
import tyro
from torch.distributions.categorical import Categorical
from torch.utils.tensorboard import SummaryWriter

SCRIPT = "a2c_atari_lstm"  # recorded in every saved file; --play and --resume check it


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

    env_id: str = "PongNoFrameskip-v4"
    """the id of the Atari environment (`env_name` in the article): `PongNoFrameskip-v4`, `ALE/Breakout-v5`, ..."""
    total_timesteps: int = 10_000_000
    """total environment steps of the experiment, summed over the parallel environments"""

    # Algorithm specific arguments
    learning_rate: float = 1e-4
    """the learning rate of the Adam optimizer (`lr` in the article)"""
    num_envs: int = 8
    """the number of parallel games"""
    num_steps: int = 5
    """the number of steps run in each game per rollout (`rollout_size` in the article)"""
    gamma: float = 0.99
    """the discount factor gamma"""
    gae_lambda: float = 1.0
    """the lambda of the generalised advantage estimate (1.0, the default, gives the article's n-step returns)"""
    ent_coef: float = 0.02
    """coefficient of the entropy bonus (`entropy_coeff` in the article)"""
    vf_coef: float = 0.5
    """coefficient of the value loss (`value_coeff` in the article)"""
    max_grad_norm: float = 0.5
    """the maximum norm for gradient clipping"""
    optimizer: Literal["adam", "rmsprop"] = "adam"
    """`adam`, the article's; `rmsprop` (alpha 0.99, eps 1e-5), the usual A2C optimizer (with `--learning-rate 7e-4`)"""
    actor_init_std: float = 1.0
    """the scale of the actor head's initial orthogonal weights (1.0, the article's; a3c_pong_hogwild.py uses 0.01)"""
    frame_size: Literal[84, 42] = 84
    """the side of the square grey frames: 84, the article's; 42, a3c_pong_hogwild.py's (the network then skips its average pooling)"""
    env_backend: Literal["ale", "gymnasium"] = "ale"
    """`ale`: ale-py's native C++ vector env; `gymnasium`: gymnasium wrappers in a SyncVectorEnv"""
    checkpoint_interval: int = 1_000_000
    """save `runs/<run name>/checkpoint.pt` every this many steps and at the end (0: only on Ctrl-C or SIGTERM)"""
    resume: Optional[str] = None
    """a checkpoint to continue: its run directory, step and settings (its env id too), except the flags given"""
    eval_episodes: int = 10
    """the number of evaluation games run with the saved model (with `--save-model`), or played with `--play`"""
    compile: bool = False
    """if toggled, the network's step is compiled with torch.compile (slower on the CPUs measured: see docs/scripts/a2c_atari_lstm.md)"""
    torch_threads: int = 1
    """torch CPU threads (1: on cores shared with other runs more threads slow the update ~7x; 2 helps a lone run)"""
    play: Optional[str] = None
    """a `--save-model` file or checkpoint of this script: play `--eval-episodes` episodes with it, print the scores, write nothing else"""
    greedy: bool = True
    """with `--play`: take the most likely action (`--no-greedy` samples from the policy)"""


MAX_FRAMES_PER_EPISODE = 108_000  # 30 minutes of play: the usual Atari time limit (truncation)


def atari_spec(env_id: str) -> dict:
    """The registered kwargs (game, repeat_action_probability, ...) of an Atari id; a user error otherwise."""
    import ale_py

    gym.register_envs(ale_py)
    try:
        spec = gym.spec(env_id)
    except Exception as e:
        fail(f"--env-id {env_id!r} is not a registered environment: {e}")
    if spec.entry_point != "ale_py.env:AtariEnv" or spec.kwargs.get("obs_type", "rgb") != "rgb":
        fail(f"--env-id {env_id!r} is not an Atari image environment (e.g. PongNoFrameskip-v4, ALE/Breakout-v5)")
    return dict(spec.kwargs)


class NoopFireReset(gym.Wrapper):
    """On reset: 1..noop_max raw no-op frames, then one raw FIRE frame for games that wait for it
    (what the native env's `noop_max` and `use_fire_reset` do; wraps the frameskip-1 env)."""

    def __init__(self, env: gym.Env, noop_max: int):
        super().__init__(env)
        self.noop_max = noop_max
        self.fire = "FIRE" in env.unwrapped.get_action_meanings()

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        noops = int(self.unwrapped.np_random.integers(1, self.noop_max + 1)) if self.noop_max > 0 else 0
        for action in [0] * noops + [1] * self.fire:
            obs, _, terminated, truncated, info = self.env.step(action)
            if terminated or truncated:
                obs, info = self.env.reset(**kwargs)
        return obs, info


def make_gym_env(env_id: str, spec_kwargs: dict, noop_max: int, size: int, video_folder=None, first_game_only=False):
    """The gymnasium-wrapper twin of the native env. With `video_folder` the game is recorded there:
    on gymnasium's default schedule, or only its first game (`--play`)."""

    def thunk():
        sticky = spec_kwargs.get("repeat_action_probability", 0.0)
        kwargs = dict(frameskip=1, repeat_action_probability=sticky, max_num_frames_per_episode=MAX_FRAMES_PER_EPISODE)
        env = gym.make(env_id, render_mode="rgb_array" if video_folder else None, **kwargs)
        if video_folder:
            trigger = (lambda episode: episode == 0) if first_game_only else None
            env = gym.wrappers.RecordVideo(env, video_folder, episode_trigger=trigger)
        env = NoopFireReset(env, noop_max)
        preprocessing = dict(noop_max=0, frame_skip=4, screen_size=size, grayscale_obs=True, scale_obs=False)
        env = gym.wrappers.AtariPreprocessing(env, terminal_on_life_loss=False, **preprocessing)
        return gym.wrappers.FrameStackObservation(env, 4, padding_type="zero")

    return thunk


class AtariGames:
    """`num_envs` Atari games with the article's preprocessing, on either backend: uint8 (num_envs, 4,
    84, 84) frames (noop reset <= 30, frame skip 4 max-pooling the last two frames, FIRE after reset,
    84x84 grey, or `size` x `size`, 4 stacked), a game reset in the step it ends (its last frame in `final_obs`).
    `step` returns, per game: the raw reward, `terminated` (game over, or a life lost: the training
    signal), `truncated` (time limit), the info dict, and the raw score and length of the whole games
    (all lives, unclipped) that ended in this step (`last_game_over` marks which). With `video_folder`
    (gymnasium only) game 0 is recorded, or with `every_game` the first game of each env."""

    def __init__(self, env_id, num_envs, backend, seed, size=84, noop_max=30, video_folder=None, every_game=False):
        spec_kwargs = atari_spec(env_id)
        sticky = spec_kwargs.get("repeat_action_probability", 0.0)
        same_step = gym.vector.AutoresetMode.SAME_STEP
        self.backend = backend
        if backend == "ale":
            from ale_py.vector_env import AtariVectorEnv

            frames = dict(img_height=size, img_width=size, grayscale=True, stack_num=4, frameskip=4, maxpool=True)
            # life_loss_info: a lost life reads as terminated and the game goes on (episodic_life would restart it)
            resets = dict(noop_max=noop_max, use_fire_reset=True, episodic_life=False, life_loss_info=True)
            game = dict(repeat_action_probability=sticky, full_action_space=spec_kwargs.get("full_action_space", False))
            limits = dict(max_num_frames_per_episode=MAX_FRAMES_PER_EPISODE, reward_clipping=False)
            self.envs = AtariVectorEnv(
                spec_kwargs["game"], num_envs, **frames, **resets, **game, **limits, autoreset_mode=same_step
            )
        else:
            videos = [video_folder] + [None] * (num_envs - 1)  # game 0, on gymnasium's schedule
            if video_folder and every_game:  # or the first game of each env, each in its own folder
                videos = [f"{video_folder}/game-{i + 1}" for i in range(num_envs)]
            thunks = [make_gym_env(env_id, spec_kwargs, noop_max, size, video, every_game) for video in videos]
            self.envs = gym.vector.SyncVectorEnv(thunks, autoreset_mode=same_step)
        self.num_envs = num_envs
        self.single_action_space = self.envs.single_action_space
        self.seed = seed

    def reset(self) -> np.ndarray:
        obs, info = self.envs.reset(seed=self.seed)
        self.lives = np.asarray(info["lives"]).copy()
        self.game_return, self.game_length = np.zeros(self.num_envs), np.zeros(self.num_envs, dtype=np.int64)
        return obs

    def step(self, actions: np.ndarray):
        obs, reward, terminated, truncated, info = self.envs.step(actions)
        lives = np.asarray(info["lives"])
        life_lost = lives < self.lives  # a reset game reports its new (higher or equal) lives
        if self.backend == "ale":
            game_over = truncated | (terminated & ~life_lost)
        else:
            game_over = terminated | truncated
            terminated = terminated | life_lost
        self.lives = lives.copy()
        reward = np.asarray(reward, dtype=np.float64)
        self.game_return += reward
        self.game_length += 1
        self.last_game_over = game_over
        ended = (self.game_return[game_over].copy(), self.game_length[game_over].copy())
        self.game_return[game_over], self.game_length[game_over] = 0, 0
        return obs, reward, terminated, truncated, info, ended

    def final_obs(self, info: dict, indices: np.ndarray) -> np.ndarray:
        return np.stack([info["final_obs"][i] for i in indices])

    def close(self) -> None:
        self.envs.close()


def layer_init(layer: nn.Module, std: float = np.sqrt(2), bias_const: float = 0.0) -> nn.Module:
    torch.nn.init.orthogonal_(layer.weight, std)
    torch.nn.init.constant_(layer.bias, bias_const)
    return layer


class Agent(nn.Module):
    """The article's A2CNet: ConvBlock (4 x conv3x3/2, 32 filters, LeakyReLU, AvgPool2d(2)) ->
    LSTMCell(288, 288) -> linear actor and critic."""

    def __init__(self, num_actions: int, frames: int = 4, hidden: int = 288, actor_std: float = 1.0, size: int = 84):
        super().__init__()
        gain = nn.init.calculate_gain("leaky_relu")
        layers = []
        for in_channels in (frames, 32, 32, 32):
            layers += [layer_init(nn.Conv2d(in_channels, 32, 3, stride=2, padding=1), gain), nn.LeakyReLU()]
        # 84 -> 42 -> 21 -> 11 -> 6, then average-pooled to 3 (42 -> ... -> 3 unpooled): 32 x 3 x 3 = 288 features
        pool = [nn.AvgPool2d(2)] if size == 84 else []
        self.convs = nn.Sequential(*layers, *pool, nn.Flatten())
        self.lstm = nn.LSTMCell(288, hidden)
        self.actor = layer_init(nn.Linear(hidden, num_actions), actor_std)
        self.critic = layer_init(nn.Linear(hidden, 1), 1.0)
        self.hidden = hidden
        self.convs.to(memory_format=torch.channels_last)  # the CPU conv backward is ~10x faster so

    def initial_state(self, num_envs: int, device) -> tuple[torch.Tensor, torch.Tensor]:
        return (torch.zeros(num_envs, self.hidden, device=device), torch.zeros(num_envs, self.hidden, device=device))

    def step(self, obs: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]):
        """One step for a batch of games: uint8 frames -> (logits, value, new LSTM state)."""
        x = (obs.float() / 255.0).contiguous(memory_format=torch.channels_last)
        h, c = self.lstm(self.convs(x), state)
        return self.actor(h), self.critic(h).squeeze(-1), (h, c)


def make_storage(num_steps: int, num_envs: int, device: torch.device) -> dict:
    def zeros(dtype=torch.float32):
        return torch.zeros((num_steps, num_envs), dtype=dtype, device=device)

    return {"actions": zeros(torch.long), "rewards": zeros(), "dones": zeros(), "final_values": zeros()}


def collect_rollout(agent, games, next_obs, state, storage, global_step, writer, recent_returns, device, world_size=1):
    """Step the games `num_steps` times, filling `storage` in place; returns the rollout's logits and
    values WITH their graph, so the loss differentiates the very forward pass that chose the actions.
    The LSTM state is detached first (truncated BPTT over `num_steps`), and zeroed for the games whose
    episode ended, after a truncated game's final observation has been valued with its own state.
    Rewards are clipped to [-1, 1] for training; whole-game raw scores are logged. `global_step` counts the
    steps of all `world_size` ranks' games (data-parallel under torchrun)."""
    num_steps, num_envs = storage["rewards"].shape
    state = (state[0].detach(), state[1].detach())
    all_logits, all_values = [], []
    for step in range(num_steps):
        global_step += num_envs * world_size
        logits, value, state = agent.step(next_obs, state)
        all_logits.append(logits)
        all_values.append(value)
        with torch.no_grad():
            action = sample_actions(logits)
        storage["actions"][step] = action
        next_obs, reward, terminated, truncated, infos, (game_returns, game_lengths) = games.step(action.cpu().numpy())
        storage["rewards"][step] = torch.as_tensor(np.clip(reward, -1.0, 1.0), dtype=torch.float32, device=device)
        dones = torch.as_tensor(terminated | truncated, dtype=torch.float32, device=device)
        storage["dones"][step] = dones
        final_values = torch.zeros(num_envs, device=device)
        truncated_only = np.flatnonzero(truncated & ~terminated)
        if len(truncated_only):
            with torch.no_grad():
                idx = torch.as_tensor(truncated_only, device=device)
                final_obs = torch.as_tensor(games.final_obs(infos, truncated_only), device=device)
                final_values[idx] = agent.step(final_obs, (state[0][idx], state[1][idx]))[1]
        storage["final_values"][step] = final_values
        state = reset_lstm_state(state, dones)
        next_obs = torch.as_tensor(next_obs, device=device)
        for game_return, game_length in zip(game_returns, game_lengths):
            writer.add_scalar("charts/episodic_return", float(game_return), global_step)
            writer.add_scalar("charts/episodic_length", int(game_length), global_step)
            recent_returns.append(float(game_return))
    return next_obs, state, global_step, torch.stack(all_logits), torch.stack(all_values)


# one action per row of logits, drawn from the policy: `Categorical(logits=logits).sample()`, cheaper
def sample_actions(logits):
    return torch.multinomial(logits.softmax(-1), 1).squeeze(-1)


def reset_lstm_state(state: tuple[torch.Tensor, torch.Tensor], dones: torch.Tensor):
    """Zero the (h, c) rows of the games whose episode ended (dones: (N,) 0/1 or bool)."""
    keep = (1.0 - dones.float()).unsqueeze(1)
    return state[0] * keep, state[1] * keep


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


def a2c_loss(logits, values, actions, returns, ent_coef: float, vf_coef: float):
    """The article's loss, means over the rollout: policy - ent_coef * entropy + vf_coef * value,
    with value = mean (R - V)^2 and the advantage detached in the policy term."""
    pi = Categorical(logits=logits)
    advantages = returns - values
    policy_loss = -(pi.log_prob(actions) * advantages.detach()).mean()
    value_loss = advantages.pow(2).mean()
    entropy = pi.entropy().mean()
    return policy_loss - ent_coef * entropy + vf_coef * value_loss, policy_loss, value_loss, entropy


def main() -> None:
    args = tyro.cli(Args, description=__doc__.splitlines()[0])
    stop = StopFlag()
    settings_from_file(args, args.play or args.resume, sys.argv[1:], names=("env_id", "frame_size"))
    checkpoint = resume_from(args, sys.argv[1:]) if args.resume and not args.play else None
    validate_args(args)
    torch.set_num_threads(args.torch_threads)
    device = torch.device("cuda" if torch.cuda.is_available() and args.cuda else "cpu")
    if args.play:
        play_saved(args, stop, device)
        sys.exit(130 if stop.requested else 0)
    rank, world_size, device = init_distributed(device)  # distributed: (0, 1, device) without torchrun
    args.batch_size = int(args.num_envs * args.num_steps * world_size)  # all ranks' games
    args.num_iterations = args.total_timesteps // args.batch_size
    global_step = int(checkpoint["global_step"]) if checkpoint else 0
    run_name = checkpoint["run_name"] if checkpoint else make_run_dir(args) if rank == 0 else make_run_name(args)
    if rank > 0:  # distributed: only rank 0 writes (TensorBoard, checkpoints, the model, videos)
        writer, args.checkpoint_interval, args.save_model, args.capture_video = NoWriter(), 0, False, False
    elif checkpoint:  # the old run directory; TensorBoard drops what the interrupted run logged after the checkpoint
        writer = make_writer(args, run_name, purge_step=global_step + 1)
        print(f"resumed {run_name} at step {global_step}")
    else:
        writer = make_writer(args, run_name)
    checkpoint_path = f"runs/{run_name}/checkpoint.pt"

    # seeding
    seed = args.seed + global_step + rank * args.num_envs  # a resumed run plays new games; rank r games seed+r*n+i
    seed_everything(seed, args.torch_deterministic)

    # env setup
    video_folder = f"videos/{run_name}" if args.capture_video else None
    games = AtariGames(args.env_id, args.num_envs, args.env_backend, seed, args.frame_size, video_folder=video_folder)
    if checkpoint:
        agent = load_agent(checkpoint, args.resume, device, args.frame_size).train()
    else:
        agent = Agent(int(games.single_action_space.n), actor_std=args.actor_init_std, size=args.frame_size).to(device)
    if args.optimizer == "rmsprop":
        optimizer = optim.RMSprop(agent.parameters(), lr=args.learning_rate, alpha=0.99, eps=1e-5)
    else:
        optimizer = optim.Adam(agent.parameters(), lr=args.learning_rate, fused=device.type in ("cpu", "cuda"))
    if checkpoint:
        optimizer.load_state_dict(checkpoint["optimizer"])
        optimizer.param_groups[0]["lr"] = args.learning_rate  # the current flag, not the checkpoint's
    broadcast_parameters(agent)  # distributed: rank 0's initial weights on every rank
    if args.compile:  # the same step, compiled (one graph per batch shape it meets)
        agent.step = torch.compile(agent.step, dynamic=False)

    # storage
    storage = make_storage(args.num_steps, args.num_envs, device)
    next_obs = torch.as_tensor(games.reset(), device=device)
    state = agent.initial_state(args.num_envs, device)
    recent_returns = deque(maxlen=20)
    first_step = global_step
    log_every = max(1, 4000 // args.batch_size)  # losses every ~4000 steps: logging is not free
    print_every = max(1, args.num_iterations // 200)
    start_time = time.time()
    print(f"{args.env_id}: {args.num_envs} games ({args.env_backend})", flush=True)

    for iteration in range(global_step // args.batch_size + 1, args.num_iterations + 1):
        stop.requested = any_rank(stop.requested, device)  # distributed: one rank's signal stops all
        if stop.requested:
            break

        # rollout
        next_obs, state, global_step, logits, values = collect_rollout(
            agent, games, next_obs, state, storage, global_step, writer, recent_returns, device, world_size
        )

        # advantages
        with torch.no_grad():
            _, last_value, _ = agent.step(next_obs, state)  # bootstrap; the carried state is not advanced
            rewards, dones, final_values = storage["rewards"], storage["dones"], storage["final_values"]
            _, returns = compute_gae(rewards, values, dones, final_values, last_value, args.gamma, args.gae_lambda)

        # update
        loss, pg_loss, v_loss, entropy = a2c_loss(
            logits, values, storage["actions"], returns, args.ent_coef, args.vf_coef
        )
        optimizer.zero_grad()
        loss.backward()
        average_gradients(agent)  # distributed: the mean gradient over the ranks
        grad_norm = nn.utils.clip_grad_norm_(agent.parameters(), args.max_grad_norm)  # the norm before clipping
        optimizer.step()
        last = iteration == args.num_iterations
        interval = args.checkpoint_interval
        if interval and (global_step // interval > (global_step - args.batch_size) // interval or last):
            save_checkpoint(agent, optimizer, global_step, args, run_name, checkpoint_path)  # the end too: extendable

        # logging
        elapsed = time.time() - start_time
        if iteration % log_every == 0 or last:
            var_y = torch.var(returns)
            explained_var = float("nan") if var_y == 0 else float(1 - torch.var(returns - values.detach()) / var_y)
            writer.add_scalar("charts/learning_rate", optimizer.param_groups[0]["lr"], global_step)
            writer.add_scalar("losses/value_loss", v_loss.item(), global_step)
            writer.add_scalar("losses/policy_loss", pg_loss.item(), global_step)
            writer.add_scalar("losses/entropy", entropy.item(), global_step)
            writer.add_scalar("losses/explained_variance", explained_var, global_step)
            writer.add_scalar("losses/grad_norm", grad_norm.item(), global_step)
            writer.add_scalar("charts/SPS", int((global_step - first_step) / elapsed), global_step)
        if iteration % print_every == 0 or last:
            print_progress(global_step, args.total_timesteps, recent_returns, elapsed, global_step - first_step)

    # shutdown
    stop.saving = True
    games.close()
    if stop.requested and rank == 0:
        save_checkpoint(agent, optimizer, global_step, args, run_name, checkpoint_path)
        print(f"stopped at step {global_step}; checkpoint saved to {checkpoint_path}", file=sys.stderr)
    model_path = f"runs/{run_name}/{args.exp_name}.pt"
    if args.save_model:
        save_agent(agent, args, model_path)
        print(f"model saved to {model_path}")
    stop.saving = False  # a signal during the evaluation games ends them
    if args.save_model and not stop.requested and args.eval_episodes > 0:
        eval_agent = load_agent(load_saved(model_path, args.env_id), model_path, device, args.frame_size)
        eval_returns, _ = run_episodes(eval_agent, args, args.eval_episodes, args.seed + 10_000, device, stop=stop)
        for idx, episodic_return in enumerate(eval_returns):
            writer.add_scalar("eval/episodic_return", episodic_return, idx)
        if eval_returns:  # none when a signal ended the games early
            print(f"eval: {len(eval_returns)} games, return {np.mean(eval_returns):.2f} ± {np.std(eval_returns):.2f}")
    if dist.is_initialized():
        dist.destroy_process_group()  # distributed
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


def resume_from(args: Args, argv: list[str]) -> dict:
    """The `--resume` checkpoint; its settings replace those in `args` except the flags given in `argv`
    (`--flag value`, `--flag=value`, `--no-flag`)."""
    checkpoint = load_saved(args.resume, args.env_id)
    missing = {"optimizer", "global_step", "run_name"} - set(checkpoint)
    if missing:
        fail(f"--resume {args.resume!r} is a saved model, not a checkpoint (it has no {', '.join(sorted(missing))})")
    given = given_flags(argv)
    for key, value in checkpoint["args"].items():
        if key in Args.__dataclass_fields__ and key not in given and key != "resume":
            setattr(args, key, value)
    return checkpoint


def given_flags(argv: list[str]) -> set[str]:
    """The Args fields given on the command line `argv`, as `--flag value`, `--flag=value` or `--no-flag`
    (with '-' or '_'): tyro cannot tell a default from a value given equal to it."""
    given = {a[2:].split("=")[0].replace("-", "_") for a in argv if a.startswith("--")}
    return given | {name[3:] for name in given if name.startswith("no_")}


def validate_args(args: Args) -> None:
    check_args(
        args,
        positive=[
            "total_timesteps",
            "num_envs",
            "num_steps",
            "learning_rate",
            "max_grad_norm",
            "torch_threads",
            "actor_init_std",
        ],
        non_negative=["ent_coef", "vf_coef", "checkpoint_interval", "eval_episodes"],
        at_most={"num_envs": 1024, "eval_episodes": 1024},  # one game each, all at once
    )
    atari_spec(args.env_id)
    if not 0.0 < args.gamma <= 1.0 or not 0.0 <= args.gae_lambda <= 1.0:
        fail(f"--gamma must be in (0, 1] and --gae-lambda in [0, 1], got {args.gamma} and {args.gae_lambda}")
    if args.play is not None and args.eval_episodes == 0:
        fail("--play needs --eval-episodes of at least 1")
    if args.play is None and args.total_timesteps < args.num_envs * args.num_steps:
        fail(f"--total-timesteps {args.total_timesteps} is smaller than one rollout ({args.num_envs * args.num_steps})")
    if args.play is None and args.capture_video and args.env_backend != "gymnasium":
        fail("--capture-video needs --env-backend gymnasium (the native ALE vector env renders no video)")
    if args.compile and args.play is None:
        check_compile()


def check_compile() -> None:
    """`--compile` on a platform without a working compiler: one error line before anything starts."""
    try:
        torch.compile(lambda x: x * 2, dynamic=False)(torch.ones(2))
    except Exception as e:
        fail(f"--compile: torch.compile does not work here: {type(e).__name__}: {(str(e).splitlines() or [''])[0]}")


def play_saved(args: Args, stop: StopFlag, device) -> None:
    """`--play`: the saved agent plays `--eval-episodes` whole games; nothing is written but videos."""
    agent = load_agent(load_saved(args.play, args.env_id), args.play, device, args.frame_size)
    video_folder = f"videos/{make_run_name(args)}__play" if args.capture_video else None
    scores, lengths = run_episodes(agent, args, args.eval_episodes, args.seed, device, args.greedy, video_folder, stop)
    print_scores(scores, lengths)
    if video_folder:
        print(f"videos saved to {video_folder}/")


@torch.no_grad()
def run_episodes(agent, args, num_games: int, seed: int, device, greedy=False, video_folder=None, stop=None):
    """Play `num_games` whole games at once, one per env (so short games are not over-represented), with
    the training preprocessing; returns the raw scores and lengths (agent steps) of the games, all of
    them unless a raised `stop` flag ended the play. With `video_folder`, every game is recorded there."""
    backend = "gymnasium" if video_folder else args.env_backend  # the same frames; only gymnasium renders
    envs = AtariGames(
        args.env_id, num_games, backend, seed, args.frame_size, video_folder=video_folder, every_game=True
    )
    obs = torch.as_tensor(envs.reset(), device=device)
    state = agent.initial_state(num_games, device)
    scores, lengths = np.full(num_games, np.nan), np.zeros(num_games, dtype=np.int64)
    while np.isnan(scores).any() and not (stop is not None and stop.requested):
        logits, _, state = agent.step(obs, state)
        action = logits.argmax(-1) if greedy else sample_actions(logits)
        obs, _, terminated, truncated, _, (game_returns, game_lengths) = envs.step(action.cpu().numpy())
        ended = np.flatnonzero(envs.last_game_over)
        first = np.isnan(scores[ended])
        scores[ended[first]], lengths[ended[first]] = game_returns[first], game_lengths[first]
        state = reset_lstm_state(state, torch.as_tensor(terminated | truncated, device=device))
        obs = torch.as_tensor(obs, device=device)
    envs.close()
    done = ~np.isnan(scores)
    return [float(s) for s in scores[done]], [int(n) for n in lengths[done]]


def load_agent(saved: dict, path: str, device, size: int) -> Agent:
    """The agent (eval mode) of a file read by `load_saved`, for `size` x `size` frames; a network of another
    shape, or trained on frames of another size, is a user error."""
    trained_on = saved.get("args", {}).get("frame_size", 84)
    if trained_on != size:
        fail(f"{path!r} was trained on {trained_on}x{trained_on} frames, not --frame-size {size}")
    try:
        agent = Agent(saved["model"]["actor.weight"].shape[0], size=size)
        agent.load_state_dict(saved["model"])
    except (KeyError, RuntimeError) as e:
        fail(f"{path!r} does not hold this script's network: {type(e).__name__}: {e}")
    return agent.to(device).eval()


def save_checkpoint(agent, optimizer, global_step: int, args: Args, run_name: str, path: str) -> None:
    state = {"optimizer": optimizer.state_dict(), "global_step": global_step, "run_name": run_name}
    atomic_save({"script": SCRIPT, "model": agent.state_dict(), "args": vars(args), **state}, path)


def save_agent(agent: nn.Module, args: Args, path: str) -> None:
    atomic_save({"script": SCRIPT, "model": agent.state_dict(), "args": vars(args)}, path)


# ----------------------------------------------------------------------------------------------
# Data-parallel under torchrun: without torchrun (no WORLD_SIZE) every helper below does nothing.
# ----------------------------------------------------------------------------------------------


def init_distributed(device: torch.device) -> tuple[int, int, torch.device]:
    """Under torchrun: join the process group and return (global rank, world size, this rank's device);
    NCCL on the GPU `LOCAL_RANK` when the ranks have GPUs, gloo on CPU. Rank 0 alone prints. A collective
    that waits 60 s for a rank that died raises, so no rank hangs (torchrun then stops the others).
    Without torchrun: (0, 1, device)."""
    if "WORLD_SIZE" not in os.environ:
        return 0, 1, device
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend, timeout=timedelta(seconds=60))
    rank, world_size = dist.get_rank(), dist.get_world_size()
    if rank > 0:
        sys.stdout = open(os.devnull, "w")  # the console is rank 0's; errors still reach stderr
    print(f"torchrun: {world_size} ranks ({backend}), each its own --num-envs games, gradients averaged")
    return rank, world_size, device


class NoWriter:
    """The writer of ranks > 0: TensorBoard is rank 0's."""

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def copy_flat(flat: torch.Tensor, tensors: list) -> None:
    for tensor, part in zip(tensors, flat.split([t.numel() for t in tensors])):
        tensor.copy_(part.view_as(tensor))


def broadcast_parameters(agent: nn.Module) -> None:
    """Every rank starts from rank 0's weights."""
    if dist.is_initialized():
        params = [p.data for p in agent.parameters()]
        flat = torch.cat([p.flatten() for p in params])
        dist.broadcast(flat, src=0)
        copy_flat(flat, params)


def average_gradients(agent: nn.Module) -> None:
    """Each gradient becomes its mean over the ranks (one all-reduce of all of them, flattened): the
    gradient of the loss over all ranks' games, as the losses are means over equal rollouts."""
    if dist.is_initialized():
        grads = [p.grad for p in agent.parameters()]
        flat = torch.cat([g.flatten() for g in grads])
        dist.all_reduce(flat)
        copy_flat(flat / dist.get_world_size(), grads)


def any_rank(flag: bool, device: torch.device) -> bool:
    """True on every rank when it is True on any (a Ctrl-C or SIGTERM stops all ranks at the same iteration)."""
    if not dist.is_initialized():
        return flag
    flags = torch.tensor([float(flag)], device=device)
    dist.all_reduce(flags, op=dist.ReduceOp.MAX)
    return bool(flags.item())


if __name__ == "__main__":
    try:
        main()
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
