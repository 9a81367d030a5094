"""What each term of A2C's loss does to the network, measured on saved Pong agents.

For an agent (a checkpoint or a `--save-model` file of a2c_atari_lstm.py, or a freshly initialised
one), the script's own rollout plays `--rollouts` rollouts with the agent frozen and, for each,
takes the gradient of the three terms of the loss separately (the script's `a2c_loss`, weighted as
the run weighted them): policy, `vf_coef` x value, `ent_coef` x entropy. It reports

- the policy's entropy (uniform over Pong's 6 actions: ln 6 = 1.792) and the advantage scale
  (the standard deviation and mean absolute value of R - V over the rollouts);
- per term, the mean gradient norm of one rollout (what one update sees) and the norm of the
  gradient averaged over all rollouts (the part that points the same way update after update:
  what many small steps add up to); their ratio is the term's consistency (1: the same direction
  every time, about 1/sqrt(rollouts): noise).

    python -m benchmarks.a2c_pong_terms --init 1.0 --init 0.01 --checkpoint runs/<run>/checkpoint.pt ...

It appends one JSON line per agent to `benchmarks/records/a2c_pong_terms/terms.jsonl` and rewrites
`benchmarks/results/a2c_pong_terms.md` from all the lines there.
"""

import argparse
import importlib.util
import json
import time
from collections import deque
from pathlib import Path

import numpy as np
import torch

from benchmarks.machine import describe, machine_info

ROOT = Path(__file__).resolve().parent.parent
RECORDS = ROOT / "benchmarks" / "records" / "a2c_pong_terms" / "terms.jsonl"
RESULT = ROOT / "benchmarks" / "results" / "a2c_pong_terms.md"
ENV_ID = "PongNoFrameskip-v4"
TERMS = ("policy", "value", "entropy")


def load_a2c():
    spec = importlib.util.spec_from_file_location("a2c_atari_lstm", ROOT / "a2c_atari_lstm.py")
    a2c = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(a2c)
    return a2c


def term_gradients(a2c, params, logits, values, actions, returns, run_args: dict):
    """({term: the flat gradient of that term of the script's `a2c_loss`, weighted as the run weighted
    it}, the policy's mean entropy). The three add up to the gradient of the whole loss."""
    _, pg_loss, v_loss, entropy = a2c.a2c_loss(logits, values, actions, returns, 0.0, 0.0)
    weighted = {"policy": pg_loss, "value": run_args["vf_coef"] * v_loss, "entropy": -run_args["ent_coef"] * entropy}
    grads = {}
    for i, term in enumerate(TERMS):
        parts = torch.autograd.grad(weighted[term], params, retain_graph=i < len(TERMS) - 1, allow_unused=True)
        grads[term] = torch.cat([(torch.zeros_like(p) if g is None else g).flatten() for p, g in zip(params, parts)])
    return grads, entropy.item()


def measure(a2c, agent, run_args: dict, rollouts: int, seed: int) -> dict:
    """Play `rollouts` rollouts with the frozen agent; the per-term gradient figures."""
    cpu = torch.device("cpu")
    num_envs, num_steps = int(run_args["num_envs"]), int(run_args["num_steps"])
    games = a2c.AtariGames(ENV_ID, num_envs, "ale", seed, int(run_args["frame_size"]))
    storage = a2c.make_storage(num_steps, num_envs, cpu)
    next_obs, state = torch.as_tensor(games.reset()), agent.initial_state(num_envs, cpu)
    params = list(agent.parameters())
    sums = {term: torch.zeros(sum(p.numel() for p in params)) for term in TERMS}
    norms = {term: [] for term in TERMS}
    entropies, advantages, scores = [], [], deque(maxlen=1000)
    for _ in range(rollouts):
        next_obs, state, _, logits, values = a2c.collect_rollout(
            agent, games, next_obs, state, storage, 0, a2c.NoWriter(), scores, cpu
        )
        with torch.no_grad():
            _, last_value, _ = agent.step(next_obs, state)
            rewards, dones, final_values = storage["rewards"], storage["dones"], storage["final_values"]
            _, returns = a2c.compute_gae(
                rewards, values, dones, final_values, last_value, run_args["gamma"], run_args["gae_lambda"]
            )
        grads, entropy = term_gradients(a2c, params, logits, values, storage["actions"], returns, run_args)
        for term in TERMS:
            norms[term].append(float(torch.linalg.vector_norm(grads[term])))
            sums[term] += grads[term]
        entropies.append(entropy)
        advantages.append((returns - values.detach()).flatten())
    games.close()
    adv = torch.cat(advantages)
    result = {
        "entropy": float(np.mean(entropies)),
        "advantage_std": float(adv.std()),
        "advantage_mean_abs": float(adv.abs().mean()),
        "games_finished": len(scores),
    }
    for term in TERMS:
        mean_grad = sums[term] / rollouts
        result[f"{term}_norm"] = float(np.mean(norms[term]))
        # what the norm of the mean would be if the rollouts' gradients pointed in unrelated directions
        result[f"{term}_noise_level"] = float(np.sqrt(np.mean(np.square(norms[term])) / rollouts))
        result[f"{term}_mean_grad_norm"] = float(torch.linalg.vector_norm(mean_grad))
    return result


def agents(a2c, args):
    """(label, agent, the run's settings) for every `--init` and `--checkpoint`."""
    defaults = {"num_envs": 8, "num_steps": 5, "gamma": 0.99, "gae_lambda": 1.0, "vf_coef": 0.5, "ent_coef": 0.02}
    defaults["frame_size"] = 84
    for std in args.init:
        torch.manual_seed(args.seed)
        yield f"fresh agent, actor init std {std}", a2c.Agent(6, actor_std=std).eval(), dict(defaults), None
    for path, label in zip(args.checkpoint, args.label or [None] * len(args.checkpoint)):
        saved = a2c.load_saved(path, ENV_ID)
        run_args = {key: saved["args"].get(key, default) for key, default in defaults.items()}
        step = saved.get("global_step")
        agent = a2c.load_agent(saved, path, "cpu", run_args["frame_size"])
        yield label or Path(path).parent.name, agent, run_args, step


def fmt(x: float) -> str:
    return f"{x:.4f}" if abs(x) >= 1e-3 or x == 0 else f"{x:.1e}"


def write_result(lines: list[dict]) -> None:
    rows = [
        "| agent | step | entropy | advantage std / mean abs | policy: norm / norm of the mean / noise level | "
        "value (x vf_coef): norm / norm of the mean | entropy (x ent_coef): norm / norm of the mean | "
        "policy / entropy, norms of the means |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(lines, key=lambda r: (r["step"] is not None, r["label"], r["step"] or 0)):
        step = "—" if r["step"] is None else f"{r['step']:,}"
        ratio = r["policy_mean_grad_norm"] / max(r["entropy_mean_grad_norm"], 1e-12)
        rows.append(
            f"| {r['label']} | {step} | {r['entropy']:.3f} | {r['advantage_std']:.3f} / {r['advantage_mean_abs']:.3f} | "
            + f"{fmt(r['policy_norm'])} / {fmt(r['policy_mean_grad_norm'])} / {fmt(r['policy_noise_level'])} | "
            + " | ".join(f"{fmt(r[f'{t}_norm'])} / {fmt(r[f'{t}_mean_grad_norm'])}" for t in TERMS[1:])
            + f" | {ratio:.2f} |"
        )
    runs = sorted({r["rollouts"] for r in lines})
    text = [
        "## A2C on Pong: the gradient of each loss term",
        "",
        "`python -m benchmarks.a2c_pong_terms --init 1.0 --init 0.01 --checkpoint <checkpoint.pt> ...`",
        "",
        *rows,
        "",
        f"Each agent frozen, {', '.join(map(str, runs))} rollouts of its run's size (8 or 16 games x 5 steps) on "
        "unseen seeds. Norms are of the whole network's gradient (the terms weighted as in the run: "
        'policy, vf_coef x value, ent_coef x entropy); "norm" is the mean over the rollouts of one rollout\'s, "norm of the mean" '
        "that of the gradient averaged over all rollouts, the part that adds up from update to update; "
        '"noise level": what that norm would be if the rollouts\' gradients pointed in unrelated directions '
        "(the root mean square of one rollout's norm over the square root of the rollouts). "
        "Uniform policy entropy: ln 6 = 1.792.",
        "",
        f"Machine: {lines[-1]['machine']}",
        "",
    ]
    RESULT.write_text("\n".join(text))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", action="append", default=[], help="a checkpoint or saved model (repeat)")
    parser.add_argument("--label", action="append", help="a label per --checkpoint, in order")
    parser.add_argument("--init", action="append", type=float, default=[], help="a fresh agent's actor init std")
    parser.add_argument("--rollouts", type=int, default=250)
    parser.add_argument("--seed", type=int, default=50_000, help="the games' seed (unseen in training)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    a2c = load_a2c()
    RECORDS.parent.mkdir(parents=True, exist_ok=True)
    for label, agent, run_args, step in agents(a2c, args):
        start = time.time()
        figures = measure(a2c, agent, run_args, args.rollouts, args.seed)
        line = {"label": label, "step": step, "rollouts": args.rollouts, **run_args, **figures}
        line["machine"] = describe(machine_info())
        with RECORDS.open("a") as f:
            f.write(json.dumps(line) + "\n")
        print(f"{label} ({time.time() - start:.0f} s): " + json.dumps(figures))
    write_result([json.loads(x) for x in RECORDS.read_text().splitlines() if x.strip()])


if __name__ == "__main__":
    main()
