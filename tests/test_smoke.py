"""The shared smoke harness: every script runs for a few hundred steps as a subprocess.

Each row is (script, tiny CLI arguments, TensorBoard tags that must be logged, whether a
`--save-model` file must exist). A row checks exit status 0, the tags in the run directory's
event file and, when asked, that the saved model file loads with `weights_only=True` and holds
the state dict and the Args, and that `--play` plays it. Adding a script means adding a row.
Below the table: the bad input, run-directory and signal promises, checked for every script.
"""

import os
import signal
from pathlib import Path

import pytest
import torch
from conftest import (
    assert_user_error,
    load_script,
    raises_user_error,
    read_scalars,
    run_script,
    signal_when,
    start_script,
)

SCRIPTS = ["ppo_discrete.py", "a2c_atari_lstm.py", "a3c_pong_hogwild.py", "bc_cartpole.py", "gail_cartpole.py"]
SCRIPTS += ["random_baseline.py"]
# a short run of each script
QUICK_ARGS = {
    "ppo_discrete.py": ["--total-timesteps", "512"],
    "a2c_atari_lstm.py": ["--total-timesteps", "400"],
    "a3c_pong_hogwild.py": ["--env-id", "CartPole-v1", "--num-processes", "1", "--total-timesteps", "500"],
    "bc_cartpole.py": ["--expert-timesteps", "0", "--bc-iterations", "2", "--eval-interval", "1"],
    "gail_cartpole.py": ["--expert-timesteps", "0", "--total-timesteps", "512"],
    "random_baseline.py": ["--num-episodes", "1"],
}

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
        # saved and played without --env-id: the file's env, Acrobot
        "--env-id Acrobot-v1 --num-envs 1 --num-steps 512 --total-timesteps 1024 --save-model --eval-episodes 1".split(),
        PPO_TAGS,
        True,
        id="ppo-acrobot-single-env",
    ),
    pytest.param(
        "bc_cartpole.py",
        "--expert-timesteps 1024 --bc-iterations 20 --eval-interval 10 --eval-episodes 1 --final-eval-episodes 1 --save-model".split(),
        BC_TAGS | INLINE_EXPERT_TAGS,
        True,
        id="bc-cartpole-inline-expert",
    ),
    pytest.param(
        "bc_cartpole.py",
        "--env-id Acrobot-v1 --expert-timesteps 0 --num-expert-samples 0 --bc-iterations 10 --eval-interval 10 --eval-episodes 1 --final-eval-episodes 1 --eval-greedy".split(),
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
        "--env-id Acrobot-v1 --num-envs 1 --num-steps 512 --expert-timesteps 512 --num-expert-samples 0 --total-timesteps 1024 --eval-episodes 1 --reward-type logit --absorbing".split(),
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
        {
            "charts/SPS",
            "charts/learning_rate",
            "losses/policy_loss",
            "losses/value_loss",
            "losses/entropy",
            "losses/explained_variance",
            "losses/grad_norm",
            "eval/episodic_return",
        },  # no Pong game ends within 400 training steps
        True,
        id="a2c-pong",
    ),
    pytest.param(
        "a2c_atari_lstm.py",
        "--env-id BreakoutNoFrameskip-v4 --env-backend gymnasium --num-envs 1 --num-steps 20 --total-timesteps 600".split(),
        {"charts/episodic_return", "charts/episodic_length", "charts/SPS", "losses/policy_loss"},
        False,
        id="a2c-breakout-gymnasium-backend",
    ),
    pytest.param(
        "a3c_pong_hogwild.py",
        "--env-id CartPole-v1 --num-processes 2 --total-timesteps 1500 --test-episodes 2 --eval-interval 500 --save-model --eval-episodes 2".split(),
        A3C_TAGS,
        True,
        id="a3c-cartpole-2proc",
    ),
    pytest.param(
        "a3c_pong_hogwild.py",
        # no evaluation game after training (the cartpole row has one); --play below plays a whole Pong game
        ["--num-processes", "2", "--total-timesteps", "400", "--save-model", "--eval-episodes", "0"],
        A3C_TAGS
        - {
            "eval/episodic_return",
            "charts/episodic_return",
            "charts/episodic_length",
            "losses/policy_loss",
            "losses/value_loss",
            "losses/entropy",
        },
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
    # ALE's banner at most once (A3C's children keep quiet), and no false error line
    assert (result.stdout + result.stderr).count("A.L.E: Arcade Learning Environment") <= 1
    assert "error" not in result.stderr.lower(), result.stderr[-2000:]
    # where the results are: the run directory first, what it holds last
    assert f"run directory: runs/{run_dirs[0].name}" in result.stdout.splitlines()[0], result.stdout[:500]
    assert result.stdout.splitlines()[-1].startswith(f"done: runs/{run_dirs[0].name} holds"), result.stdout[-500:]
    logged = set(read_scalars(run_dirs[0]))
    assert tags <= logged, f"missing tags: {sorted(tags - logged)}"
    model_path = run_dirs[0] / f"{Path(script).stem}.pt"
    if saves_model:
        checkpoint = torch.load(model_path, map_location="cpu", weights_only=True)
        assert checkpoint["script"] == Path(script).stem
        assert checkpoint["model"] and all(isinstance(v, torch.Tensor) for v in checkpoint["model"].values())
        assert checkpoint["args"]["exp_name"] == Path(script).stem
        # the saved model plays: one whole episode, its score printed, nothing written
        play_dir = tmp_path / "play"
        play_dir.mkdir()
        played = run_script(script, ["--play", str(model_path), "--eval-episodes", "1"], cwd=play_dir)  # its env
        assert played.returncode == 0, played.stderr[-4000:]
        assert "episode 1: score" in played.stdout and "mean score over 1 episodes" in played.stdout
        assert list(play_dir.iterdir()) == []


@pytest.mark.parametrize("script", SCRIPTS)
def test_unparsable_flag_is_tyros_error(script, tmp_path: Path):
    """A misspelt flag (and, once, a value tyro cannot parse): tyro's own message, exit 2, nothing written."""
    for args in [["--sed", "1"]] + ([["--seed", "abc"]] if script == "ppo_discrete.py" else []):
        result = run_script(script, args, cwd=tmp_path, timeout=60)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert "--seed" in result.stderr or "--sed" in result.stderr
        assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("script", SCRIPTS)
def test_bad_input_on_the_command_line_is_one_line_and_exit_2(script, tmp_path: Path):
    """The command line turns the script's `UserError` into one `error:` line and exit status 2."""
    assert_user_error(run_script(script, ["--seed", "-1"], cwd=tmp_path, timeout=60), tmp_path, "--seed")


LEARNING_RATE_FLAGS = [
    ("ppo_discrete.py", "learning_rate"),
    ("a2c_atari_lstm.py", "learning_rate"),
    ("a3c_pong_hogwild.py", "learning_rate"),
    ("bc_cartpole.py", "bc_learning_rate"),
    ("bc_cartpole.py", "expert_learning_rate"),
    ("gail_cartpole.py", "learning_rate"),
    ("gail_cartpole.py", "discriminator_lr"),
]
BAD_FIELDS = [
    {"seed": 2**64},
    {"exp_name": "a/b"},
    *({name: v} for _, name in LEARNING_RATE_FLAGS for v in ("nan", "-inf")),
]


@pytest.mark.parametrize("script", SCRIPTS)
def test_bad_input_from_python_raises_user_error(script):
    """The checks the command line runs, called from Python: the script's own exception, the flag named."""
    module = load_script(Path(script).stem)
    for fields in BAD_FIELDS:
        name, value = next(iter(fields.items()))
        if name not in module.Args.__dataclass_fields__:
            continue
        value = float(value) if isinstance(value, str) and name != "exp_name" else value
        args = module.Args(**{name: value})
        raises_user_error(module, lambda: module.validate_args(args), "--" + name.replace("_", "-"))


@pytest.mark.parametrize("script", ["a2c_atari_lstm", "a3c_pong_hogwild"])
def test_compile_that_fails_on_this_platform_is_one_line(script, monkeypatch, capsys):
    module = load_script(script)

    def broken_compile(*args, **kwargs):
        raise RuntimeError("no C++ compiler found\nsecond line of the story")

    monkeypatch.setattr(module.torch, "compile", broken_compile)
    message = raises_user_error(module, lambda: module.validate_args(module.Args(compile=True)), "--compile")
    assert message == "--compile: torch.compile does not work here: RuntimeError: no C++ compiler found"


@pytest.mark.parametrize("script", SCRIPTS)
def test_unwritable_run_directory(script, tmp_path: Path):
    """`runs` is a file: one error line, exit 2, nothing else written."""
    (tmp_path / "runs").write_text("not a directory")
    result = run_script(script, QUICK_ARGS[script], cwd=tmp_path, timeout=120)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "runs/" in lines[0], result.stderr
    assert (tmp_path / "runs").read_text() == "not a directory"


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write to a read-only directory")
@pytest.mark.parametrize("script", ["ppo_discrete.py"])
def test_read_only_run_directory(script, tmp_path: Path):
    (tmp_path / "runs").mkdir(mode=0o500)
    result = run_script(script, QUICK_ARGS[script], cwd=tmp_path, timeout=120)
    assert result.returncode == 2 and result.stderr.startswith("error: ") and "runs/" in result.stderr, result.stderr
    assert list((tmp_path / "runs").iterdir()) == []


# long enough runs to be stopped mid-way, each with --save-model, and the signal each gets: SIGINT (Ctrl-C)
# and SIGTERM (what `kill` and schedulers send) go through the same shared StopFlag
LONG_RUNS = {
    "ppo_discrete.py": (["--total-timesteps", "10000000", "--save-model"], signal.SIGTERM),
    "bc_cartpole.py": (["--expert-timesteps", "10000000", "--save-model"], signal.SIGINT),
    "gail_cartpole.py": (
        ["--expert-timesteps", "2048", "--total-timesteps", "10000000", "--save-model"],
        signal.SIGTERM,
    ),
    "random_baseline.py": (["--num-episodes", "10000000", "--save-model"], signal.SIGINT),
}


@pytest.mark.parametrize("script", sorted(LONG_RUNS))
def test_signal_saves_and_exits_130(script, tmp_path: Path):
    """A signal stops the run after the iteration; the model is saved, the closing line printed, exit 130."""
    args, sig = LONG_RUNS[script]
    proc = start_script([script, *args], tmp_path)
    stdout, stderr = signal_when(proc, "run directory:", lambda: proc.send_signal(sig), settle=1.0)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    (run_dir,) = list((tmp_path / "runs").iterdir())
    saved = torch.load(run_dir / f"{Path(script).stem}.pt", weights_only=True)
    assert saved["script"] == Path(script).stem
    assert f"stopped: runs/{run_dir.name} holds" in stdout and f"{Path(script).stem}.pt" in stdout
