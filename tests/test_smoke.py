"""The shared smoke harness: every script runs for a few hundred steps as a subprocess.

Each row is (script, tiny CLI arguments, TensorBoard tags that must be logged, whether a
`--save-model` file must exist). A row checks exit status 0, the tags in the run directory's
event file and, when asked, that the saved model file loads with `weights_only=True` and holds
the state dict and the Args. Adding a script means adding a row. Every script listed is also
checked for one-line errors on flags tyro cannot parse.
"""

from pathlib import Path

import pytest
import torch

from conftest import assert_user_error, read_scalars, run_script

# logged by every actor-critic script
ACTOR_CRITIC_TAGS = {
    "charts/episodic_return",
    "charts/episodic_length",
    "charts/SPS",
    "charts/learning_rate",
    "losses/policy_loss",
    "losses/value_loss",
    "losses/entropy",
    "eval/episodic_return",
}
PPO_TAGS = ACTOR_CRITIC_TAGS | {"losses/approx_kl", "losses/clipfrac", "losses/explained_variance"}

BC_TAGS = {
    "losses/bc_loss",
    "eval/episodic_return",
    "eval/final_return_greedy",
    "eval/final_return_sampling",
    "charts/expert_return",
}
GAIL_TAGS = PPO_TAGS | {
    "losses/discriminator_loss",
    "charts/discriminator_expert_acc",
    "charts/discriminator_agent_acc",
    "charts/gail_reward",
    "charts/expert_return",
    "eval/final_return_greedy",
    "eval/final_return_sampling",
}

A3C_TAGS = ACTOR_CRITIC_TAGS
# what BC and GAIL log about the PPO expert they train when no --expert-data is given
INLINE_EXPERT_TAGS = {"charts/expert_return_greedy", "charts/expert_return_sampling", "charts/expert_demo_return"}

ROWS = [
    pytest.param(
        "ppo_discrete.py",
        ["--env-id", "CartPole-v1", "--total-timesteps", "2048", "--save-model", "--eval-episodes", "2"],
        PPO_TAGS,
        True,
        id="ppo-cartpole",
    ),
    pytest.param(
        "ppo_discrete.py",
        ["--env-id", "Acrobot-v1", "--num-envs", "1", "--num-steps", "512", "--total-timesteps", "1024"],
        PPO_TAGS - {"eval/episodic_return"},
        False,
        id="ppo-acrobot-single-env",
    ),
    pytest.param(
        "bc_cartpole.py",
        ["--expert-timesteps", "1024", "--bc-iterations", "20", "--eval-interval", "10", "--eval-episodes", "1",
         "--final-eval-episodes", "1", "--save-model"],
        BC_TAGS | INLINE_EXPERT_TAGS,
        True,
        id="bc-cartpole-inline-expert",
    ),
    pytest.param(
        "bc_cartpole.py",
        ["--env-id", "Acrobot-v1", "--expert-timesteps", "0", "--num-expert-samples", "0", "--bc-iterations", "10",
         "--eval-interval", "10", "--eval-episodes", "1", "--final-eval-episodes", "1", "--eval-greedy"],
        BC_TAGS,
        False,
        id="bc-acrobot-random-demonstrations",
    ),
    pytest.param(
        "gail_cartpole.py",
        ["--expert-timesteps", "1024", "--total-timesteps", "1024", "--eval-episodes", "1", "--save-model"],
        GAIL_TAGS | INLINE_EXPERT_TAGS,
        True,
        id="gail-cartpole-inline-expert",
    ),
    pytest.param(
        "gail_cartpole.py",
        ["--env-id", "Acrobot-v1", "--num-envs", "1", "--num-steps", "512", "--expert-timesteps", "512",
         "--num-expert-samples", "0", "--total-timesteps", "1024", "--eval-episodes", "1", "--reward-type", "logit",
         "--absorbing"],
        GAIL_TAGS | {"charts/absorbing_reward"},
        False,
        id="gail-acrobot-logit-reward-absorbing",
    ),
    pytest.param(
        "random_baseline.py",
        ["--env-id", "CartPole-v1", "--num-episodes", "3", "--num-envs", "2"],
        {"charts/episodic_return", "charts/episodic_length", "charts/moving_average_return", "charts/SPS"},
        False,
        id="random-cartpole",
    ),
    pytest.param(
        "random_baseline.py",
        ["--env-id", "ALE/Breakout-v5", "--num-episodes", "1"],
        {"charts/episodic_return", "charts/episodic_length", "charts/moving_average_return", "charts/SPS"},
        False,
        id="random-atari-breakout",
    ),
    pytest.param(
        "a2c_atari_lstm.py",
        ["--total-timesteps", "400", "--save-model", "--eval-episodes", "1"],
        {"charts/SPS", "charts/learning_rate", "losses/policy_loss", "losses/value_loss", "losses/entropy",
         "losses/explained_variance", "eval/episodic_return"},  # no Pong game ends within 400 training steps
        True,
        id="a2c-pong",
    ),
    pytest.param(
        "a2c_atari_lstm.py",
        ["--env-id", "BreakoutNoFrameskip-v4", "--env-backend", "gymnasium", "--num-envs", "1",
         "--num-steps", "20", "--total-timesteps", "600"],
        {"charts/episodic_return", "charts/episodic_length", "charts/SPS", "losses/policy_loss"},
        False,
        id="a2c-breakout-gymnasium-backend",
    ),
    pytest.param(
        "a3c_pong_hogwild.py",
        ["--env-id", "CartPole-v1", "--num-processes", "2", "--total-timesteps", "3000", "--test-episodes", "2",
         "--eval-interval", "1000", "--save-model", "--eval-episodes", "2"],
        A3C_TAGS,
        True,
        id="a3c-cartpole-2proc",
    ),
    pytest.param(
        "a3c_pong_hogwild.py",
        ["--num-processes", "2", "--total-timesteps", "400", "--save-model", "--eval-episodes", "1"],
        A3C_TAGS - {"charts/episodic_return", "charts/episodic_length", "losses/policy_loss", "losses/value_loss",
                    "losses/entropy"},
        True,
        id="a3c-pong-2proc",
    ),
]


@pytest.mark.parametrize("script,args,tags,saves_model", ROWS)
def test_smoke(script, args, tags, saves_model, tmp_path: Path):
    result = run_script(script, args, cwd=tmp_path)
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
    run_dirs = [p for p in (tmp_path / "runs").iterdir() if p.is_dir()]
    assert len(run_dirs) == 1, run_dirs
    logged = set(read_scalars(run_dirs[0]))
    assert tags <= logged, f"missing tags: {sorted(tags - logged)}"
    model_files = list(run_dirs[0].glob("*.pt"))
    if saves_model:
        assert model_files, "no model file written"
        checkpoint = torch.load(model_files[0], map_location="cpu", weights_only=True)
        assert checkpoint["model"] and all(isinstance(v, torch.Tensor) for v in checkpoint["model"].values())
        assert checkpoint["args"]["exp_name"] == Path(script).stem


@pytest.mark.parametrize("script", sorted({row.values[0] for row in ROWS}))
def test_unparsable_flag_is_one_error_line(script, tmp_path: Path):
    # a value tyro cannot parse and a misspelt flag: one `error:` line each, exit 2, nothing written
    assert_user_error(run_script(script, ["--seed", "abc"], cwd=tmp_path, timeout=60), tmp_path, "--seed")
    result = run_script(script, ["--sed", "1"], cwd=tmp_path, timeout=60)
    assert_user_error(result, tmp_path, "--sed")
    assert "did you mean --seed?" in result.stderr
