"""a2c_atari_lstm.py data-parallel under torchrun, on CPU with gloo: the ranks stay bit-identical, the
averaged gradient is the gradient of all ranks' games, a failing rank ends the run, a signal stops every
rank at the same iteration with one checkpoint.

The ranks are observed without any hook in the script: a `sitecustomize.py` on the ranks' PYTHONPATH
(Python imports it at start-up) dumps the locals of the script's `main` at exit or breaks one rank's games."""

import os
import signal
import socket
import subprocess
import textwrap
import time
from pathlib import Path

import torch
from conftest import ROOT, load_script, signal_when, start_script

SCRIPT = str(ROOT / "a2c_atari_lstm.py")
TINY = ["--env-id", "BreakoutNoFrameskip-v4", "--num-envs", "2", "--num-steps", "5", "--eval-episodes", "0"]

# at exit, every rank saves the script's final parameters, step and seed (locals of its `main`, whose frame
# a profile hook catches when `main` is entered; a finished frame keeps its locals) to rank<RANK>.pt
DUMP_AT_EXIT = """
import atexit, os, sys

frames = []

def catch_main(frame, event, arg):
    if event == "call" and frame.f_code.co_name == "main" and frame.f_globals.get("__name__") == "__main__":
        frames.append(frame)
        sys.setprofile(None)

def dump():
    import torch
    local = frames[0].f_locals if frames else {}
    if "agent" in local:
        state = {"model": local["agent"].state_dict(), "global_step": local["global_step"], "seed": local["seed"]}
        torch.save(state, os.path.join(os.path.dirname(__file__), f"rank{os.environ['RANK']}.pt"))

if "RANK" in os.environ:
    sys.setprofile(catch_main)
    atexit.register(dump)
"""

# rank 1's games raise on their 4th step, as a broken env or a crashed emulator would
RANK_1_BREAKS = """
import os

if os.environ.get("RANK") == "1":
    from ale_py.vector_env import AtariVectorEnv

    step, calls = AtariVectorEnv.step, []

    def broken_step(self, actions):
        calls.append(1)
        if len(calls) > 3:
            raise RuntimeError("rank 1's games broke on purpose")
        return step(self, actions)

    AtariVectorEnv.step = broken_step
"""


def torchrun(tmp_path: Path, sitecustomize: str, args: list[str], popen=False, timeout=120):
    """`torchrun --standalone --nproc-per-node 2 a2c_atari_lstm.py ARGS` in `tmp_path/work`, the ranks
    importing `sitecustomize` (from `tmp_path/site`)."""
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(textwrap.dedent(sitecustomize))
    (tmp_path / "work").mkdir()
    command = ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", SCRIPT, *args]
    proc = start_script(command, tmp_path / "work", {"PYTHONPATH": str(tmp_path / "site"), "OMP_NUM_THREADS": "1"})
    if popen:
        return proc
    stdout, stderr = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def test_two_ranks_end_with_identical_parameters_and_only_rank_0_writes(tmp_path: Path):
    # 2 ranks x 2 games x 5 steps = a global batch of 20: 4 updates in 80 steps
    result = torchrun(tmp_path, DUMP_AT_EXIT, [*TINY, "--total-timesteps", "80", "--save-model"])
    assert result.returncode == 0, result.stderr[-3000:]
    rank0, rank1 = (torch.load(tmp_path / "site" / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert rank0["global_step"] == rank1["global_step"] == 80
    assert (rank0["seed"], rank1["seed"]) == (1, 3)  # seed + rank * num_envs: games 1, 2 and 3, 4
    assert rank0["model"].keys() == rank1["model"].keys()
    assert all(torch.equal(rank0["model"][k], rank1["model"][k]) for k in rank0["model"])
    # they trained: the parameters moved from a fresh network's (same seed, the same initial weights)
    torch.manual_seed(1)
    fresh = load_script("a2c_atari_lstm").Agent(4).state_dict()
    assert not torch.equal(fresh["actor.weight"], rank0["model"]["actor.weight"])
    # one run directory, rank 0's: its checkpoint and model hold the same parameters; one console
    (run_dir,) = list((tmp_path / "work" / "runs").iterdir())
    assert sorted(p.name for p in run_dir.iterdir() if not p.name.startswith("events.")) == [
        "a2c_atari_lstm.pt",
        "checkpoint.pt",
    ]
    assert len(list(run_dir.glob("events.*"))) == 1
    ckpt = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    assert ckpt["global_step"] == 80 and ckpt["args"]["batch_size"] == 20
    assert all(torch.equal(ckpt["model"][k], rank0["model"][k]) for k in ckpt["model"])
    assert result.stdout.count("run directory:") == 1 and result.stdout.count("model saved") == 1
    assert "torchrun: 2 ranks (gloo)" in result.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fixed_rollout_gradient(a2c, games: slice) -> dict:
    """The script's agent (seed 0) and loss on fixed frames, actions, returns and episode ends of 8 games
    over 3 steps, for the games in `games`; returns {name: gradient} after `average_gradients`."""
    data = torch.Generator().manual_seed(123)
    frames = torch.randint(0, 256, (3, 8, 4, 84, 84), generator=data, dtype=torch.uint8)[:, games]
    actions = torch.randint(0, 4, (3, 8), generator=data)[:, games]
    returns = torch.randn((3, 8), generator=data)[:, games]
    dones = (torch.rand((3, 8), generator=data) < 0.3).float()[:, games]
    torch.manual_seed(0)
    agent = a2c.Agent(4)
    state = agent.initial_state(frames.shape[1], torch.device("cpu"))
    all_logits, all_values = [], []
    for t in range(3):
        logits, value, state = agent.step(frames[t], state)
        all_logits.append(logits)
        all_values.append(value)
        state = a2c.reset_lstm_state(state, dones[t])
    loss = a2c.a2c_loss(torch.stack(all_logits), torch.stack(all_values), actions, returns, 0.02, 0.5)[0]
    loss.backward()
    a2c.average_gradients(agent)
    return {name: p.grad for name, p in agent.named_parameters()}


def gradient_rank(rank: int, port: int, out_dir: str) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2")
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    a2c = load_script("a2c_atari_lstm")
    assert a2c.init_distributed(torch.device("cpu"))[:2] == (rank, 2)
    grads = fixed_rollout_gradient(a2c, slice(4 * rank, 4 * rank + 4))
    torch.save(grads, os.path.join(out_dir, f"grads{rank}.pt"))
    torch.distributed.destroy_process_group()


def test_averaged_gradient_of_2_ranks_x_4_games_is_the_gradient_of_8_games(tmp_path: Path):
    import torch.multiprocessing as mp

    mp.spawn(gradient_rank, args=(free_port(), str(tmp_path)), nprocs=2, join=True)
    single = fixed_rollout_gradient(load_script("a2c_atari_lstm"), slice(0, 8))  # no process group: a no-op
    ranks = [torch.load(tmp_path / f"grads{r}.pt", weights_only=True) for r in (0, 1)]
    for name, grad in single.items():
        assert torch.equal(ranks[0][name], ranks[1][name]), name  # every rank steps with the same gradient
        torch.testing.assert_close(ranks[0][name], grad, msg=name)
    # not trivially equal: each rank's own gradient (its 4 games) differs from the 8 games'
    own = fixed_rollout_gradient(load_script("a2c_atari_lstm"), slice(0, 4))
    assert not torch.allclose(own["actor.weight"], single["actor.weight"])


def test_a_failing_rank_ends_the_whole_run_non_zero_within_seconds(tmp_path: Path):
    start = time.monotonic()
    result = torchrun(tmp_path, RANK_1_BREAKS, [*TINY, "--total-timesteps", "1000000"])
    elapsed = time.monotonic() - start
    assert result.returncode != 0
    assert "rank 1's games broke on purpose" in result.stderr
    assert elapsed < 60, f"{elapsed:.0f} s"  # start-up included; without the failure: an hour of training


def test_sigint_to_torchrun_stops_every_rank_at_the_same_iteration_with_one_checkpoint(tmp_path: Path):
    proc = torchrun(tmp_path, DUMP_AT_EXIT, [*TINY, "--total-timesteps", "1000000", "--save-model"], popen=True)
    # Ctrl-C once training has started: torchrun passes it on to each rank once
    out, err = signal_when(proc, "BreakoutNoFrameskip-v4: 2 games", lambda: proc.send_signal(signal.SIGINT), settle=1.0)
    assert proc.returncode != 0  # torchrun re-raises the signal (its own traceback, the only one)
    assert err.count("SIGINT: stopping after this iteration") == 2 and "aborting" not in err
    assert err.count("Traceback") == 1 and "SignalException" in err
    assert err.count("checkpoint saved") == 1
    rank0, rank1 = (torch.load(tmp_path / "site" / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert 0 < rank0["global_step"] == rank1["global_step"]
    assert all(torch.equal(rank0["model"][k], rank1["model"][k]) for k in rank0["model"])
    (run_dir,) = list((tmp_path / "work" / "runs").iterdir())
    ckpt = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    assert ckpt["global_step"] == rank0["global_step"]
    assert (run_dir / "a2c_atari_lstm.pt").exists() and "eval:" not in out
