"""What a new user meets in the first hour: the wrong kind of env, parallel runs, saved files that know their
env, calls from Python, honest console lines, and the README's own custom-env example."""

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
from conftest import ROOT, assert_user_error, load_script, raises_user_error, run_script, signal_when, start_script

SCRIPTS = ["ppo_discrete", "a2c_atari_lstm", "a3c_pong_hogwild", "bc_cartpole", "gail_cartpole", "random_baseline"]


def test_the_quick_start_installs_the_cpu_build_of_torch_first():
    """On a machine without a GPU, the first install command a reader types is the CPU build of torch."""
    readme = (ROOT / "README.md").read_text()
    quick_start = readme[readme.index("## Quick start") :]
    first_commands = re.search(r"```bash\n(.*?)```", quick_start, re.S).group(1).splitlines()
    assert first_commands[0] == "pip install torch --index-url https://download.pytorch.org/whl/cpu"
    assert first_commands[1] == "pip install -e ."


def test_an_atari_id_in_ppo_points_to_the_atari_scripts(tmp_path: Path):
    """ALE ids resolve in the PPO family (ale-py registered), and frames are refused with a pointer."""
    result = run_script("ppo_discrete.py", ["--env-id", "ALE/Pong-v5"], cwd=tmp_path, timeout=120)
    assert_user_error(result, tmp_path, "a2c_atari_lstm.py or a3c_pong_hogwild.py")
    assert "(210, 160, 3)" in result.stderr


@pytest.mark.parametrize("script", ["bc_cartpole", "gail_cartpole"])
def test_an_atari_id_in_the_imitation_scripts_points_to_the_atari_scripts(script):
    module = load_script(script)
    raises_user_error(module, lambda: module.check_env("ALE/Pong-v5"), "a2c_atari_lstm.py", "a3c_pong_hogwild.py")


@pytest.mark.parametrize("script", SCRIPTS)
def test_runs_started_in_the_same_second_get_their_own_directories(script, tmp_path: Path, monkeypatch):
    module = load_script(script)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(module.time, "time", lambda: 1_800_000_000.5)
    args = module.Args(env_id="CartPole-v1")
    names = [module.make_run_dir(args) for _ in range(3)]
    base = f"CartPole-v1__{script}__1__1800000000"
    assert names == [base, base + "-2", base + "-3"]
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == sorted(names)


def test_a_parallel_sweep_runs_every_run(tmp_path: Path):
    """`for lr in ...; do python ppo_discrete.py --learning-rate $lr & done`: every run finishes in its own
    directory, whether or not they started in the same second."""
    procs = [
        start_script(["ppo_discrete.py", "--total-timesteps", "512", "--learning-rate", lr], tmp_path)
        for lr in ("1e-3", "3e-4")
    ]
    results = [proc.communicate(timeout=120) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], [err for _, err in results]
    assert len(list((tmp_path / "runs").iterdir())) == 2


def test_play_with_an_env_id_the_file_was_not_trained_on_is_one_line(tmp_path: Path):
    """Without --env-id, --play takes the file's env (the smoke table plays every saved model so); a given one
    that contradicts the file stays an error."""
    ppo = load_script("ppo_discrete")
    saved = {"script": "ppo_discrete", "model": ppo.Agent(6, 3).state_dict(), "args": {"env_id": "Acrobot-v1"}}
    torch.save(saved, tmp_path / "acrobot.pt")
    result = run_script("ppo_discrete.py", ["--play", "acrobot.pt", "--env-id", "CartPole-v1"], tmp_path)
    assert_user_error(result, tmp_path, "trained on Acrobot-v1, not on --env-id CartPole-v1")


def test_loading_from_python_raises_instead_of_exiting(tmp_path: Path):
    """A notebook cell that loads a missing or foreign file gets an exception, and the interpreter lives on."""
    ppo = load_script("ppo_discrete")
    raises_user_error(ppo, lambda: ppo.load_model(str(tmp_path / "missing.pt"), "CartPole-v1"), "no such file")
    torch.save({"script": "a2c_atari_lstm", "model": {}, "args": {"env_id": "CartPole-v1"}}, tmp_path / "a2c.pt")
    raises_user_error(ppo, lambda: ppo.load_model(str(tmp_path / "a2c.pt"), "CartPole-v1"), "a2c_atari_lstm")
    assert issubclass(ppo.UserError, Exception) and not issubclass(ppo.UserError, SystemExit)


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_script_copied_alone_says_what_it_needs(script):
    doc = " ".join(load_script(script).__doc__.split())
    needs = doc[doc.index("Needs: ") :]
    assert "torch" in needs and "gymnasium" in needs and "tyro" in needs and "tensorboard" in needs


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_says_what_the_script_does(script, tmp_path: Path):
    result = run_script(f"{script}.py", ["--help"], tmp_path, timeout=60)
    assert result.returncode == 0
    first_line = load_script(script).__doc__.splitlines()[0]
    assert " ".join(first_line.split()[:4]) in " ".join(result.stdout.split())


def test_a3c_keeps_exit_130_when_signals_keep_coming_during_the_shutdown(tmp_path: Path):
    """Ctrl-C, then more Ctrl-Cs and SIGTERMs while the run stops and saves: exit 130 (not a death by the
    signal), and every file it saved loads."""
    args = ["--env-id", "CartPole-v1", "--num-processes", "2", "--total-timesteps", "2000000", "--save-model"]
    proc = start_script(["a3c_pong_hogwild.py", *args], tmp_path)

    def keep_signalling():
        os.killpg(proc.pid, signal.SIGINT)
        for i in range(40):  # over about two seconds, whatever the shutdown is doing
            time.sleep(0.05)
            try:
                os.killpg(proc.pid, signal.SIGTERM if i % 2 else signal.SIGINT)
            except ProcessLookupError:
                return

    _, stderr = signal_when(proc, "step ", keep_signalling)
    assert proc.returncode == 130, stderr[-2000:]
    assert "Traceback" not in stderr
    (run_dir,) = (tmp_path / "runs").iterdir()
    saved = list(run_dir.glob("*.pt"))
    assert saved and all(torch.load(path, weights_only=True)["script"] == "a3c_pong_hogwild" for path in saved)


def custom_env_example() -> str:
    """The `my_envs.py` that the documentation shows for training PPO on your own env."""
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    for page in pages:
        for block in re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.S):
            if block.startswith("# my_envs.py"):
                return block
    raise AssertionError("no `# my_envs.py` example in the README or the docs")


def test_the_custom_env_example_trains_and_keeps_the_checks_green(tmp_path: Path):
    """Saved as the docs say, in the repository root, `my_envs.py` passes `ruff format --check` and `ruff
    check`, so the test command keeps working; and PPO trains on it."""
    example = tmp_path / "my_envs.py"
    example.write_text(custom_env_example())
    for check in (["ruff", "format", "--check", str(example)], ["ruff", "check", str(example)]):
        ruff = subprocess.run(check, cwd=ROOT, capture_output=True, text=True)
        assert ruff.returncode == 0, ruff.stdout + ruff.stderr
    env = {"PYTHONPATH": str(tmp_path)}
    result = run_script(
        "ppo_discrete.py", ["--env-id", "my_envs:Corridor-v0", "--total-timesteps", "512"], tmp_path, env=env
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_the_two_expert_returns_say_what_they_are(tmp_path: Path):
    """bc prints the demonstrations' return and the expert's evaluation return: each line says which it is."""
    args = "--expert-timesteps 1024 --bc-iterations 2 --eval-interval 1 --eval-episodes 1 --final-eval-episodes 2"
    result = run_script("bc_cartpole.py", args.split(), tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert re.search(r"^\d+ greedy expert episodes, return [\d.]+ \(\d+ pairs\): demos.npz$", result.stdout, re.M)
    assert "(the expert's sampling return over 2 evaluation episodes: " in result.stdout
