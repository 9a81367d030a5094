"""GAIL (generative adversarial imitation learning, Ho & Ermon 2016) with a PPO generator, discrete actions.

Follows the article "基于“动手学强化学习”的知识点(二):第 15 章 模仿学习(gym版本 >= 0.26)" (notes on chapter 15 of
Hands-on Reinforcement Learning, 动手学强化学习, https://hrl.boyuai.com/; the scraped article has no URL). The PPO code
is ppo_discrete.py's: `diff ppo_discrete.py gail_cartpole.py` shows what GAIL adds. Departures from the article, and
why: docs/scripts/gail_cartpole.md. Needs: torch, gymnasium, tyro, tensorboard, numpy; moviepy, pygame for video.

Usage:
    python gail_cartpole.py                                   # train a PPO expert inline, then GAIL
    python gail_cartpole.py --expert-data runs/<run>/demos.npz  # a file: ppo_discrete.py --save-model --save-demos-episodes 10
    python gail_cartpole.py --reward-type logit --absorbing   # zero-centred reward log D_E - log D_A
    python gail_cartpole.py --expert-timesteps 0 --num-expert-episodes 5  # control: random "demonstrations"
    python gail_cartpole.py --env-id Acrobot-v1 --expert-timesteps 300000 --num-expert-samples 0
    python gail_cartpole.py --play runs/<run name>/gail_cartpole.pt  # watch a saved generator play
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
from typing import Literal, NamedTuple, NoReturn, Optional

import gymnasium as gym
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
import tyro
from torch.utils.tensorboard import SummaryWriter

SCRIPT = "gail_cartpole"  # recorded in every saved file; --play and --resume check it


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
    """the number of parallel environments (`--num-envs 1` steps a single env, as the articles do)"""
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
    expert_greedy_demos: bool = False
    """if toggled, the inline expert records its demonstrations with the argmax action (the article samples them)"""

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

    play: Optional[str] = None
    """a `--save-model` file or checkpoint of this script: play `--eval-episodes` episodes with it, print the scores, write nothing else"""
    greedy: bool = True
    """with `--play`: take the most likely action (`--no-greedy` samples from the policy)"""


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
    """Same-step autoreset: the observation returned for a finished sub-environment is the first of
    its next episode, and the final observation of the ended one comes in `infos["final_obs"]`, so
    no stored transition links one episode to the next."""
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

        def mlp(out_dim: int, std: float) -> nn.Sequential:
            hidden = [layer_init(nn.Linear(obs_dim, 64)), nn.Tanh(), layer_init(nn.Linear(64, 64)), nn.Tanh()]
            return nn.Sequential(*hidden, layer_init(nn.Linear(64, out_dim), std=std))

        self.critic = mlp(1, std=1.0)
        self.actor = mlp(num_actions, std=0.01)

    def get_value(self, x: torch.Tensor) -> torch.Tensor:
        return self.critic(x)

    def get_action_and_value(self, x: torch.Tensor, action: Optional[torch.Tensor] = None):
        """Sample an action (or score the given one): action, log-probability, entropy, value.

        The categorical distribution is written out with `log_softmax` rather than built as a
        `torch.distributions.Categorical`: the same numbers, at a fraction of the overhead on the
        small batches of an RL update."""
        log_probs = torch.log_softmax(self.actor(x), dim=-1)
        if action is None:
            action = torch.multinomial(log_probs.exp(), 1).squeeze(-1)
        logprob = log_probs.gather(-1, action.unsqueeze(-1)).squeeze(-1)
        entropy = -(log_probs.exp() * log_probs).sum(-1)
        return action, logprob, entropy, self.critic(x)

    def act(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Rollout fast path: `get_action_and_value` without the entropy, value squeezed."""
        log_probs = torch.log_softmax(self.actor(x), dim=-1)
        action = torch.multinomial(log_probs.exp(), 1)
        return action.squeeze(-1), log_probs.gather(-1, action).squeeze(-1), self.critic(x).squeeze(-1)


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


def make_storage(num_steps: int, num_envs: int, obs_dim: int, device: torch.device) -> dict:
    def zeros(*shape):
        return torch.zeros((num_steps, num_envs) + shape, device=device)

    keys = ["actions", "logprobs", "rewards", "dones", "terminations", "values", "final_values"]
    return {"obs": zeros(obs_dim), **{key: zeros() for key in keys}}


@torch.inference_mode()
def collect_rollout(agent: Agent, envs, next_obs, storage: dict, global_step: int, writer, recent_returns: deque):
    """Step the vector env `num_steps` times, filling `storage` in place.

    `dones[t]` marks an episode that ended by step t (terminated or truncated). A truncated one
    is bootstrapped from the critic's value of its final observation (`final_values[t]`); a
    terminated one has value 0. Returns the observation after the rollout and the step count.
    """
    num_steps, num_envs = storage["rewards"].shape
    final_values = np.zeros((num_steps, num_envs), dtype=np.float32)
    for step in range(num_steps):
        global_step += num_envs
        storage["obs"][step] = next_obs
        action, logprob, value = agent.act(next_obs)
        storage["actions"][step] = action
        storage["logprobs"][step] = logprob
        storage["values"][step] = value

        obs, reward, terminations, truncations, infos = envs.step(action.cpu().numpy())
        storage["rewards"][step] = torch.from_numpy(reward.astype(np.float32))
        storage["dones"][step] = torch.from_numpy(terminations | truncations)
        storage["terminations"][step] = torch.from_numpy(terminations)
        truncated_only = np.flatnonzero(truncations & ~terminations)
        if len(truncated_only):
            final_obs = torch.as_tensor(np.stack(infos["final_obs"][truncated_only]), dtype=torch.float32)
            final_values[step, truncated_only] = agent.get_value(final_obs.to(next_obs.device)).flatten().cpu()
        next_obs = torch.as_tensor(obs, dtype=torch.float32, device=next_obs.device)
        log_episode_stats(writer, infos, global_step, recent_returns)
    storage["final_values"].copy_(torch.from_numpy(final_values))
    return next_obs, global_step


def log_episode_stats(writer, infos: dict, global_step: int, recent_returns: deque) -> None:
    """Log the episodes that ended in this step (vector RecordEpisodeStatistics infos)."""
    if "_episode" not in infos:
        return
    ended = infos["_episode"]
    for ret, length in zip(infos["episode"]["r"][ended], infos["episode"]["l"][ended]):
        writer.add_scalar("charts/episodic_return", float(ret), global_step)
        writer.add_scalar("charts/episodic_length", int(length), global_step)
        recent_returns.append(float(ret))


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


@torch.no_grad()
def rollout_advantages(agent: Agent, next_obs: torch.Tensor, storage: dict, args) -> tuple[torch.Tensor, torch.Tensor]:
    """GAE over the stored rollout, bootstrapped from the value of the observation after it."""
    last_value = agent.get_value(next_obs).flatten()
    rewards, values, dones, final_values = (storage[key] for key in ("rewards", "values", "dones", "final_values"))
    return compute_gae(rewards, values, dones, final_values, last_value, args.gamma, args.gae_lambda)


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


def flatten_rollout(storage: dict, advantages: torch.Tensor, returns: torch.Tensor) -> dict:
    """The rollout as one batch of num_steps x num_envs samples, for `ppo_update`."""
    return {
        "obs": storage["obs"].flatten(0, 1),
        "logprobs": storage["logprobs"].flatten(),
        "actions": storage["actions"].flatten().long(),
        "advantages": advantages.flatten(),
        "returns": returns.flatten(),
        "values": storage["values"].flatten(),
    }


def ppo_update(agent: Agent, optimizer: optim.Optimizer, batch: dict, args) -> dict:
    """`update_epochs` epochs of minibatch PPO over one flattened rollout; returns the statistics
    logged under `losses/` (those of the last minibatch, the clip fraction over all)."""
    batch_size = len(batch["obs"])
    minibatch_size = batch_size // args.num_minibatches
    clipfracs = []
    for epoch in range(args.update_epochs):
        b_inds = torch.randperm(batch_size, device=batch["obs"].device)
        for start in range(0, batch_size, minibatch_size):
            mb = {key: value[b_inds[start : start + minibatch_size]] for key, value in batch.items()}
            _, newlogprob, entropy, newvalue = agent.get_action_and_value(mb["obs"], mb["actions"])
            logratio = newlogprob - mb["logprobs"]
            with torch.no_grad():
                ratio = logratio.exp()
                old_approx_kl = (-logratio).mean()
                approx_kl = ((ratio - 1) - logratio).mean()
                clipfracs.append(((ratio - 1.0).abs() > args.clip_coef).float().mean())
            mb_advantages = mb["advantages"]
            if args.norm_adv:
                mb_advantages = (mb_advantages - mb_advantages.mean()) / (mb_advantages.std() + 1e-8)
            pg_loss, v_loss = ppo_losses(
                newlogprob=newlogprob,
                oldlogprob=mb["logprobs"],
                advantages=mb_advantages,
                newvalue=newvalue.view(-1),
                oldvalue=mb["values"],
                returns=mb["returns"],
                clip_coef=args.clip_coef,
                clip_vloss=args.clip_vloss,
            )
            entropy_loss = entropy.mean()
            loss = pg_loss - args.ent_coef * entropy_loss + v_loss * args.vf_coef
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(agent.parameters(), args.max_grad_norm)
            optimizer.step()
        if args.target_kl is not None and approx_kl > args.target_kl:
            break
    var_y = torch.var(batch["returns"])
    explained_var = float("nan") if var_y == 0 else float(1 - torch.var(batch["returns"] - batch["values"]) / var_y)
    return {
        "policy_loss": pg_loss.item(),
        "value_loss": v_loss.item(),
        "entropy": entropy_loss.item(),
        "old_approx_kl": old_approx_kl.item(),
        "approx_kl": approx_kl.item(),
        "clipfrac": torch.stack(clipfracs).mean().item(),
        "explained_variance": explained_var,
    }


def ppo_losses(newlogprob, oldlogprob, advantages, newvalue, oldvalue, returns, clip_coef: float, clip_vloss: bool):
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


def main() -> None:
    script_start = time.time()
    args = tyro.cli(Args, description=__doc__.splitlines()[0])
    stop = StopFlag()
    settings_from_file(args, args.play, sys.argv[1:])
    validate_args(args)
    obs_dim, num_actions = check_env(args.env_id)
    if args.play:
        play_saved(args, stop, obs_dim, num_actions)
        sys.exit(130 if stop.requested else 0)
    demos = None if args.expert_data is None else load_demonstrations(args, obs_dim, num_actions)
    args.batch_size = int(args.num_envs * args.num_steps)
    args.minibatch_size = int(args.batch_size // args.num_minibatches)
    args.num_iterations = args.total_timesteps // args.batch_size
    run_name = make_run_dir(args)
    writer = make_writer(args, run_name)

    # seeding
    seed_everything(args.seed, args.torch_deterministic)
    torch.set_num_threads(args.torch_threads)
    device = torch.device("cuda" if torch.cuda.is_available() and args.cuda else "cpu")
    threshold = reward_threshold(args.env_id)
    expert_evaluation = {}

    # expert demonstrations: a file, or sampled from a PPO expert trained here
    if demos is None:
        (expert_obs, expert_actions), expert_evaluation, expert_lengths = expert_demonstrations(
            args, run_name, writer, args.eval_episodes, device, stop
        )
        expert_return = np.mean(expert_evaluation["sampling"][0])
    else:
        expert_obs, expert_actions, expert_return, expert_lengths = demos
    writer.add_scalar("charts/expert_return", expert_return, 0)
    expert_absorbing = len(expert_actions) * terminated_fraction(expert_lengths, max_episode_steps(args.env_id))
    evaluated = f"the expert's sampling return over {args.eval_episodes} evaluation episodes"
    source = evaluated if demos is None else "the file's return"
    print(f"imitating {len(expert_actions)} expert state-action pairs ({source}: {expert_return:.1f})")
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
    global_step = 0
    recent_returns = deque(maxlen=20)
    solved_at = None
    print_every = max(1, args.num_iterations // 100)
    start_time = time.time()

    for iteration in range(1, args.num_iterations + 1):
        if stop.requested:
            break
        if args.anneal_lr:
            frac = 1.0 - (iteration - 1.0) / args.num_iterations
            optimizer.param_groups[0]["lr"] = frac * args.learning_rate

        # rollout (storage["rewards"] receives the true reward, replaced below by the GAIL reward)
        next_obs, global_step = collect_rollout(agent, envs, next_obs, storage, global_step, writer, recent_returns)
        b_obs = storage["obs"].reshape(-1, obs_dim)
        b_actions = storage["actions"].reshape(-1).long()

        # discriminator: agent pairs of this rollout against all expert pairs, then the reward
        agent_absorbing = storage["terminations"].sum().item()
        for _ in range(args.discriminator_epochs):
            agent_logits = discriminator(b_obs, b_actions)
            expert_logits = discriminator(expert_obs, expert_actions)
            absorbing_logit = discriminator.absorbing_logit() if args.absorbing else None
            d_loss = discriminator_loss(agent_logits, expert_logits, absorbing_logit, agent_absorbing, expert_absorbing)
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
        batch = flatten_rollout(storage, advantages, returns)
        stats = ppo_update(agent, optimizer, batch, args)

        # logging
        elapsed = time.time() - start_time
        writer.add_scalar("charts/learning_rate", optimizer.param_groups[0]["lr"], global_step)
        for key, value in stats.items():
            writer.add_scalar(f"losses/{key}", value, global_step)
        writer.add_scalar("charts/SPS", int(global_step / elapsed), global_step)
        writer.add_scalar("losses/discriminator_loss", d_loss.item(), global_step)
        writer.add_scalar("charts/discriminator_expert_acc", expert_acc, global_step)
        writer.add_scalar("charts/discriminator_agent_acc", agent_acc, global_step)
        writer.add_scalar("charts/gail_reward", rewards.mean().item(), global_step)
        if args.absorbing:
            writer.add_scalar("charts/absorbing_reward", absorbing_reward, global_step)
        mean_return = np.mean(recent_returns) if recent_returns else float("nan")
        if solved_at is None and threshold is not None and len(recent_returns) == 20 and mean_return >= threshold:
            solved_at = global_step
            print(f"20-episode mean return {mean_return:.1f} >= {threshold} (env threshold) at step {global_step}")
        if iteration % print_every == 0 or iteration == args.num_iterations:
            gail = f"gail reward {rewards.mean().item():6.3f} | D acc expert {expert_acc:.2f} agent {agent_acc:.2f} | "
            print_progress(global_step, args.total_timesteps, recent_returns, elapsed, global_step, prefix=gail)

    # shutdown
    stop.saving = True
    envs.close()
    model_path = f"runs/{run_name}/{args.exp_name}.pt"
    if args.save_model:
        save_agent(agent, discriminator, args, model_path)
        print(f"model saved to {model_path}")
    if not stop.requested:
        states = final_evaluation(
            agent.eval().actor, args, args.eval_episodes, expert_evaluation, writer, global_step, run_name, device
        )
        for idx, episodic_return in enumerate(states["learner_sampling_returns"]):
            writer.add_scalar("eval/episodic_return", episodic_return, idx)
        print(
            f"final ({args.eval_episodes} episodes each): GAIL {describe(states, 'learner', expert_return)} | "
            f"expert {describe(states, 'expert', expert_return)} | "
            f"wall time {format_seconds(time.time() - script_start)} (expert included)"
        )
    finish_run(writer, args, stop, run_name)


# ----------------------------------------------------------------------------------------------
# The expert: the same PPO as ppo_discrete.py, trained inline; its demonstrations, or a file's.
# The same code as in ppo_discrete.py and the other imitation script (tests/test_consistency.py).
# ----------------------------------------------------------------------------------------------


class TagPrefix:
    """A view of a SummaryWriter that logs every tag under `prefix/` (the expert's `expert/charts/...`)."""

    def __init__(self, writer, prefix: str):
        self.writer, self.prefix = writer, prefix

    def add_scalar(self, tag: str, value, step: int) -> None:
        self.writer.add_scalar(f"{self.prefix}/{tag}", value, step)


def train_expert(args, run_name: str, writer, device, stop) -> Agent:
    """The inline expert: ppo_discrete.py's training loop on the environment reward for `expert_timesteps`
    steps, stopped once it reaches `expert_target_return`. Its curves are logged as `expert/charts/...` and
    `expert/losses/...` so that they do not mix with the imitator's."""
    writer = TagPrefix(writer, "expert")

    # env setup
    envs = make_vector_env(args, run_name)
    obs_dim, num_actions = int(np.prod(envs.single_observation_space.shape)), int(envs.single_action_space.n)
    agent = Agent(obs_dim, num_actions).to(device)
    optimizer = optim.Adam(agent.parameters(), lr=args.expert_learning_rate, eps=1e-5)

    # storage
    storage = make_storage(args.num_steps, args.num_envs, obs_dim, device)
    envs.action_space.seed(args.seed)
    obs, _ = envs.reset(seed=args.seed)
    next_obs = torch.as_tensor(obs, dtype=torch.float32, device=device)
    global_step = 0
    recent_returns = deque(maxlen=20)
    num_iterations = args.expert_timesteps // args.batch_size
    target, last_check = args.expert_target_return, -5  # target None: the whole budget (a stopped expert is noisier)
    start_time = time.time()

    for iteration in range(1, num_iterations + 1):
        if stop.requested:
            break
        if args.anneal_lr:
            frac = 1.0 - (iteration - 1.0) / num_iterations
            optimizer.param_groups[0]["lr"] = frac * args.expert_learning_rate

        # rollout
        next_obs, global_step = collect_rollout(agent, envs, next_obs, storage, global_step, writer, recent_returns)

        # advantages
        advantages, returns = rollout_advantages(agent, next_obs, storage, args)

        # update
        batch = flatten_rollout(storage, advantages, returns)
        stats = ppo_update(agent, optimizer, batch, args)

        # logging
        elapsed = time.time() - start_time
        writer.add_scalar("charts/learning_rate", optimizer.param_groups[0]["lr"], global_step)
        for key, value in stats.items():
            writer.add_scalar(f"losses/{key}", value, global_step)
        writer.add_scalar("charts/SPS", int(global_step / elapsed), global_step)
        reached = False
        if target is not None and len(recent_returns) == 20 and np.mean(recent_returns) >= target:
            # a training mean can be a lucky streak: confirm with 20 fresh sampling episodes, at most every 5 iterations
            if iteration >= last_check + 5:
                last_check = iteration
                check = run_episodes(agent.actor, args.env_id, 20, args.seed + 30_000, device).returns
                reached = np.mean(check) >= target
        if iteration % max(1, num_iterations // 10) == 0 or iteration == num_iterations or reached:
            print_progress(global_step, args.expert_timesteps, recent_returns, elapsed, global_step, prefix="expert ")
        if reached:
            print(
                f"expert: 20-episode mean return {np.mean(recent_returns):.1f} in training and "
                f"{np.mean(check):.1f} in a check >= {target} at step {global_step}; training stops"
            )
            break
    envs.close()
    return agent.eval()


def expert_demonstrations(args, run_name: str, writer, eval_episodes: int, device, stop):
    """Demonstrations from the inline expert, saved as `runs/<run name>/demos.npz`, plus its evaluation.

    Returns (obs, actions) of the sampled pairs, {mode: (returns, obs)} of the expert evaluated
    greedily and by sampling, and the lengths of the demonstration episodes.
    """
    expert = train_expert(args, run_name, writer, device, stop) if args.expert_timesteps > 0 else None
    logits_fn = None if expert is None else expert.actor
    greedy_demos = args.expert_greedy_demos and expert is not None  # the random policy always samples
    demos_path = f"runs/{run_name}/demos.npz"
    demos = run_episodes(logits_fn, args.env_id, args.num_expert_episodes, args.seed + 20_000, device, greedy_demos)
    save_demonstrations(demos_path, demos.obs, demos.actions, demos.returns, demos.lengths)
    kind, mean_return = "greedy" if greedy_demos else "sampling", np.mean(demos.returns)
    print(
        f"{len(demos.returns)} {kind} expert episodes, return {mean_return:.1f} ({len(demos.actions)} pairs): demos.npz"
    )
    if expert is not None and args.save_model:
        expert_file = {"script": SCRIPT, "expert": True, "model": expert.state_dict(), "args": vars(args)}
        atomic_save(expert_file, f"runs/{run_name}/expert.pt")
    evaluation = {}
    for mode in ("greedy", "sampling"):
        episodes = run_episodes(logits_fn, args.env_id, eval_episodes, args.seed + 10_000, device, mode == "greedy")
        evaluation[mode] = (episodes.returns, episodes.obs)
        writer.add_scalar(f"charts/expert_return_{mode}", np.mean(episodes.returns), 0)
    writer.add_scalar("charts/expert_demo_return", mean_return, 0)
    pairs = select_demonstrations(demos.obs, demos.actions, None, 1, args.num_expert_samples, args.seed)
    return pairs, evaluation, np.asarray(demos.lengths)


def final_evaluation(
    policy, args, num_episodes: int, expert_evaluation: dict, writer, step: int, run_name: str, device
):
    """The final policy, greedy and sampling, logged as `eval/final_return_<mode>`; the states it and
    the expert visited are saved to `eval_states.npz` for comparison. Returns those arrays."""
    states = {}
    for mode in ("greedy", "sampling"):
        episodes = run_episodes(policy, args.env_id, num_episodes, args.seed + 10_000, device, greedy=mode == "greedy")
        writer.add_scalar(f"eval/final_return_{mode}", np.mean(episodes.returns), step)
        states[f"learner_{mode}_obs"], states[f"learner_{mode}_returns"] = episodes.obs, np.asarray(episodes.returns)
    for mode, (ev_returns, ev_obs) in expert_evaluation.items():
        states[f"expert_{mode}_obs"], states[f"expert_{mode}_returns"] = ev_obs, np.asarray(ev_returns)
    np.savez(f"runs/{run_name}/eval_states.npz", **states)
    return states


def describe(states: dict, prefix: str, expert_return: float) -> str:
    """`"500.0 greedy / 498.3 sampling"` for the learner or the expert (a file: its demonstrations' return)."""
    if f"{prefix}_greedy_returns" not in states:
        return f"{expert_return:.1f} (demonstrations)"
    return " / ".join(f"{np.mean(states[f'{prefix}_{m}_returns']):.1f} {m}" for m in ("greedy", "sampling"))


def reward_threshold(env_id: str) -> Optional[float]:
    """The env's registered reward threshold (475 for CartPole-v1), None when it has none."""
    try:
        return gym.spec(env_id).reward_threshold
    except Exception:  # an id gym.spec cannot resolve without making the env
        return None


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


def load_demonstrations(args, obs_dim: int, num_actions: int):
    """Read and check the `--expert-data` file; every problem is a one-line user error. The file is an `.npz` with
    `obs` (N x obs_dim, float32), `actions` (N, int64) and optionally `episode_returns` (float32, one per episode)
    and `episode_lengths` (int64, summing to N). Returns the pairs of its first `--num-expert-episodes` episodes
    (all when lengths are not given), `--num-expert-samples` of them drawn without replacement (0 or -1: all),
    the mean return of its episodes (nan if not given) and the lengths of the episodes used (None)."""
    path, num_episodes = args.expert_data, args.num_expert_episodes
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
    obs, actions = select_demonstrations(obs, actions, lengths, num_episodes, args.num_expert_samples, args.seed)
    mean_return = float("nan") if returns is None else float(np.mean(returns.astype(np.float32)))
    lengths = None if lengths is None else lengths[:num_episodes].astype(np.int64)
    return obs.astype(np.float32), actions.astype(np.int64), mean_return, lengths


def max_episode_steps(env_id: str) -> Optional[int]:
    """The env's registered time limit (500 for CartPole-v1), None when it has none."""
    try:
        return gym.spec(env_id).max_episode_steps
    except Exception:  # an id gym.spec cannot resolve without making the env
        return None


def terminated_fraction(episode_lengths, max_episode_steps: Optional[int]) -> float:
    """Absorbing-state samples per expert pair: episodes shorter than the time limit terminated.
    Without episode lengths the demonstrations are taken to never terminate."""
    if episode_lengths is None or len(episode_lengths) == 0:
        return 0.0
    lengths = np.asarray(episode_lengths)
    terminated = lengths < max_episode_steps if max_episode_steps else np.ones(len(lengths), dtype=bool)
    return float(terminated.sum() / lengths.sum())


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


def given_flags(argv: list[str]) -> set[str]:
    """The Args fields given on the command line `argv`, as `--flag value`, `--flag=value` or `--no-flag`
    (with '-' or '_'): tyro cannot tell a default from a value given equal to it."""
    given = {a[2:].split("=")[0].replace("-", "_") for a in argv if a.startswith("--")}
    return given | {name[3:] for name in given if name.startswith("no_")}


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


def validate_args(args: Args) -> None:
    check_args(
        args,
        positive=["total_timesteps", "learning_rate", "num_envs", "num_steps", "num_minibatches", "update_epochs"]
        + ["eval_episodes", "expert_learning_rate", "discriminator_lr", "discriminator_hidden", "discriminator_epochs"]
        + ["clip_coef", "max_grad_norm", "torch_threads"],
        at_most={"num_envs": 1024, "num_steps": 1_000_000},
    )
    batch_size = args.num_envs * args.num_steps
    if batch_size % args.num_minibatches != 0:
        fail(f"--num-minibatches {args.num_minibatches} does not divide the batch num_envs x num_steps = {batch_size}")
    if args.total_timesteps < batch_size and not args.play:
        fail(f"--total-timesteps {args.total_timesteps} is smaller than one batch ({batch_size})")
    if not 0.0 < args.gamma <= 1.0 or not 0.0 <= args.gae_lambda <= 1.0:
        fail("--gamma must be in (0, 1] and --gae-lambda in [0, 1]")
    validate_expert_args(args, batch_size)
    if args.absorbing and args.gamma >= 1.0:
        fail("--absorbing needs --gamma < 1 (the absorbing state's value is r / (1 - gamma))")


def check_env(env_id: str) -> tuple[int, int]:
    """Build the env once to check that it exists and that its spaces are supported; returns (obs_dim, num_actions).
    Atari ids resolve (ale-py registered), to be sent to the scripts made for frames."""
    try:
        import ale_py

        gym.register_envs(ale_py)
        ale_py.ALEInterface.setLoggerMode(ale_py.LoggerMode.Error)  # no banner before an error line
    except ImportError:  # without ale-py an Atari id is simply unknown
        pass
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
    if np.prod(observation_space.shape) > 10_000:  # image frames: the MLP would learn nothing, slowly
        fail(
            f"--env-id {env_id!r} observes {observation_space.shape} ({np.prod(observation_space.shape):,} values), too "
            "many for this MLP; for Atari frames use a2c_atari_lstm.py or a3c_pong_hogwild.py"
        )
    return int(np.prod(observation_space.shape)), int(action_space.n)


class Episodes(NamedTuple):
    """What `run_episodes` played: each episode's return and length, each step's observation and action."""

    returns: list
    lengths: list
    obs: np.ndarray
    actions: np.ndarray


@torch.no_grad()
def run_episodes(
    policy, env_id: str, num_episodes: int, seed: int, device, greedy: bool = False, video_folder=None, stop=None
):
    """Play whole episodes with `policy(obs) -> logits` (None: uniform random). With `video_folder`, every
    episode is recorded there as MP4; a `stop` flag that is raised ends the run after an episode."""
    if video_folder:  # only then a render mode: an env of your own need not take the argument
        env = gym.make(env_id, render_mode="rgb_array")
        env = gym.wrappers.RecordVideo(env, video_folder, episode_trigger=lambda episode: True)
    else:
        env = gym.make(env_id)
    if len(env.observation_space.shape) != 1:
        env = gym.wrappers.FlattenObservation(env)
    returns, lengths, all_obs, all_actions = [], [], [], []
    for episode in range(num_episodes):
        if stop is not None and stop.requested:
            break
        obs, _ = env.reset(seed=seed + episode)
        done, ep_return, ep_length = False, 0.0, 0
        while not done:
            x = torch.as_tensor(obs, dtype=torch.float32, device=device).unsqueeze(0)
            logits = torch.zeros(1, env.action_space.n, device=device) if policy is None else policy(x)
            action = logits.argmax(dim=1) if greedy else torch.multinomial(logits.softmax(-1), 1)
            all_obs.append(np.asarray(obs, dtype=np.float32))
            all_actions.append(int(action.item()))
            obs, reward, terminated, truncated, _ = env.step(int(action.item()))
            done = terminated or truncated
            ep_return += float(reward)
            ep_length += 1
        returns.append(ep_return)
        lengths.append(ep_length)
    env.close()
    obs_array = np.stack(all_obs) if all_obs else np.zeros((0,) + env.observation_space.shape, np.float32)
    return Episodes(returns, lengths, obs_array, np.asarray(all_actions, dtype=np.int64))


def save_demonstrations(path: str, obs, actions, episode_returns, episode_lengths) -> None:
    """Demonstrations as an `.npz` (obs, actions, episode_returns, episode_lengths), written atomically."""
    obs, actions = np.asarray(obs, np.float32), np.asarray(actions, np.int64)
    returns, lengths = np.asarray(episode_returns, np.float32), np.asarray(episode_lengths, np.int64)
    np.savez(path + ".tmp.npz", obs=obs, actions=actions, episode_returns=returns, episode_lengths=lengths)
    os.replace(path + ".tmp.npz", path)


def save_agent(agent: nn.Module, discriminator: nn.Module, args: Args, path: str) -> None:
    model = {"script": SCRIPT, "model": agent.state_dict(), "discriminator": discriminator.state_dict()}
    atomic_save({**model, "args": vars(args)}, path)


def play_saved(args: Args, stop: StopFlag, obs_dim: int, num_actions: int) -> None:
    """`--play`: the saved generator (or a saved `expert.pt`) plays `--eval-episodes` whole
    episodes; nothing is written but videos."""
    agent = Agent(obs_dim, num_actions).eval()
    try:
        agent.load_state_dict(load_saved(args.play, args.env_id)["model"])
    except RuntimeError as e:  # another network shape
        fail(f"{args.play!r} does not fit this env's network: {e}")
    video_folder = f"videos/{make_run_name(args)}__play" if args.capture_video else None
    episodes = run_episodes(
        agent.actor, args.env_id, args.eval_episodes, args.seed, "cpu", args.greedy, video_folder, stop
    )
    print_scores(episodes.returns, episodes.lengths)
    if video_folder:
        print(f"videos saved to {video_folder}/")


if __name__ == "__main__":
    try:
        main()
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
