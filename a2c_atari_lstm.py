"""Synchronous A2C with a conv + LSTMCell agent on Atari (PongNoFrameskip-v4 by default).

Follows the article "A2C(Advantage Actor-Critic)算法", a walk-through of rpatrik96/pytorch-a2c
(https://github.com/rpatrik96/pytorch-a2c): 8 parallel games, 4 stacked 84x84 grey frames, a
ConvBlock of four 3x3/stride-2 convolutions (32 filters, LeakyReLU) and a 2x2 average pool giving
288 features, an LSTMCell(288, 288) whose state is zeroed per game when its episode ends, linear
actor and critic heads, orthogonal init, 5-step rollouts, n-step returns bootstrapped from the
critic, loss = policy + 0.5 value - 0.02 entropy, Adam lr 1e-4, gradient-norm clip 0.5.

Usage:
    python a2c_atari_lstm.py                                      # PongNoFrameskip-v4, 10M steps
    python a2c_atari_lstm.py --env-id BreakoutNoFrameskip-v4 --total-timesteps 1000000
    python a2c_atari_lstm.py --env-backend gymnasium              # gymnasium wrappers, same frames
    python a2c_atari_lstm.py --resume runs/<run name>/checkpoint.pt --total-timesteps 20000000
    python a2c_atari_lstm.py --save-model --eval-episodes 10

Departures from the article:
- returns mask each step with its own done flag (the article masks every step with the last
  step's flag, `dones[-1]`, so returns leak across an episode end inside a rollout);
- time-limit truncation is bootstrapped from the critic's value of the final observation,
  termination (game over, or a lost life during training) is not; `--gae-lambda` (default 1.0,
  the article's plain n-step returns);
- the loss averages the entropy over the rollout (the article sums the 5 per-step means);
- the bootstrap value does not advance the carried LSTM state (the article's final-value call
  steps the LSTM on the boundary frame, which the next rollout then feeds it again);
- ale-py's native `AtariVectorEnv` (C++ threads) with the same preprocessing as the article's
  stable-baselines3 wrappers; `--env-backend gymnasium` gives the same frames with gymnasium
  wrappers; no wandb or stable-baselines3 dependency;
- the curiosity/ICM arguments the article parses but never uses are left out;
- a checkpoint every `--checkpoint-interval` steps that `--resume` continues, instead of saving
  on the "best loss" (a low A2C loss says nothing about the policy);
- 10M steps by default (the article's 2.5M updates are 100M steps).
"""

import contextlib
import io
import os
import random
import sys
import time
from collections import deque
from dataclasses import dataclass
from typing import Literal, Optional

import gymnasium as gym
import numpy as np
import torch
import torch.nn as nn
import torch.optim as optim
import tyro
from torch.distributions.categorical import Categorical
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
    """the lambda of the generalised advantage estimate (1.0 = the article's n-step returns)"""
    ent_coef: float = 0.02
    """coefficient of the entropy bonus (`entropy_coeff` in the article)"""
    vf_coef: float = 0.5
    """coefficient of the value loss (`value_coeff` in the article)"""
    max_grad_norm: float = 0.5
    """the maximum norm for gradient clipping"""
    env_backend: Literal["ale", "gymnasium"] = "ale"
    """`ale`: ale-py's native C++ vector env; `gymnasium`: gymnasium wrappers in a SyncVectorEnv"""
    checkpoint_interval: int = 1_000_000
    """save `runs/<run name>/checkpoint.pt` every this many steps and at the end (0: only on Ctrl-C)"""
    resume: Optional[str] = None
    """a checkpoint to continue from: its run directory, step counter and settings, except the flags given"""
    eval_episodes: int = 10
    """the number of evaluation games run with the saved model (with `--save-model`)"""
    torch_threads: int = 1
    """torch CPU threads (1: on cores shared with other runs more threads slow the update ~7x; 2 helps a lone run)"""


MAX_FRAMES_PER_EPISODE = 108_000  # 30 minutes of play: the usual Atari time limit (truncation)


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


def validate_args(args: Args) -> None:
    for name in ("total_timesteps", "num_envs", "num_steps", "torch_threads"):
        if getattr(args, name) <= 0:
            fail(f"--{name.replace('_', '-')} must be a positive integer, got {getattr(args, name)}")
    if args.total_timesteps < args.num_envs * args.num_steps:
        fail(f"--total-timesteps {args.total_timesteps} is smaller than one rollout ({args.num_envs * args.num_steps})")
    if args.learning_rate <= 0:
        fail(f"--learning-rate must be positive, got {args.learning_rate}")
    if not 0.0 < args.gamma <= 1.0 or not 0.0 <= args.gae_lambda <= 1.0:
        fail("--gamma must be in (0, 1] and --gae-lambda in [0, 1]")
    if args.max_grad_norm <= 0 or args.ent_coef < 0 or args.vf_coef < 0:
        fail("--max-grad-norm must be positive, --ent-coef and --vf-coef >= 0")
    if args.checkpoint_interval < 0 or args.eval_episodes < 0:
        fail("--checkpoint-interval and --eval-episodes must be >= 0")
    if args.capture_video and args.env_backend != "gymnasium":
        fail("--capture-video needs --env-backend gymnasium (the native ALE vector env renders no video)")
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


def atari_spec(env_id: str) -> dict:
    """The registered kwargs (game, repeat_action_probability, ...) of an Atari id; exits 2 otherwise."""
    import ale_py

    gym.register_envs(ale_py)
    try:
        spec = gym.spec(env_id)
    except Exception as e:
        fail(f"--env-id {env_id!r} is not a registered environment: {e}")
    if spec.entry_point != "ale_py.env:AtariEnv" or spec.kwargs.get("obs_type", "rgb") != "rgb":
        fail(f"--env-id {env_id!r} is not an Atari image environment (e.g. PongNoFrameskip-v4, ALE/Breakout-v5)")
    return dict(spec.kwargs)


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
        for _ in range(noops + int(self.fire)):
            action = 0 if noops > 0 else 1
            noops -= 1
            obs, _, terminated, truncated, info = self.env.step(action)
            if terminated or truncated:
                obs, info = self.env.reset(**kwargs)
        return obs, info


def make_gym_env(env_id: str, spec_kwargs: dict, noop_max: int, idx: int, capture_video: bool, run_name: str):
    def thunk():
        kwargs = dict(frameskip=1, repeat_action_probability=spec_kwargs.get("repeat_action_probability", 0.0),
                      max_num_frames_per_episode=MAX_FRAMES_PER_EPISODE)
        if capture_video and idx == 0:
            env = gym.make(env_id, render_mode="rgb_array", **kwargs)
            env = gym.wrappers.RecordVideo(env, f"videos/{run_name}")
        else:
            env = gym.make(env_id, **kwargs)
        env = NoopFireReset(env, noop_max)
        env = gym.wrappers.AtariPreprocessing(env, noop_max=0, frame_skip=4, screen_size=84,
                                              terminal_on_life_loss=False, grayscale_obs=True, scale_obs=False)
        return gym.wrappers.FrameStackObservation(env, 4, padding_type="zero")

    return thunk


class AtariGames:
    """`num_envs` Atari games with the article's preprocessing, on either backend.

    Both backends give uint8 (num_envs, 4, 84, 84) frames (noop reset <= 30, frame skip 4 with a
    max-pool over the last two frames, FIRE after reset, 84x84 grey, 4-frame stack, zero padded),
    reset a game in the same step it ends (its last frame in `final_obs`), and report the lives
    left. `step` returns, per game: the raw reward, `terminated` (game over, or a life lost: the
    training signal), `truncated` (time limit), the info dict, and the raw score and length of the
    whole games (all lives, unclipped) that ended in this step (`last_game_over` marks which).
    """

    def __init__(self, env_id: str, num_envs: int, backend: str, seed: int, noop_max: int = 30,
                 capture_video: bool = False, run_name: str = ""):
        spec_kwargs = atari_spec(env_id)
        self.backend = backend
        if backend == "ale":
            from ale_py.vector_env import AtariVectorEnv

            self.envs = AtariVectorEnv(
                spec_kwargs["game"], num_envs, repeat_action_probability=spec_kwargs.get("repeat_action_probability", 0.0),
                full_action_space=spec_kwargs.get("full_action_space", False),
                max_num_frames_per_episode=MAX_FRAMES_PER_EPISODE, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
                img_height=84, img_width=84, grayscale=True, stack_num=4, frameskip=4, maxpool=True,
                noop_max=noop_max, use_fire_reset=True, episodic_life=False, life_loss_info=True,
                reward_clipping=False,
            )  # life_loss_info: a lost life reads as terminated, the game goes on (episodic_life restarts it)
        else:
            self.envs = gym.vector.SyncVectorEnv(
                [make_gym_env(env_id, spec_kwargs, noop_max, i, capture_video, run_name) for i in range(num_envs)],
                autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
            )
        self.num_envs = num_envs
        self.single_action_space = self.envs.single_action_space
        self.seed = seed
        self.game_return = np.zeros(num_envs)
        self.game_length = np.zeros(num_envs, dtype=np.int64)

    def reset(self) -> np.ndarray:
        obs, info = self.envs.reset(seed=self.seed)
        self.lives = np.asarray(info["lives"]).copy()
        self.game_return[:] = 0
        self.game_length[:] = 0
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
        ended_returns = self.game_return[game_over].copy()
        ended_lengths = self.game_length[game_over].copy()
        self.game_return[game_over] = 0
        self.game_length[game_over] = 0
        return obs, reward, terminated, truncated, info, (ended_returns, ended_lengths)

    def final_obs(self, info: dict, indices: np.ndarray) -> np.ndarray:
        return np.stack([info["final_obs"][i] for i in indices])

    def close(self) -> None:
        self.envs.close()


def layer_init(layer: nn.Module, std: float = np.sqrt(2), bias_const: float = 0.0) -> nn.Module:
    torch.nn.init.orthogonal_(layer.weight, std)
    torch.nn.init.constant_(layer.bias, bias_const)
    return layer


def to_input(obs: torch.Tensor) -> torch.Tensor:
    """uint8 frames -> floats in [0, 1], channels-last (the CPU conv backward is ~10x faster so)."""
    return (obs.float() / 255.0).contiguous(memory_format=torch.channels_last)


class Agent(nn.Module):
    """The article's A2CNet: ConvBlock (4 x conv3x3/2, 32 filters, LeakyReLU, AvgPool2d(2)) ->
    LSTMCell(288, 288) -> linear actor and critic."""

    def __init__(self, num_actions: int, frames: int = 4, hidden: int = 288):
        super().__init__()
        gain = nn.init.calculate_gain("leaky_relu")
        self.convs = nn.Sequential(
            layer_init(nn.Conv2d(frames, 32, 3, stride=2, padding=1), gain),
            nn.LeakyReLU(),
            layer_init(nn.Conv2d(32, 32, 3, stride=2, padding=1), gain),
            nn.LeakyReLU(),
            layer_init(nn.Conv2d(32, 32, 3, stride=2, padding=1), gain),
            nn.LeakyReLU(),
            layer_init(nn.Conv2d(32, 32, 3, stride=2, padding=1), gain),
            nn.LeakyReLU(),
            nn.AvgPool2d(2),  # 84 -> 42 -> 21 -> 11 -> 6 -> 3: 32 x 3 x 3 = 288 features
            nn.Flatten(),
        )
        self.lstm = nn.LSTMCell(288, hidden)
        self.actor = layer_init(nn.Linear(hidden, num_actions), 1.0)
        self.critic = layer_init(nn.Linear(hidden, 1), 1.0)
        self.hidden = hidden
        self.convs.to(memory_format=torch.channels_last)  # see to_input

    def initial_state(self, num_envs: int, device) -> tuple[torch.Tensor, torch.Tensor]:
        return (torch.zeros(num_envs, self.hidden, device=device), torch.zeros(num_envs, self.hidden, device=device))

    def step(self, obs: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]):
        """One step for a batch of games: uint8 frames -> (logits, value, new LSTM state)."""
        h, c = self.lstm(self.convs(to_input(obs)), state)
        return self.actor(h), self.critic(h).squeeze(-1), (h, c)


def sample_actions(logits: torch.Tensor) -> torch.Tensor:
    """One action per game from the policy's logits: `Categorical(logits=logits).sample()` without
    building the distribution object (a measurable cost at 8 samples a step)."""
    return torch.multinomial(torch.softmax(logits, dim=-1), 1).squeeze(-1)


def reset_lstm_state(state: tuple[torch.Tensor, torch.Tensor], dones: torch.Tensor):
    """Zero the (h, c) rows of the games whose episode ended (dones: (N,) 0/1 or bool)."""
    keep = (1.0 - dones.float()).unsqueeze(1)
    return state[0] * keep, state[1] * keep


def discounted_returns(
    rewards: torch.Tensor,
    dones: torch.Tensor,
    final_values: torch.Tensor,
    last_value: torch.Tensor,
    gamma: float,
) -> torch.Tensor:
    """The article's n-step returns for a (num_steps, num_envs) rollout, each step masked by its
    OWN done flag: R_t = r_t + gamma * (final_values[t] if dones[t] else R_{t+1}), R_T = last_value.

    `final_values[t]` is 0 for a termination and the critic's value of the final observation for a
    truncation. (The article masks every step with `dones[-1]`, the last step's flag.)
    """
    returns = torch.zeros_like(rewards)
    next_return = last_value
    for t in reversed(range(rewards.shape[0])):
        next_return = rewards[t] + gamma * torch.where(dones[t].bool(), final_values[t], next_return)
        returns[t] = next_return
    return returns


def compute_gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    dones: torch.Tensor,
    final_values: torch.Tensor,
    last_value: torch.Tensor,
    gamma: float,
    gae_lambda: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimates and returns for a (num_steps, num_envs) rollout.

    `dones[t]` is 1 where the episode ended *by* step t (terminated or truncated); the
    observation after such a step belongs to a new episode, so the recursion is cut there and
    the step is bootstrapped from `final_values[t]` instead: the critic's value of the final
    observation for a truncation, 0 for a termination. `last_value` is the value of the
    observation that follows the last step of the rollout.
    """
    num_steps = rewards.shape[0]
    advantages = torch.zeros_like(rewards)
    lastgaelam = torch.zeros_like(last_value)
    for t in reversed(range(num_steps)):
        next_values = last_value if t == num_steps - 1 else values[t + 1]
        next_values = torch.where(dones[t].bool(), final_values[t], next_values)
        not_done = 1.0 - dones[t]
        delta = rewards[t] + gamma * next_values - values[t]
        lastgaelam = delta + gamma * gae_lambda * not_done * lastgaelam
        advantages[t] = lastgaelam
    return advantages, advantages + values


def a2c_loss(logits, values, actions, returns, ent_coef: float, vf_coef: float):
    """The article's loss, means over the rollout: policy - ent_coef * entropy + vf_coef * value,
    with value = mean (R - V)^2 and the advantage detached in the policy term."""
    dist = Categorical(logits=logits)
    advantages = returns - values
    policy_loss = -(dist.log_prob(actions) * advantages.detach()).mean()
    value_loss = advantages.pow(2).mean()
    entropy = dist.entropy().mean()
    return policy_loss - ent_coef * entropy + vf_coef * value_loss, policy_loss, value_loss, entropy


def make_storage(num_steps: int, num_envs: int, device: torch.device) -> dict:
    def zeros(dtype=torch.float32):
        return torch.zeros((num_steps, num_envs), dtype=dtype, device=device)

    return {"actions": zeros(torch.long), "rewards": zeros(), "dones": zeros(), "final_values": zeros()}


def collect_rollout(agent, envs, next_obs, state, storage, global_step, writer, recent_returns, device):
    """Step the games `num_steps` times, filling `storage` in place; returns the rollout's logits
    and values WITH their graph, so the loss differentiates the very forward pass that chose the
    actions (same inputs, same LSTM state). The LSTM state is detached first: gradients flow back
    through the rollout only (truncated BPTT over `num_steps`).

    Rewards are clipped to [-1, 1] for training; whole-game raw scores are logged. The LSTM state is
    zeroed for the games whose episode ended, after the truncated ones' final observation has been
    valued with the state it belongs to.
    """
    num_steps, num_envs = storage["rewards"].shape
    state = (state[0].detach(), state[1].detach())
    all_logits, all_values = [], []
    for step in range(num_steps):
        global_step += num_envs
        logits, value, state = agent.step(next_obs, state)
        all_logits.append(logits)
        all_values.append(value)
        with torch.no_grad():
            action = sample_actions(logits)
        storage["actions"][step] = action

        obs, reward, terminated, truncated, infos, (game_returns, game_lengths) = envs.step(action.cpu().numpy())
        storage["rewards"][step] = torch.as_tensor(np.clip(reward, -1.0, 1.0), dtype=torch.float32, device=device)
        storage["dones"][step] = torch.as_tensor(terminated | truncated, dtype=torch.float32, device=device)
        storage["final_values"][step] = 0.0
        truncated_only = np.flatnonzero(truncated & ~terminated)
        if len(truncated_only):
            with torch.no_grad():
                idx = torch.as_tensor(truncated_only, device=device)
                final_obs = torch.as_tensor(envs.final_obs(infos, truncated_only), device=device)
                _, final_value, _ = agent.step(final_obs, (state[0][idx], state[1][idx]))
                storage["final_values"][step, idx] = final_value
        state = reset_lstm_state(state, storage["dones"][step])
        next_obs = torch.as_tensor(obs, device=device)
        for game_return, game_length in zip(game_returns, game_lengths):
            writer.add_scalar("charts/episodic_return", float(game_return), global_step)
            writer.add_scalar("charts/episodic_length", int(game_length), global_step)
            recent_returns.append(float(game_return))
    return next_obs, state, global_step, torch.stack(all_logits), torch.stack(all_values)


def atomic_save(obj: dict, path: str) -> None:
    """A half-written file never replaces a good one."""
    tmp_path = path + ".tmp"
    torch.save(obj, tmp_path)
    os.replace(tmp_path, path)


def save_model(agent: nn.Module, args: Args, path: str) -> None:
    atomic_save({"model": agent.state_dict(), "args": vars(args)}, path)


def save_checkpoint(agent, optimizer, global_step: int, args: Args, run_name: str, path: str) -> None:
    atomic_save({"model": agent.state_dict(), "optimizer": optimizer.state_dict(), "global_step": global_step,
                 "args": vars(args), "run_name": run_name}, path)


def load_checkpoint(path: str) -> dict:
    """Read a checkpoint for `--resume`; a missing or malformed file is a user error (exit 2)."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        fail(f"--resume {path!r} cannot be read: {type(e).__name__}: {e}")
    missing = {"model", "optimizer", "global_step", "args", "run_name"} - set(checkpoint if isinstance(checkpoint, dict) else ())
    if missing:
        fail(f"--resume {path!r} is not a checkpoint of this script (missing {sorted(missing)})")
    return checkpoint


def resume_args(args: Args, checkpoint: dict, argv: list[str]) -> Args:
    """The checkpoint's settings, overridden by the flags given on the command line (`argv`)."""
    given = {a[2:].split("=")[0].replace("-", "_") for a in argv if a.startswith("--")}
    saved = checkpoint["args"]
    if "env_id" in given and args.env_id != saved["env_id"]:
        fail(f"--env-id {args.env_id!r} differs from the checkpoint's {saved['env_id']!r}")
    for key, value in saved.items():
        if key in Args.__dataclass_fields__ and key not in given and key != "resume":
            setattr(args, key, value)
    return args


def load_model(path: str, device: torch.device = torch.device("cpu")) -> tuple[Agent, dict]:
    """Load a `--save-model` file: returns the agent (in eval mode) and the Args as a dict."""
    checkpoint = torch.load(path, map_location=device, weights_only=True)
    agent = Agent(checkpoint["model"]["actor.weight"].shape[0]).to(device)
    agent.load_state_dict(checkpoint["model"])
    return agent.eval(), checkpoint["args"]


@torch.no_grad()
def evaluate(agent, args: Args, num_games: int, seed: int, device) -> list[float]:
    """Play `num_games` whole games at once, one per env (stochastic policy, as trained), and return
    their raw scores; one game per env, so short games are not over-represented."""
    envs = AtariGames(args.env_id, num_games, args.env_backend, seed)
    obs = torch.as_tensor(envs.reset(), device=device)
    state = agent.initial_state(num_games, device)
    scores = np.full(num_games, np.nan)
    while np.isnan(scores).any():
        logits, _, state = agent.step(obs, state)
        action = sample_actions(logits)
        obs, _, terminated, truncated, _, (game_returns, _) = envs.step(action.cpu().numpy())
        ended = np.flatnonzero(envs.last_game_over)
        first = np.isnan(scores[ended])
        scores[ended[first]] = game_returns[first]
        state = reset_lstm_state(state, torch.as_tensor(terminated | truncated, device=device))
        obs = torch.as_tensor(obs, device=device)
    envs.close()
    return [float(s) for s in scores]


def format_seconds(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


if __name__ == "__main__":
    args = parse_args()
    checkpoint = None
    if args.resume is not None:
        checkpoint = load_checkpoint(args.resume)
        args = resume_args(args, checkpoint, sys.argv[1:])
    validate_args(args)
    atari_spec(args.env_id)
    args.batch_size = int(args.num_envs * args.num_steps)
    args.num_iterations = args.total_timesteps // args.batch_size
    run_name = checkpoint["run_name"] if checkpoint else make_run_name(args)
    writer = make_writer(args, run_name)

    envs, agent, optimizer = None, None, None
    global_step, interrupted, resumable = 0, False, False  # resumable: a Ctrl-C checkpoint would be valid
    checkpoint_path = f"runs/{run_name}/checkpoint.pt"
    try:
        # seeding
        seed_everything(args.seed, args.torch_deterministic)
        torch.set_num_threads(args.torch_threads)
        device = torch.device("cuda" if torch.cuda.is_available() and args.cuda else "cpu")

        # env setup
        if checkpoint:
            global_step = int(checkpoint["global_step"])
            # new games after a resume: reseed so they differ from the first start's
            seed_everything(args.seed + global_step, args.torch_deterministic)
        envs = AtariGames(args.env_id, args.num_envs, args.env_backend, args.seed + global_step,
                          capture_video=args.capture_video, run_name=run_name)
        num_actions = int(envs.single_action_space.n)
        agent = Agent(num_actions).to(device)
        optimizer = optim.Adam(agent.parameters(), lr=args.learning_rate, fused=device.type in ("cpu", "cuda"))
        if checkpoint:
            agent.load_state_dict(checkpoint["model"])
            optimizer.load_state_dict(checkpoint["optimizer"])
            from tensorboard.compat.proto.event_pb2 import Event, SessionLog

            # TensorBoard drops the points logged after the checkpoint by the interrupted run
            writer.file_writer.add_event(Event(step=global_step, session_log=SessionLog(status=SessionLog.START)))
            print(f"resumed {run_name} at step {global_step}")
        resumable = True

        # storage
        storage = make_storage(args.num_steps, args.num_envs, device)
        next_obs = torch.as_tensor(envs.reset(), device=device)
        state = agent.initial_state(args.num_envs, device)
        recent_returns = deque(maxlen=20)
        first_step = global_step
        log_every = max(1, 4000 // args.batch_size)  # losses every ~4000 steps: logging is not free
        print_every = max(1, args.num_iterations // 200)
        start_time = time.time()
        print(f"{args.env_id}: {args.num_envs} games ({args.env_backend}), run dir runs/{run_name}", flush=True)

        for iteration in range(global_step // args.batch_size + 1, args.num_iterations + 1):
            # rollout
            next_obs, state, global_step, logits, values = collect_rollout(
                agent, envs, next_obs, state, storage, global_step, writer, recent_returns, device
            )

            # advantages
            with torch.no_grad():
                _, last_value, _ = agent.step(next_obs, state)  # bootstrap; the carried state is not advanced
                if args.gae_lambda == 1.0:
                    returns = discounted_returns(
                        storage["rewards"], storage["dones"], storage["final_values"], last_value, args.gamma
                    )
                else:
                    _, returns = compute_gae(
                        storage["rewards"], values.detach(), storage["dones"], storage["final_values"],
                        last_value, args.gamma, args.gae_lambda,
                    )

            # update
            loss, pg_loss, v_loss, entropy = a2c_loss(
                logits, values, storage["actions"], returns, args.ent_coef, args.vf_coef
            )
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(agent.parameters(), args.max_grad_norm)
            optimizer.step()

            if args.checkpoint_interval and (
                global_step // args.checkpoint_interval > (global_step - args.batch_size) // args.checkpoint_interval
                or iteration == args.num_iterations  # the end too, so a finished run can be extended
            ):
                save_checkpoint(agent, optimizer, global_step, args, run_name, checkpoint_path)

            # logging
            if iteration % log_every == 0 or iteration == args.num_iterations:
                elapsed = time.time() - start_time
                sps = int((global_step - first_step) / elapsed)
                y_pred, y_true = values.detach(), returns
                var_y = torch.var(y_true)
                explained_var = float("nan") if var_y == 0 else float(1 - torch.var(y_true - y_pred) / var_y)
                writer.add_scalar("charts/learning_rate", optimizer.param_groups[0]["lr"], global_step)
                writer.add_scalar("losses/value_loss", v_loss.item(), global_step)
                writer.add_scalar("losses/policy_loss", pg_loss.item(), global_step)
                writer.add_scalar("losses/entropy", entropy.item(), global_step)
                writer.add_scalar("losses/explained_variance", explained_var, global_step)
                writer.add_scalar("charts/SPS", sps, global_step)
            if iteration % print_every == 0 or iteration == args.num_iterations:
                elapsed = time.time() - start_time
                sps = int((global_step - first_step) / elapsed)
                mean_return = f"{np.mean(recent_returns):8.2f}" if recent_returns else "     n/a"
                left = elapsed / max(global_step - first_step, 1) * (args.total_timesteps - global_step)
                print(
                    f"step {global_step:>9d}/{args.total_timesteps} | return(20) {mean_return} | "
                    f"SPS {sps:>6d} | elapsed {format_seconds(elapsed)} | left {format_seconds(left)}",
                    flush=True,
                )
    except KeyboardInterrupt:
        interrupted = True
        if resumable:
            save_checkpoint(agent, optimizer, global_step, args, run_name, checkpoint_path)
            print(f"interrupted at step {global_step}; checkpoint saved to {checkpoint_path}", file=sys.stderr)

    # shutdown
    if envs is not None:
        envs.close()
    if args.save_model and agent is not None:
        model_path = f"runs/{run_name}/{args.exp_name}.pt"
        save_model(agent, args, model_path)
        print(f"model saved to {model_path}")
        if not interrupted and args.eval_episodes > 0:
            eval_agent, _ = load_model(model_path, device)
            eval_returns = evaluate(eval_agent, args, args.eval_episodes, args.seed + 10_000, device)
            for idx, episodic_return in enumerate(eval_returns):
                writer.add_scalar("eval/episodic_return", episodic_return, idx)
            print(f"eval: {len(eval_returns)} games, return {np.mean(eval_returns):.2f} ± {np.std(eval_returns):.2f}")
    writer.close()
    if args.track:
        import wandb

        wandb.finish()
    if interrupted:
        sys.exit(130)
