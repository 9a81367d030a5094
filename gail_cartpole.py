"""GAIL (generative adversarial imitation learning) with a PPO generator, discrete actions.

Follows the article "基于“动手学强化学习”的知识点(二):第 15 章 模仿学习(gym版本 >= 0.26)", notes on
chapter 15 (imitation learning) of the book Hands-on Reinforcement Learning (动手学强化学习,
https://hrl.boyuai.com/); the scraped article gives no URL of its own. GAIL is Ho & Ermon, 2016.
The PPO code (agent, GAE, losses, vector env) is a copy of ppo_discrete.py, itself after cleanrl's
ppo.py; `diff ppo_discrete.py gail_cartpole.py` shows the imitation part.

Usage:
    python gail_cartpole.py                                   # train a PPO expert inline, then GAIL
    python gail_cartpole.py --expert-data runs/<run>/demos.npz  # demonstrations from a file
    python gail_cartpole.py --reward-type logit --absorbing   # zero-centred reward log D_E - log D_A
    python gail_cartpole.py --expert-timesteps 0 --num-expert-episodes 5  # control: random "demonstrations"
    python gail_cartpole.py --env-id Acrobot-v1 --expert-timesteps 300000 --num-expert-samples 0

Demonstrations (`--expert-data`, and `demos.npz` written to every run directory): an `.npz` with
`obs` (N x obs_dim, float32), `actions` (N, int64) and optionally `episode_returns` (float32, one
per episode) and `episode_lengths` (int64, summing to N). `ppo_discrete.py --save-model
--save-demos-episodes K` writes one. Of the file's pairs (its first `--num-expert-episodes`
episodes when `episode_lengths` is given), `--num-expert-samples` are drawn without replacement
(0 or -1: all).

Departures from the article:
- the generator is the vectorised PPO of ppo_discrete.py, updated on fixed rollouts of
  num_envs x num_steps (the article updates once per episode), with ppo_discrete.py's defaults
  except the learning rate, 1e-3 as the article's actor (one optimizer for actor and critic);
  the inline expert is the same PPO trained on the environment reward with learning rate 1e-3
  (the article's expert: a 128-unit PPO, actor lr 1e-3, critic lr 1e-2, gamma 0.98);
- the discriminator takes one-hot actions for any number of actions (the article hard-codes 2);
  it outputs a logit and uses the numerically stable BCE-with-logits; D is still the probability
  "agent", agent pairs labelled 1 and expert pairs 0 as in the article;
- `--reward-type logit`: an optional zero-centred reward log D_expert - log D_agent (the article's
  -log D is always positive, which on CartPole rewards survival whatever the demonstrations); use
  it with `--absorbing`, as alone it makes falling early pay;
- CartPole-v1 (500 cap) instead of CartPole-v0; terminations end the return (value 0), time-limit
  truncations are bootstrapped from the critic; the GAIL reward replaces the environment reward
  and the true return is what is logged as `charts/episodic_return`;
- `--absorbing`: a termination leads instead to an absorbing state whose reward the discriminator
  learns (Kostrikov et al., 2019, "Discriminator-Actor-Critic"); expert episodes shorter than the
  time limit count as terminated, a file without `episode_lengths` as never terminating.
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
    total_timesteps: int = 200000
    """environment steps of GAIL's generator, summed over the parallel environments (expert: --expert-timesteps)"""

    # Algorithm specific arguments
    learning_rate: float = 1e-3
    """the learning rate of the generator's PPO optimizer (`actor_lr` in the article; ppo_discrete.py: 2.5e-4)"""
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
    eval_episodes: int = 20
    """the number of episodes of each final evaluation (learner and inline expert, greedy and sampling)"""
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

    # GAIL
    discriminator_lr: float = 1e-3
    """the learning rate of the discriminator (`lr_d` in the article)"""
    discriminator_hidden: int = 128
    """hidden units of the discriminator (`hidden_dim` in the article)"""
    discriminator_epochs: int = 1
    """full-batch discriminator steps per rollout (the article: one per episode)"""
    reward_type: Literal["neg_log_d", "logit"] = "neg_log_d"
    """the generator's reward: -log D(s,a) as in the article, or the zero-centred logit log D_expert - log D_agent"""
    absorbing: bool = False
    """if toggled, a termination leads to an absorbing state whose reward the discriminator learns (DAC)"""


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
    for name in ("total_timesteps", "num_envs", "num_steps", "num_minibatches", "update_epochs"):
        if getattr(args, name) <= 0:
            fail(f"--{name.replace('_', '-')} must be a positive integer, got {getattr(args, name)}")
    batch_size = args.num_envs * args.num_steps
    if batch_size % args.num_minibatches != 0:
        fail(
            f"--num-minibatches {args.num_minibatches} does not divide the batch "
            f"num_envs x num_steps = {batch_size}"
        )
    if args.total_timesteps < batch_size:
        fail(f"--total-timesteps {args.total_timesteps} is smaller than one batch ({batch_size})")
    if args.learning_rate <= 0 or args.expert_learning_rate <= 0:
        fail("--learning-rate and --expert-learning-rate must be positive")
    if not 0.0 < args.gamma <= 1.0 or not 0.0 <= args.gae_lambda <= 1.0:
        fail("--gamma must be in (0, 1] and --gae-lambda in [0, 1]")
    if args.clip_coef <= 0 or args.max_grad_norm <= 0:
        fail("--clip-coef and --max-grad-norm must be positive")
    if args.eval_episodes <= 0:
        fail(f"--eval-episodes must be a positive integer, got {args.eval_episodes}")
    validate_expert_args(args, batch_size)
    if args.discriminator_lr <= 0 or args.discriminator_hidden <= 0 or args.discriminator_epochs <= 0:
        fail("--discriminator-lr, --discriminator-hidden and --discriminator-epochs must be positive")
    if args.absorbing and args.gamma >= 1.0:
        fail("--absorbing needs --gamma < 1 (the absorbing state's value is r / (1 - gamma))")
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


def max_episode_steps(env_id: str) -> Optional[int]:
    """The env's registered time limit (500 for CartPole-v1), None when it has none."""
    try:
        return gym.spec(env_id).max_episode_steps
    except Exception:  # an id gym.spec cannot resolve without making the env
        return None


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


class Discriminator(nn.Module):
    """D(s, a) of the article: one hidden ReLU layer on (state, one-hot action). It returns the
    logit of D, the probability that the pair comes from the agent (the article's sigmoid output).
    With `absorbing`, one more input flags the absorbing state (zero state and action, flag 1)."""

    def __init__(self, obs_dim: int, num_actions: int, hidden_dim: int, absorbing: bool = False):
        super().__init__()
        self.obs_dim, self.num_actions, self.absorbing = obs_dim, num_actions, absorbing
        in_dim = obs_dim + num_actions + int(absorbing)
        self.net = nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, 1))

    def forward(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        parts = [obs, one_hot_actions(actions, self.num_actions)]
        if self.absorbing:
            parts.append(torch.zeros(len(obs), 1, device=obs.device))
        return self.net(torch.cat(parts, dim=1)).squeeze(1)

    def absorbing_logit(self) -> torch.Tensor:
        """The logit of the absorbing state, shape (1,)."""
        x = torch.zeros(1, self.obs_dim + self.num_actions + 1, device=self.net[0].weight.device)
        x[0, -1] = 1.0
        return self.net(x).squeeze(1)


def one_hot_actions(actions: torch.Tensor, num_actions: int) -> torch.Tensor:
    return F.one_hot(actions.long(), num_actions).float()


def discriminator_loss(
    agent_logits: torch.Tensor,
    expert_logits: torch.Tensor,
    absorbing_logit: Optional[torch.Tensor] = None,
    agent_absorbing: float = 0.0,
    expert_absorbing: float = 0.0,
) -> torch.Tensor:
    """Binary cross-entropy with the article's labels: agent pairs 1, expert pairs 0 (each term a mean).

    With an absorbing state, its logit counts as `agent_absorbing` more agent samples (the rollout's
    terminations) and `expert_absorbing` more expert samples (the expert's terminations per pair,
    scaled to the number of expert pairs).
    """
    if absorbing_logit is None:
        agent_loss = F.binary_cross_entropy_with_logits(agent_logits, torch.ones_like(agent_logits))
        expert_loss = F.binary_cross_entropy_with_logits(expert_logits, torch.zeros_like(expert_logits))
        return agent_loss + expert_loss
    def bce_sum(logits, label):
        return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, label), reduction="sum")

    agent_sum = bce_sum(agent_logits, 1.0) + agent_absorbing * bce_sum(absorbing_logit, 1.0)
    expert_sum = bce_sum(expert_logits, 0.0) + expert_absorbing * bce_sum(absorbing_logit, 0.0)
    return agent_sum / (len(agent_logits) + agent_absorbing) + expert_sum / (len(expert_logits) + expert_absorbing)


def gail_reward(logits: torch.Tensor, reward_type: str) -> torch.Tensor:
    """The generator's reward from the discriminator's logit l, D = sigmoid(l) = P(agent).

    "neg_log_d" (the article): -log D = softplus(-l), always positive, large where D calls the pair
    expert. "logit": log D_expert - log D_agent = log(1 - D) - log D = -l, zero where D is unsure.
    """
    if reward_type == "neg_log_d":
        return F.softplus(-logits)
    if reward_type == "logit":
        return -logits
    raise ValueError(f"unknown reward type {reward_type!r}")


def terminated_fraction(episode_lengths, max_episode_steps: Optional[int]) -> float:
    """Absorbing-state samples per expert pair: episodes shorter than the time limit terminated.
    Without episode lengths the demonstrations are taken to never terminate."""
    if episode_lengths is None or len(episode_lengths) == 0:
        return 0.0
    lengths = np.asarray(episode_lengths)
    terminated = lengths < max_episode_steps if max_episode_steps else np.ones(len(lengths), dtype=bool)
    return float(terminated.sum() / lengths.sum())


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


@torch.no_grad()
def rollout_advantages(agent, next_obs: torch.Tensor, storage: dict, args) -> tuple[torch.Tensor, torch.Tensor]:
    """GAE over the stored rollout, bootstrapped from the value of the observation after it."""
    last_value = agent.get_value(next_obs).flatten()
    return compute_gae(
        storage["rewards"],
        storage["values"],
        storage["dones"],
        storage["final_values"],
        last_value,
        args.gamma,
        args.gae_lambda,
    )


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
        "terminations": zeros(),
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
        storage["terminations"][step] = torch.as_tensor(terminations, dtype=torch.float32, device=device)
        truncated_only = np.flatnonzero(truncations & ~terminations)
        if len(truncated_only):
            final_obs = np.stack(infos["final_obs"][truncated_only]).astype(np.float32)
            final_value = agent.get_value(torch.as_tensor(final_obs, device=device)).flatten()
            storage["final_values"][step, torch.as_tensor(truncated_only, device=device)] = final_value
        next_obs = torch.as_tensor(obs, dtype=torch.float32, device=device)
        log_episode_stats(writer, infos, global_step, recent_returns)
    return next_obs, global_step


def save_model(agent: nn.Module, discriminator: nn.Module, args: Args, path: str) -> None:
    """Atomic save: a half-written file never replaces a good one."""
    tmp_path = path + ".tmp"
    torch.save({"model": agent.state_dict(), "discriminator": discriminator.state_dict(), "args": vars(args)}, tmp_path)
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
            advantages, returns = rollout_advantages(agent, next_obs, storage, args)
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
    returns, lengths, obs, actions = run_episodes(
        logits_fn, args.env_id, args.num_expert_episodes, args.seed + 20_000, device
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
    return pairs, evaluation, np.asarray(lengths)


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
    args.num_iterations = args.total_timesteps // args.batch_size
    run_name = make_run_name(args)
    writer = make_writer(args, run_name)

    # seeding
    seed_everything(args.seed, args.torch_deterministic)
    torch.set_num_threads(args.torch_threads)
    device = torch.device("cuda" if torch.cuda.is_available() and args.cuda else "cpu")
    threshold = reward_threshold(args.env_id)
    envs, interrupted, expert_evaluation = None, False, {}
    agent = discriminator = None  # made after the expert, so a seed gives the same expert in bc_cartpole.py
    model_path = f"runs/{run_name}/{args.exp_name}.pt"
    global_step = 0
    start_time = time.time()

    try:
        # expert demonstrations: a file, or sampled from a PPO expert trained here
        if demos is None:
            (expert_obs, expert_actions), expert_evaluation, expert_lengths = expert_demonstrations(
                args, run_name, writer, args.eval_episodes, device
            )
            expert_return = np.mean(expert_evaluation["sampling"][0])
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
            lengths = demos["episode_lengths"]
            expert_lengths = None if lengths is None else lengths[: args.num_expert_episodes]
        writer.add_scalar("charts/expert_return", expert_return, 0)
        expert_absorbing = len(expert_actions) * terminated_fraction(expert_lengths, max_episode_steps(args.env_id))
        print(f"imitating {len(expert_actions)} expert state-action pairs (expert return {expert_return:.1f})")
        expert_obs = torch.as_tensor(expert_obs, device=device)
        expert_actions = torch.as_tensor(expert_actions, device=device)

        # env setup
        envs = make_vector_env(args, run_name)
        agent = Agent(obs_dim, num_actions).to(device)
        discriminator = Discriminator(obs_dim, num_actions, args.discriminator_hidden, args.absorbing).to(device)
        optimizer = optim.Adam(agent.parameters(), lr=args.learning_rate, eps=1e-5)
        d_optimizer = optim.Adam(discriminator.parameters(), lr=args.discriminator_lr)

        # storage
        storage = make_storage(args.num_steps, args.num_envs, obs_dim, device)
        envs.action_space.seed(args.seed)
        obs, _ = envs.reset(seed=args.seed)
        next_obs = torch.as_tensor(obs, dtype=torch.float32, device=device)
        recent_returns = deque(maxlen=20)
        solved_at = None
        print_every = max(1, args.num_iterations // 100)
        start_time = time.time()

        for iteration in range(1, args.num_iterations + 1):
            if args.anneal_lr:
                frac = 1.0 - (iteration - 1.0) / args.num_iterations
                optimizer.param_groups[0]["lr"] = frac * args.learning_rate

            # rollout (storage["rewards"] receives the true reward, replaced below by the GAIL reward)
            next_obs, global_step = collect_rollout(
                agent, envs, next_obs, storage, global_step, writer, recent_returns, device
            )
            b_obs = storage["obs"].reshape(-1, obs_dim)
            b_actions = storage["actions"].reshape(-1).long()

            # discriminator: agent pairs of this rollout against all expert pairs, then the reward
            agent_absorbing = storage["terminations"].sum().item()
            for _ in range(args.discriminator_epochs):
                agent_logits = discriminator(b_obs, b_actions)
                expert_logits = discriminator(expert_obs, expert_actions)
                absorbing_logit = discriminator.absorbing_logit() if args.absorbing else None
                d_loss = discriminator_loss(
                    agent_logits, expert_logits, absorbing_logit, agent_absorbing, expert_absorbing
                )
                d_optimizer.zero_grad()
                d_loss.backward()
                d_optimizer.step()
            with torch.no_grad():
                expert_acc = (expert_logits < 0).float().mean().item()
                agent_acc = (agent_logits > 0).float().mean().item()
                rewards = gail_reward(discriminator(b_obs, b_actions), args.reward_type)
                storage["rewards"] = rewards.view(args.num_steps, args.num_envs)
                if args.absorbing:  # a termination enters the absorbing state: value r_abs / (1 - gamma)
                    absorbing_reward = gail_reward(discriminator.absorbing_logit(), args.reward_type).item()
                    storage["final_values"] += storage["terminations"] * absorbing_reward / (1.0 - args.gamma)

            # advantages
            advantages, returns = rollout_advantages(agent, next_obs, storage, args)

            # update
            stats = ppo_update(agent, optimizer, flatten_rollout(storage, advantages, returns, obs_dim), args)

            # logging
            y_pred, y_true = storage["values"].reshape(-1), returns.reshape(-1)
            var_y = torch.var(y_true)
            explained_var = float("nan") if var_y == 0 else float(1 - torch.var(y_true - y_pred) / var_y)
            elapsed = time.time() - start_time
            sps = int(global_step / elapsed)
            writer.add_scalar("charts/learning_rate", optimizer.param_groups[0]["lr"], global_step)
            for key, value in stats.items():
                writer.add_scalar(f"losses/{key}", value, global_step)
            writer.add_scalar("losses/explained_variance", explained_var, global_step)
            writer.add_scalar("losses/discriminator_loss", d_loss.item(), global_step)
            writer.add_scalar("charts/discriminator_expert_acc", expert_acc, global_step)
            writer.add_scalar("charts/discriminator_agent_acc", agent_acc, global_step)
            writer.add_scalar("charts/gail_reward", rewards.mean().item(), global_step)
            if args.absorbing:
                writer.add_scalar("charts/absorbing_reward", absorbing_reward, global_step)
            writer.add_scalar("charts/SPS", sps, global_step)
            mean_return = np.mean(recent_returns) if recent_returns else float("nan")
            if solved_at is None and threshold is not None and len(recent_returns) == 20 and mean_return >= threshold:
                solved_at = global_step
                print(f"20-episode mean return {mean_return:.1f} >= {threshold} (env threshold) at step {global_step}")
            if iteration % print_every == 0 or iteration == args.num_iterations:
                left = elapsed / global_step * (args.total_timesteps - global_step)
                print(
                    f"step {global_step:>9d}/{args.total_timesteps} | return(20) {mean_return:8.2f} | "
                    f"gail reward {rewards.mean().item():6.3f} | D acc expert {expert_acc:.2f} agent {agent_acc:.2f} | "
                    f"SPS {sps:>6d} | elapsed {format_seconds(elapsed)} | left {format_seconds(left)}",
                    flush=True,
                )
    except KeyboardInterrupt:
        interrupted = True
        print(f"interrupted at step {global_step}", file=sys.stderr)

    # shutdown
    if envs is not None:
        envs.close()
    if args.save_model and agent is not None:
        save_model(agent, discriminator, args, model_path)
        print(f"model saved to {model_path}")
    if not interrupted:
        # the final policy, greedy and sampling; the states visited are kept for comparison with the expert's
        agent.eval()
        states = {}
        for mode in ("greedy", "sampling"):
            ev_returns, _, ev_obs, _ = run_episodes(
                agent.actor, args.env_id, args.eval_episodes, args.seed + 10_000, device, greedy=mode == "greedy"
            )
            writer.add_scalar(f"eval/final_return_{mode}", np.mean(ev_returns), global_step)
            states[f"learner_{mode}_obs"], states[f"learner_{mode}_returns"] = ev_obs, np.asarray(ev_returns)
            if mode == "sampling":
                for idx, episodic_return in enumerate(ev_returns):
                    writer.add_scalar("eval/episodic_return", episodic_return, idx)
        for mode, (ev_returns, ev_obs) in expert_evaluation.items():
            states[f"expert_{mode}_obs"], states[f"expert_{mode}_returns"] = ev_obs, np.asarray(ev_returns)
        np.savez(f"runs/{run_name}/eval_states.npz", **states)

        def describe(prefix):
            if f"{prefix}_greedy_returns" not in states:
                return f"{expert_return:.1f} (demonstrations)"
            return " / ".join(f"{np.mean(states[f'{prefix}_{m}_returns']):.1f} {m}" for m in ("greedy", "sampling"))

        print(
            f"final ({args.eval_episodes} episodes each): GAIL {describe('learner')} | expert {describe('expert')} | "
            f"wall time {format_seconds(time.time() - script_start)} (expert included)"
        )
    writer.close()
    if args.track:
        import wandb

        wandb.finish()
    if interrupted:
        sys.exit(130)
