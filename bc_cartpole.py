"""Behaviour cloning (BC) from expert demonstrations, discrete actions.

Follows the article "基于“动手学强化学习”的知识点(二):第 15 章 模仿学习(gym版本 >= 0.26)", notes on
chapter 15 (imitation learning) of the book Hands-on Reinforcement Learning (动手学强化学习,
https://hrl.boyuai.com/); the scraped article gives no URL of its own. The inline PPO expert is a
copy of ppo_discrete.py's PPO (itself after cleanrl's ppo.py).

Usage:
    python bc_cartpole.py                                     # train a PPO expert inline, then BC
    python bc_cartpole.py --eval-greedy                       # evaluate the argmax policy
    python bc_cartpole.py --expert-data runs/<run>/demos.npz  # demonstrations from a file
    python bc_cartpole.py --num-expert-samples 0              # all pairs of the expert episode
    python bc_cartpole.py --no-expert-greedy-demos            # the article's demonstrations, from the sampling expert
    python bc_cartpole.py --env-id Acrobot-v1 --expert-timesteps 300000

Demonstrations (`--expert-data`, and `demos.npz` written to every run directory): an `.npz` with
`obs` (N x obs_dim, float32), `actions` (N, int64) and optionally `episode_returns` (float32, one
per episode) and `episode_lengths` (int64, summing to N). `ppo_discrete.py --save-model
--save-demos-episodes K` writes one. Of the file's pairs (its first `--num-expert-episodes`
episodes when `episode_lengths` is given), `--num-expert-samples` are drawn without replacement
(0 or -1: all).

Departures from the article:
- the policy is evaluated every `--eval-interval` iterations (the article: 5 sampled episodes
  after every gradient step), greedily with `--eval-greedy`; at the end both the greedy and the
  sampling policy are evaluated;
- the inline expert is ppo_discrete.py's PPO (64-64 tanh) trained for `--expert-timesteps` with
  learning rate 1e-3 (the article's expert: a 128-unit PPO, actor lr 1e-3, critic lr 1e-2);
- the policy network returns logits and the loss is a log-softmax NLL (the article takes the log
  of softmax probabilities, which is the same value but can underflow to -inf);
- CartPole-v1 (500 cap) instead of CartPole-v0; any flat-Box, Discrete-action env works;
- the inline expert records its demonstrations with the argmax action (`--expert-greedy-demos`,
  on by default; the article samples them, `--no-expert-greedy-demos`): a sampled episode holds
  the exploratory actions of the stochastic expert, and 30 pairs of it are too few to average
  them out (see the README's results). Demonstrations from a file are used as they are;
- BC's learning rate is 1e-2 (the article: 1e-3): CartPole's observations are small numbers
  (pole angles of a few hundredths of a radian), and at 1e-3 the 128-unit policy has not yet
  fitted all 30 pairs after 1000 iterations. Both changes are needed: from 30 pairs, greedy
  demonstrations at lr 1e-3 or sampled ones at lr 1e-2 stay far below the expert.
"""

import contextlib
import io
import os
import random
import sys
import time
from collections import deque
from dataclasses import dataclass
from typing import Optional

import gymnasium as gym
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
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

    env_id: str = "CartPole-v1"
    """the id of the environment: a registered id or `module:EnvId` for your own env"""

    # Behaviour cloning
    bc_learning_rate: float = 1e-2
    """the learning rate of behaviour cloning's Adam (`lr` in the article, which uses 1e-3)"""
    bc_batch_size: int = 64
    """demonstration pairs per gradient step, drawn with replacement (`batch_size` in the article)"""
    bc_iterations: int = 1000
    """gradient steps of behaviour cloning (`n_iterations` in the article)"""
    bc_hidden_dim: int = 128
    """hidden units of the policy network (`hidden_dim` in the article)"""
    eval_interval: int = 10
    """evaluate the policy every this many iterations"""
    eval_episodes: int = 5
    """episodes per periodic evaluation (5 in the article)"""
    final_eval_episodes: int = 20
    """episodes of each final evaluation (BC and inline expert, greedy and sampling)"""
    eval_greedy: bool = False
    """if toggled, the periodic evaluation plays the argmax action instead of sampling (the article samples)"""

    # PPO of the inline expert (as in ppo_discrete.py)
    num_envs: int = 4
    """the number of parallel environments (1 reproduces the article's single-env mode)"""
    num_steps: int = 128
    """the number of steps run in each environment per rollout (batch = num_envs x num_steps)"""
    anneal_lr: bool = True
    """if toggled, the learning rate decays linearly to 0 over the run"""
    gamma: float = 0.99
    """the discount factor gamma"""
    gae_lambda: float = 0.95
    """the lambda for the generalised advantage estimate"""
    num_minibatches: int = 4
    """the number of minibatches the batch is split into"""
    update_epochs: int = 4
    """the number of epochs over the batch per update"""
    norm_adv: bool = True
    """if toggled, advantages are normalised per minibatch"""
    clip_coef: float = 0.2
    """the surrogate clipping coefficient"""
    clip_vloss: bool = True
    """if toggled, the value loss is clipped as in the PPO paper's implementation"""
    ent_coef: float = 0.01
    """coefficient of the entropy bonus"""
    vf_coef: float = 0.5
    """coefficient of the value loss"""
    max_grad_norm: float = 0.5
    """the maximum norm for gradient clipping"""
    target_kl: Optional[float] = None
    """stop the epochs of an update early when the approximate KL exceeds this"""
    torch_threads: int = 1
    """torch CPU threads (1 is fastest for this small network)"""

    # Expert demonstrations
    expert_data: Optional[str] = None
    """an `.npz` of demonstrations (obs, actions[, episode_returns, episode_lengths]); unset: a PPO expert inline"""
    expert_learning_rate: float = 1e-3
    """the PPO learning rate of the inline expert (the article's expert actor uses 1e-3)"""
    expert_timesteps: int = 150000
    """environment steps of the inline PPO expert (0: a uniform-random policy makes the demonstrations)"""
    expert_target_return: Optional[float] = None
    """stop the expert early once its last 20 training episodes and 20 test episodes reach this return"""
    num_expert_episodes: int = 1
    """the number of expert episodes the demonstrations come from (`n_episode` in the article)"""
    num_expert_samples: int = 30
    """state-action pairs drawn from those episodes without replacement (`n_samples` in the article); 0 or -1: all"""
    expert_greedy_demos: bool = True
    """if toggled, the inline expert records its demonstrations with the argmax action (the article samples: --no-expert-greedy-demos)"""


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
    for name in ("num_envs", "num_steps", "num_minibatches", "update_epochs", "bc_batch_size", "bc_iterations"):
        if getattr(args, name) <= 0:
            fail(f"--{name.replace('_', '-')} must be a positive integer, got {getattr(args, name)}")
    batch_size = args.num_envs * args.num_steps
    if batch_size % args.num_minibatches != 0:
        fail(
            f"--num-minibatches {args.num_minibatches} does not divide the batch "
            f"num_envs x num_steps = {batch_size}"
        )
    if args.expert_learning_rate <= 0:
        fail(f"--expert-learning-rate must be positive, got {args.expert_learning_rate}")
    if not 0.0 < args.gamma <= 1.0 or not 0.0 <= args.gae_lambda <= 1.0:
        fail("--gamma must be in (0, 1] and --gae-lambda in [0, 1]")
    if args.clip_coef <= 0 or args.max_grad_norm <= 0:
        fail("--clip-coef and --max-grad-norm must be positive")
    for name in ("bc_hidden_dim", "eval_interval", "eval_episodes", "final_eval_episodes"):
        if getattr(args, name) <= 0:
            fail(f"--{name.replace('_', '-')} must be a positive integer, got {getattr(args, name)}")
    if args.bc_learning_rate <= 0:
        fail(f"--bc-learning-rate must be positive, got {args.bc_learning_rate}")
    validate_expert_args(args, batch_size)
    if args.torch_threads <= 0:
        fail(f"--torch-threads must be a positive integer, got {args.torch_threads}")
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


def validate_expert_args(args, batch_size: int) -> None:
    if args.expert_data is None:
        if args.expert_timesteps < 0:
            fail(f"--expert-timesteps must be >= 0 (0: random policy), got {args.expert_timesteps}")
        if 0 < args.expert_timesteps < batch_size:
            fail(f"--expert-timesteps {args.expert_timesteps} is smaller than one PPO batch ({batch_size})")
    if args.num_expert_episodes <= 0:
        fail(f"--num-expert-episodes must be a positive integer, got {args.num_expert_episodes}")
    if args.num_expert_samples < -1:
        fail(f"--num-expert-samples must be positive, or 0 or -1 for all pairs, got {args.num_expert_samples}")


def check_env(env_id: str) -> tuple[int, int]:
    """Build the env once to check that it exists and that its spaces are supported; returns (obs_dim, num_actions)."""
    try:
        env = gym.make(env_id)
    except Exception as e:  # unknown id, missing module, env constructor error
        fail(f"--env-id {env_id!r} cannot be made: {type(e).__name__}: {e}")
    action_space, observation_space = env.action_space, env.observation_space
    env.close()
    if not isinstance(action_space, gym.spaces.Discrete):
        fail(f"--env-id {env_id!r} has action space {action_space}; this script needs Discrete actions")
    if not isinstance(observation_space, gym.spaces.Box):
        fail(f"--env-id {env_id!r} has observation space {observation_space}; this script needs a Box")
    return int(np.prod(observation_space.shape)), int(action_space.n)


def reward_threshold(env_id: str) -> Optional[float]:
    """The env's registered reward threshold (475 for CartPole-v1), None when it has none."""
    try:
        return gym.spec(env_id).reward_threshold
    except Exception:  # an id gym.spec cannot resolve without making the env
        return None


def select_demonstrations(obs, actions, episode_lengths, num_episodes: int, num_samples: int, seed: int):
    """The first `num_episodes` episodes (when their lengths are known), then `num_samples` pairs
    drawn without replacement (all when `num_samples` <= 0 or larger than what there is)."""
    if episode_lengths is not None:
        n = int(np.sum(episode_lengths[:num_episodes]))
        obs, actions = obs[:n], actions[:n]
    if 0 < num_samples < len(actions):
        index = np.sort(np.random.default_rng(seed).choice(len(actions), num_samples, replace=False))
        obs, actions = obs[index], actions[index]
    elif num_samples > len(actions):
        print(f"note: only {len(actions)} expert pairs, fewer than --num-expert-samples {num_samples}; using all")
    return obs, actions


def load_demonstrations(path: str, obs_dim: int, num_actions: int, num_episodes: int) -> dict:
    """Read and check an `--expert-data` file; every problem is a one-line user error."""
    flag = f"--expert-data {path!r}"
    if not os.path.isfile(path):
        fail(f"{flag}: no such file")
    try:
        with np.load(path, allow_pickle=False) as data:
            demos = {key: np.asarray(data[key]) for key in data.files}
    except Exception as e:  # not a zip, truncated, pickled objects, ...
        fail(f"{flag} cannot be read as an .npz: {type(e).__name__}: {e}")
    if "obs" not in demos or "actions" not in demos:
        fail(f"{flag} needs arrays 'obs' and 'actions', found {sorted(demos)}")
    obs, actions = demos["obs"], demos["actions"]
    if obs.ndim != 2 or obs.shape[1] != obs_dim or not np.issubdtype(obs.dtype, np.number):
        fail(f"{flag}: 'obs' must be a numeric N x {obs_dim} array for this env, got {obs.dtype} {obs.shape}")
    if actions.ndim != 1 or len(actions) != len(obs) or not np.issubdtype(actions.dtype, np.integer):
        fail(f"{flag}: 'actions' must be {len(obs)} integers (one per obs), got {actions.dtype} {actions.shape}")
    if len(actions) == 0:
        fail(f"{flag} holds no state-action pairs")
    if not np.all(np.isfinite(obs)):
        fail(f"{flag}: 'obs' holds NaN or infinite values")
    if actions.min() < 0 or actions.max() >= num_actions:
        fail(f"{flag}: actions must lie in [0, {num_actions}) for this env, found {actions.min()}..{actions.max()}")
    lengths = demos.get("episode_lengths")
    if lengths is not None:
        if lengths.ndim != 1 or not np.issubdtype(lengths.dtype, np.integer) or lengths.sum() != len(obs):
            fail(f"{flag}: 'episode_lengths' must be integers summing to {len(obs)}")
        if num_episodes > len(lengths):
            fail(f"{flag} holds {len(lengths)} episodes, fewer than --num-expert-episodes {num_episodes}")
    returns = demos.get("episode_returns")
    if returns is not None and (returns.ndim != 1 or not np.issubdtype(returns.dtype, np.number)):
        fail(f"{flag}: 'episode_returns' must be a 1-D numeric array")
    return {
        "obs": obs.astype(np.float32),
        "actions": actions.astype(np.int64),
        "episode_returns": None if returns is None else returns.astype(np.float32),
        "episode_lengths": None if lengths is None else lengths.astype(np.int64),
    }


def save_demonstrations(path: str, obs, actions, episode_returns, episode_lengths) -> None:
    tmp_path = path + ".tmp.npz"
    np.savez(
        tmp_path,
        obs=np.asarray(obs, np.float32),
        actions=np.asarray(actions, np.int64),
        episode_returns=np.asarray(episode_returns, np.float32),
        episode_lengths=np.asarray(episode_lengths, np.int64),
    )
    os.replace(tmp_path, path)


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


def log_episode_stats(writer, infos: dict, global_step: int, recent_returns: deque) -> None:
    """Log the episodes that ended in this step (vector RecordEpisodeStatistics infos)."""
    if "_episode" not in infos:
        return
    ended = infos["_episode"]
    for ret, length in zip(infos["episode"]["r"][ended], infos["episode"]["l"][ended]):
        writer.add_scalar("charts/episodic_return", float(ret), global_step)
        writer.add_scalar("charts/episodic_length", int(length), global_step)
        recent_returns.append(float(ret))


def make_env(env_id: str, idx: int, capture_video: bool, run_name: str):
    def thunk():
        if capture_video and idx == 0:
            env = gym.make(env_id, render_mode="rgb_array")
            env = gym.wrappers.RecordVideo(env, f"videos/{run_name}")
        else:
            env = gym.make(env_id)
        if len(env.observation_space.shape) != 1:
            env = gym.wrappers.FlattenObservation(env)
        return env

    return thunk


def make_vector_env(args, run_name: str) -> gym.vector.VectorEnv:
    envs = gym.vector.SyncVectorEnv(
        [make_env(args.env_id, i, args.capture_video, run_name) for i in range(args.num_envs)],
        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
    )
    return gym.wrappers.vector.RecordEpisodeStatistics(envs)


def layer_init(layer: nn.Module, std: float = np.sqrt(2), bias_const: float = 0.0) -> nn.Module:
    torch.nn.init.orthogonal_(layer.weight, std)
    torch.nn.init.constant_(layer.bias, bias_const)
    return layer


class Agent(nn.Module):
    """Separate 64-64 tanh actor and critic, as in the article."""

    def __init__(self, obs_dim: int, num_actions: int):
        super().__init__()
        self.critic = nn.Sequential(
            layer_init(nn.Linear(obs_dim, 64)),
            nn.Tanh(),
            layer_init(nn.Linear(64, 64)),
            nn.Tanh(),
            layer_init(nn.Linear(64, 1), std=1.0),
        )
        self.actor = nn.Sequential(
            layer_init(nn.Linear(obs_dim, 64)),
            nn.Tanh(),
            layer_init(nn.Linear(64, 64)),
            nn.Tanh(),
            layer_init(nn.Linear(64, num_actions), std=0.01),
        )

    def get_value(self, x: torch.Tensor) -> torch.Tensor:
        return self.critic(x)

    def get_action_and_value(self, x: torch.Tensor, action: Optional[torch.Tensor] = None):
        logits = self.actor(x)
        probs = Categorical(logits=logits)
        if action is None:
            action = probs.sample()
        return action, probs.log_prob(action), probs.entropy(), self.critic(x)


class PolicyNet(nn.Module):
    """The article's policy network: one hidden ReLU layer; returns logits (the article applies softmax)."""

    def __init__(self, obs_dim: int, hidden_dim: int, num_actions: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(obs_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, num_actions))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs)


def bc_loss(logits: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """Negative log-likelihood of the expert's actions under the policy (mean over the batch)."""
    return -torch.log_softmax(logits, dim=1).gather(1, actions.long().view(-1, 1)).mean()


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


def ppo_losses(
    newlogprob: torch.Tensor,
    oldlogprob: torch.Tensor,
    advantages: torch.Tensor,
    newvalue: torch.Tensor,
    oldvalue: torch.Tensor,
    returns: torch.Tensor,
    clip_coef: float,
    clip_vloss: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The clipped surrogate policy loss and the (optionally clipped) value loss."""
    ratio = (newlogprob - oldlogprob).exp()
    pg_loss1 = -advantages * ratio
    pg_loss2 = -advantages * torch.clamp(ratio, 1 - clip_coef, 1 + clip_coef)
    pg_loss = torch.max(pg_loss1, pg_loss2).mean()
    if clip_vloss:
        v_loss_unclipped = (newvalue - returns) ** 2
        v_clipped = oldvalue + torch.clamp(newvalue - oldvalue, -clip_coef, clip_coef)
        v_loss_clipped = (v_clipped - returns) ** 2
        v_loss = 0.5 * torch.max(v_loss_unclipped, v_loss_clipped).mean()
    else:
        v_loss = 0.5 * ((newvalue - returns) ** 2).mean()
    return pg_loss, v_loss


def ppo_update(agent, optimizer, batch: dict, args) -> dict:
    """PPO epochs over one flattened rollout `batch`; returns the last minibatch's statistics."""
    clipfracs = []
    for epoch in range(args.update_epochs):
        b_inds = torch.randperm(args.batch_size, device=batch["obs"].device)
        for start in range(0, args.batch_size, args.minibatch_size):
            mb_inds = b_inds[start : start + args.minibatch_size]
            _, newlogprob, entropy, newvalue = agent.get_action_and_value(
                batch["obs"][mb_inds], batch["actions"][mb_inds]
            )
            logratio = newlogprob - batch["logprobs"][mb_inds]
            with torch.no_grad():
                ratio = logratio.exp()
                old_approx_kl = (-logratio).mean()
                approx_kl = ((ratio - 1) - logratio).mean()
                clipfracs.append(((ratio - 1.0).abs() > args.clip_coef).float().mean())
            mb_advantages = batch["advantages"][mb_inds]
            if args.norm_adv:
                mb_advantages = (mb_advantages - mb_advantages.mean()) / (mb_advantages.std() + 1e-8)
            pg_loss, v_loss = ppo_losses(
                newlogprob,
                batch["logprobs"][mb_inds],
                mb_advantages,
                newvalue.view(-1),
                batch["values"][mb_inds],
                batch["returns"][mb_inds],
                args.clip_coef,
                args.clip_vloss,
            )
            entropy_loss = entropy.mean()
            loss = pg_loss - args.ent_coef * entropy_loss + v_loss * args.vf_coef
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(agent.parameters(), args.max_grad_norm)
            optimizer.step()
        if args.target_kl is not None and approx_kl > args.target_kl:
            break
    return {
        "policy_loss": pg_loss.item(),
        "value_loss": v_loss.item(),
        "entropy": entropy_loss.item(),
        "old_approx_kl": old_approx_kl.item(),
        "approx_kl": approx_kl.item(),
        "clipfrac": torch.stack(clipfracs).mean().item(),
    }


def flatten_rollout(storage: dict, advantages: torch.Tensor, returns: torch.Tensor, obs_dim: int) -> dict:
    return {
        "obs": storage["obs"].reshape(-1, obs_dim),
        "logprobs": storage["logprobs"].reshape(-1),
        "actions": storage["actions"].reshape(-1).long(),
        "advantages": advantages.reshape(-1),
        "returns": returns.reshape(-1),
        "values": storage["values"].reshape(-1),
    }


def make_storage(num_steps: int, num_envs: int, obs_dim: int, device: torch.device) -> dict:
    def zeros(*shape):
        return torch.zeros((num_steps, num_envs) + shape, device=device)

    return {
        "obs": zeros(obs_dim),
        "actions": zeros(),
        "logprobs": zeros(),
        "rewards": zeros(),
        "dones": zeros(),
        "values": zeros(),
        "final_values": zeros(),
    }


@torch.no_grad()
def collect_rollout(agent, envs, next_obs, storage, global_step, writer, recent_returns, device):
    """Step the vector env `num_steps` times, filling `storage` in place.

    The vector env autoresets in the same step (SAME_STEP), so the observation returned for a
    finished sub-environment is the first of its next episode; the final observation of the
    ended episode comes in `infos["final_obs"]` and is only used to bootstrap truncations.
    """
    num_steps, num_envs = storage["rewards"].shape
    for step in range(num_steps):
        global_step += num_envs
        storage["obs"][step] = next_obs
        action, logprob, _, value = agent.get_action_and_value(next_obs)
        storage["actions"][step] = action
        storage["logprobs"][step] = logprob
        storage["values"][step] = value.flatten()

        obs, reward, terminations, truncations, infos = envs.step(action.cpu().numpy())
        storage["rewards"][step] = torch.as_tensor(reward, dtype=torch.float32, device=device)
        storage["dones"][step] = torch.as_tensor(terminations | truncations, dtype=torch.float32, device=device)
        storage["final_values"][step] = 0.0
        truncated_only = np.flatnonzero(truncations & ~terminations)
        if len(truncated_only):
            final_obs = np.stack(infos["final_obs"][truncated_only]).astype(np.float32)
            final_value = agent.get_value(torch.as_tensor(final_obs, device=device)).flatten()
            storage["final_values"][step, torch.as_tensor(truncated_only, device=device)] = final_value
        next_obs = torch.as_tensor(obs, dtype=torch.float32, device=device)
        log_episode_stats(writer, infos, global_step, recent_returns)
    return next_obs, global_step


def save_model(agent: nn.Module, args: Args, path: str) -> None:
    """Atomic save: a half-written file never replaces a good one."""
    tmp_path = path + ".tmp"
    torch.save({"model": agent.state_dict(), "args": vars(args)}, tmp_path)
    os.replace(tmp_path, path)


@torch.no_grad()
def run_episodes(logits_fn, env_id: str, num_episodes: int, seed: int, device, greedy: bool = False):
    """Play whole episodes with the policy `logits_fn(obs) -> logits` (None: uniform random);
    returns (returns, lengths, obs, actions) of every step."""
    env = gym.make(env_id)
    if len(env.observation_space.shape) != 1:
        env = gym.wrappers.FlattenObservation(env)
    returns, lengths, all_obs, all_actions = [], [], [], []
    for episode in range(num_episodes):
        obs, _ = env.reset(seed=seed + episode)
        done, ep_return, ep_length = False, 0.0, 0
        while not done:
            x = torch.as_tensor(obs, dtype=torch.float32, device=device).unsqueeze(0)
            logits = torch.zeros(1, env.action_space.n, device=device) if logits_fn is None else logits_fn(x)
            action = logits.argmax(dim=1) if greedy else Categorical(logits=logits).sample()
            all_obs.append(np.asarray(obs, dtype=np.float32))
            all_actions.append(int(action.item()))
            obs, reward, terminated, truncated, _ = env.step(int(action.item()))
            done = terminated or truncated
            ep_return += float(reward)
            ep_length += 1
        returns.append(ep_return)
        lengths.append(ep_length)
    env.close()
    return returns, lengths, np.stack(all_obs), np.asarray(all_actions, dtype=np.int64)


class TagPrefix:
    """A view of a SummaryWriter that logs every tag under `prefix/` (the expert's `expert/charts/...`)."""

    def __init__(self, writer, prefix: str):
        self.writer, self.prefix = writer, prefix

    def add_scalar(self, tag: str, value, step: int) -> None:
        self.writer.add_scalar(f"{self.prefix}/{tag}", value, step)


def train_expert(args, run_name: str, writer, device) -> Agent:
    """The inline expert: the PPO above trained on the environment reward for `expert_timesteps`
    steps. Its curves are logged as `expert/charts/...` and `expert/losses/...` so that they do not
    mix with the imitator's."""
    writer = TagPrefix(writer, "expert")
    envs = make_vector_env(args, run_name)
    obs_dim = int(np.prod(envs.single_observation_space.shape))
    agent = Agent(obs_dim, int(envs.single_action_space.n)).to(device)
    optimizer = optim.Adam(agent.parameters(), lr=args.expert_learning_rate, eps=1e-5)
    storage = make_storage(args.num_steps, args.num_envs, obs_dim, device)
    obs, _ = envs.reset(seed=args.seed)
    next_obs = torch.as_tensor(obs, dtype=torch.float32, device=device)
    global_step, recent_returns, start_time = 0, deque(maxlen=20), time.time()
    num_iterations = args.expert_timesteps // args.batch_size
    target = args.expert_target_return  # None: train for the whole budget (see the README: a stopped expert is noisier)
    last_check = -5
    try:
        for iteration in range(1, num_iterations + 1):
            if args.anneal_lr:
                optimizer.param_groups[0]["lr"] = (1.0 - (iteration - 1.0) / num_iterations) * args.expert_learning_rate
            next_obs, global_step = collect_rollout(
                agent, envs, next_obs, storage, global_step, writer, recent_returns, device
            )
            with torch.no_grad():
                last_value = agent.get_value(next_obs).flatten()
                advantages, returns = compute_gae(
                    storage["rewards"],
                    storage["values"],
                    storage["dones"],
                    storage["final_values"],
                    last_value,
                    args.gamma,
                    args.gae_lambda,
                )
            stats = ppo_update(agent, optimizer, flatten_rollout(storage, advantages, returns, obs_dim), args)
            for key, value in stats.items():
                writer.add_scalar(f"losses/{key}", value, global_step)
            reached = False
            if target is not None and len(recent_returns) == 20 and np.mean(recent_returns) >= target:
                # a training mean can be a lucky streak: confirm with 20 fresh sampling episodes,
                # at most every 5 iterations
                if iteration >= last_check + 5:
                    last_check = iteration
                    check, _, _, _ = run_episodes(agent.actor, args.env_id, 20, args.seed + 30_000, device)
                    reached = np.mean(check) >= target
            if iteration % max(1, num_iterations // 10) == 0 or iteration == num_iterations or reached:
                elapsed = time.time() - start_time
                mean_return = f"{np.mean(recent_returns):8.2f}" if recent_returns else "     n/a"
                print(
                    f"expert step {global_step:>9d}/{args.expert_timesteps} | return(20) {mean_return} | "
                    f"SPS {int(global_step / elapsed):>6d} | elapsed {format_seconds(elapsed)}",
                    flush=True,
                )
            if reached:
                print(
                    f"expert: 20-episode mean return {np.mean(recent_returns):.1f} in training and "
                    f"{np.mean(check):.1f} in a check >= {target} at step {global_step}; training stops"
                )
                break
    finally:
        envs.close()
    return agent.eval()


def expert_demonstrations(args, run_name: str, writer, eval_episodes: int, device):
    """Demonstrations from the inline expert, saved as `runs/<run name>/demos.npz`, plus its evaluation.

    Returns (obs, actions) of the sampled pairs and {mode: (returns, obs)} of the expert evaluated
    greedily and by sampling (empty for a file, whose `episode_returns` are the only reference).
    """
    expert = train_expert(args, run_name, writer, device) if args.expert_timesteps > 0 else None
    logits_fn = None if expert is None else expert.actor
    greedy_demos = args.expert_greedy_demos and expert is not None  # the random policy always samples
    returns, lengths, obs, actions = run_episodes(
        logits_fn, args.env_id, args.num_expert_episodes, args.seed + 20_000, device, greedy=greedy_demos
    )
    save_demonstrations(f"runs/{run_name}/demos.npz", obs, actions, returns, lengths)
    print(
        f"{len(returns)} expert episodes ({len(actions)} pairs, return {np.mean(returns):.1f}) "
        f"saved to runs/{run_name}/demos.npz"
    )
    if expert is not None and args.save_model:
        save_expert = {"model": expert.state_dict(), "args": vars(args)}
        torch.save(save_expert, f"runs/{run_name}/expert.pt.tmp")
        os.replace(f"runs/{run_name}/expert.pt.tmp", f"runs/{run_name}/expert.pt")
    evaluation = {}
    for mode in ("greedy", "sampling"):
        ev_returns, _, ev_obs, _ = run_episodes(
            logits_fn, args.env_id, eval_episodes, args.seed + 10_000, device, greedy=mode == "greedy"
        )
        evaluation[mode] = (ev_returns, ev_obs)
        writer.add_scalar(f"charts/expert_return_{mode}", np.mean(ev_returns), 0)
    writer.add_scalar("charts/expert_demo_return", np.mean(returns), 0)
    pairs = select_demonstrations(obs, actions, None, 1, args.num_expert_samples, args.seed)
    return pairs, evaluation


def format_seconds(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


if __name__ == "__main__":
    script_start = time.time()
    args = parse_args()
    validate_args(args)
    obs_dim, num_actions = check_env(args.env_id)
    demos = None
    if args.expert_data is not None:
        demos = load_demonstrations(args.expert_data, obs_dim, num_actions, args.num_expert_episodes)
    args.batch_size = int(args.num_envs * args.num_steps)
    args.minibatch_size = int(args.batch_size // args.num_minibatches)
    run_name = make_run_name(args)
    writer = make_writer(args, run_name)

    # seeding
    seed_everything(args.seed, args.torch_deterministic)
    torch.set_num_threads(args.torch_threads)
    device = torch.device("cuda" if torch.cuda.is_available() and args.cuda else "cpu")
    threshold = reward_threshold(args.env_id)
    interrupted, expert_evaluation, iteration = False, {}, 0
    policy = None  # made after the expert, so a seed gives the same expert in gail_cartpole.py
    model_path = f"runs/{run_name}/{args.exp_name}.pt"
    eval_mode = "greedy" if args.eval_greedy else "sampling"

    try:
        # expert demonstrations: a file, or sampled from a PPO expert trained here
        if demos is None:
            (expert_obs, expert_actions), expert_evaluation = expert_demonstrations(
                args, run_name, writer, args.final_eval_episodes, device
            )
            expert_return = np.mean(expert_evaluation[eval_mode][0])
        else:
            expert_obs, expert_actions = select_demonstrations(
                demos["obs"],
                demos["actions"],
                demos["episode_lengths"],
                args.num_expert_episodes,
                args.num_expert_samples,
                args.seed,
            )
            expert_return = float("nan") if demos["episode_returns"] is None else np.mean(demos["episode_returns"])
        writer.add_scalar("charts/expert_return", expert_return, 0)
        print(f"cloning {len(expert_actions)} expert state-action pairs (expert return {expert_return:.1f})")

        # env setup (BC never acts while it learns; environments are only made to evaluate it)
        policy = PolicyNet(obs_dim, args.bc_hidden_dim, num_actions).to(device)
        optimizer = optim.Adam(policy.parameters(), lr=args.bc_learning_rate)

        # storage
        expert_obs = torch.as_tensor(expert_obs, device=device)
        expert_actions = torch.as_tensor(expert_actions, device=device)
        first_at = None
        start_time = time.time()

        for iteration in range(1, args.bc_iterations + 1):
            # rollout: a minibatch of demonstrations, drawn with replacement as in the article
            index = torch.randint(len(expert_actions), (args.bc_batch_size,), device=device)

            # update
            loss = bc_loss(policy(expert_obs[index]), expert_actions[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

            # logging
            writer.add_scalar("losses/bc_loss", loss.item(), iteration)
            if iteration % args.eval_interval == 0 or iteration == args.bc_iterations:
                policy.eval()
                ev_returns, _, _, _ = run_episodes(
                    policy, args.env_id, args.eval_episodes, args.seed + 10_000, device, greedy=args.eval_greedy
                )
                policy.train()
                mean_return = float(np.mean(ev_returns))
                writer.add_scalar("eval/episodic_return", mean_return, iteration)
                if first_at is None and threshold is not None and mean_return >= threshold:
                    first_at = iteration
                    writer.add_scalar("charts/first_iteration_at_threshold", iteration, iteration)
                elapsed = time.time() - start_time
                left = elapsed / iteration * (args.bc_iterations - iteration)
                print(
                    f"iteration {iteration:>6d}/{args.bc_iterations} | bc loss {loss.item():.4f} | "
                    f"eval return ({eval_mode}, {args.eval_episodes} ep.) {mean_return:8.2f} | "
                    f"elapsed {format_seconds(elapsed)} | left {format_seconds(left)}",
                    flush=True,
                )
    except KeyboardInterrupt:
        interrupted = True
        print(f"interrupted at iteration {iteration}", file=sys.stderr)

    # shutdown
    if args.save_model and policy is not None:
        save_model(policy, args, model_path)
        print(f"model saved to {model_path}")
    if not interrupted:
        # the final policy, greedy and sampling; the states visited are kept for comparison with the expert's
        policy.eval()
        states = {}
        for mode in ("greedy", "sampling"):
            ev_returns, _, ev_obs, _ = run_episodes(
                policy, args.env_id, args.final_eval_episodes, args.seed + 10_000, device, greedy=mode == "greedy"
            )
            writer.add_scalar(f"eval/final_return_{mode}", np.mean(ev_returns), iteration)
            states[f"learner_{mode}_obs"], states[f"learner_{mode}_returns"] = ev_obs, np.asarray(ev_returns)
        for mode, (ev_returns, ev_obs) in expert_evaluation.items():
            states[f"expert_{mode}_obs"], states[f"expert_{mode}_returns"] = ev_obs, np.asarray(ev_returns)
        np.savez(f"runs/{run_name}/eval_states.npz", **states)

        def describe(prefix):
            if f"{prefix}_greedy_returns" not in states:
                return f"{expert_return:.1f} (demonstrations)"
            return " / ".join(f"{np.mean(states[f'{prefix}_{m}_returns']):.1f} {m}" for m in ("greedy", "sampling"))

        reached = f"first at iteration {first_at}" if first_at is not None else "not reached"
        print(
            f"final ({args.final_eval_episodes} episodes each): BC {describe('learner')} | "
            f"expert {describe('expert')} | threshold {threshold} ({eval_mode} eval): {reached} | "
            f"wall time {format_seconds(time.time() - script_start)}"
        )
    writer.close()
    if args.track:
        import wandb

        wandb.finish()
    if interrupted:
        sys.exit(130)
