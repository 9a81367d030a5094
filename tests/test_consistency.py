"""The code that several scripts share is compared by AST and must be identical.

This keeps the single files diffable as they multiply: a shared block changed in one script only
fails here, naming the script that drifted (CONTRIBUTING.md lists the blocks and their owners).
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ["ppo_discrete.py", "a2c_atari_lstm.py", "a3c_pong_hogwild.py", "bc_cartpole.py", "gail_cartpole.py"]
SCRIPTS += ["random_baseline.py"]
LEARNING = [s for s in SCRIPTS if s != "random_baseline.py"]
PPO_FAMILY = ["ppo_discrete.py", "bc_cartpole.py", "gail_cartpole.py"]
IMITATION = ["bc_cartpole.py", "gail_cartpole.py"]
ACTOR_CRITIC = ["ppo_discrete.py", "a2c_atari_lstm.py", "a3c_pong_hogwild.py", "bc_cartpole.py", "gail_cartpole.py"]

# (definitions, the scripts that must hold identical copies of each); the first script is the reference
SHARED = [
    (
        ["fail", "check_args", "make_run_name", "make_writer", "seed_everything", "StopFlag", "atomic_save"]
        + ["load_saved", "format_seconds"],
        SCRIPTS,
    ),
    (["print_scores"], LEARNING),
    (["compute_gae"], ACTOR_CRITIC),
    (["sample_actions", "given_flags", "check_compile"], ["a2c_atari_lstm.py", "a3c_pong_hogwild.py"]),
    (
        ["make_env", "make_vector_env", "layer_init", "Agent", "ppo_losses", "ppo_update", "make_storage"]
        + ["collect_rollout", "rollout_advantages", "flatten_rollout", "log_episode_stats", "check_env"]
        + ["run_episodes", "save_demonstrations"],
        PPO_FAMILY,
    ),
    (
        ["TagPrefix", "train_expert", "expert_demonstrations", "final_evaluation", "describe", "reward_threshold"]
        + ["validate_expert_args", "select_demonstrations", "load_demonstrations"],
        IMITATION,
    ),
]
COMMON_FIELDS = ["exp_name", "seed", "torch_deterministic", "cuda", "track", "capture_video", "save_model"]
PLAY_FIELDS = ["play", "greedy"]
PPO_FIELDS = ["num_envs", "num_steps", "anneal_lr", "gamma", "gae_lambda", "num_minibatches", "update_epochs"]
PPO_FIELDS += ["norm_adv", "clip_coef", "clip_vloss", "ent_coef", "vf_coef", "max_grad_norm", "target_kl"]
PPO_FIELDS += ["torch_threads"]
EXPERT_FIELDS = ["expert_data", "expert_learning_rate", "expert_timesteps", "expert_target_return"]
EXPERT_FIELDS += ["num_expert_episodes", "num_expert_samples"]
SECTION_MARKERS = ["# seeding", "# env setup", "# storage", "# rollout", "# logging", "# shutdown"]


def parse(script: str) -> ast.Module:
    return ast.parse((ROOT / script).read_text())


def args_fields(script: str) -> dict[str, tuple[str, str]]:
    """{name: (dump of annotation + default, docstring)} for each field of `class Args`, in order."""
    cls = next(n for n in parse(script).body if isinstance(n, ast.ClassDef) and n.name == "Args")
    fields, body = {}, cls.body
    for i, node in enumerate(body):
        if isinstance(node, ast.AnnAssign):
            nxt = body[i + 1] if i + 1 < len(body) else None
            doc = nxt.value.value if isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant) else None
            fields[node.target.id] = (ast.dump(node.annotation) + ast.dump(node.value), doc)
    return fields


def definitions(script: str) -> dict[str, str]:
    nodes = (ast.FunctionDef, ast.ClassDef)
    return {n.name: ast.dump(n) for n in parse(script).body if isinstance(n, nodes)}


SHARED_CASES = [(name, s, scripts[0]) for names, scripts in SHARED for name in names for s in scripts[1:]]


@pytest.mark.parametrize("name,script,reference", SHARED_CASES, ids=[f"{n}-{s}" for n, s, _ in SHARED_CASES])
def test_shared_definitions_identical(name, script, reference):
    mine, theirs = definitions(script), definitions(reference)
    assert name in theirs, f"{reference} lacks {name}"
    assert name in mine, f"{script} lacks the shared {name} (see {reference})"
    assert mine[name] == theirs[name], f"{script}: {name} differs from {reference}"


@pytest.mark.parametrize("script", SCRIPTS)
def test_common_args_fields(script):
    fields, reference = args_fields(script), args_fields("ppo_discrete.py")
    names = list(fields)
    assert names[: len(COMMON_FIELDS)] == COMMON_FIELDS
    assert all(fields[n] == reference[n] for n in COMMON_FIELDS), "common Args fields differ from ppo_discrete.py"
    assert names[len(COMMON_FIELDS)] == "env_id", "env_id must follow the common fields"
    assert all(doc for _, doc in fields.values()), "every Args field needs a docstring (tyro's --help)"


@pytest.mark.parametrize("script", LEARNING)
def test_play_fields_last_and_identical(script):
    fields, reference = args_fields(script), args_fields("ppo_discrete.py")
    assert list(fields)[-len(PLAY_FIELDS) :] == PLAY_FIELDS
    assert all(fields[n] == reference[n] for n in PLAY_FIELDS)


@pytest.mark.parametrize("script", PPO_FAMILY[1:])
def test_ppo_and_expert_fields_identical(script):
    fields, reference = args_fields(script), args_fields("ppo_discrete.py")
    assert {n: fields[n] for n in PPO_FIELDS} == {n: reference[n] for n in PPO_FIELDS}
    assert {n: fields[n] for n in EXPERT_FIELDS} == {n: args_fields(IMITATION[0])[n] for n in EXPERT_FIELDS}


@pytest.mark.parametrize("script", SCRIPTS)
def test_plumbing_after_the_algorithm(script):
    """The reader meets the network before any plumbing: `fail` comes after every nn.Module."""
    body = parse(script).body
    line = {n.name: n.lineno for n in body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    modules = [
        n.lineno
        for n in body
        if isinstance(n, ast.ClassDef) and any(getattr(b, "attr", "") == "Module" for b in n.bases)
    ]
    assert all(at < line["fail"] for at in modules)


@pytest.mark.parametrize("script", SCRIPTS)
def test_section_markers_in_order(script):
    text = (ROOT / script).read_text()
    main_at = text.find('if __name__ == "__main__":')
    assert main_at >= 0
    positions = [text.find(marker, main_at) for marker in SECTION_MARKERS]
    assert all(p >= 0 for p in positions), (
        f"missing markers: {[m for m, p in zip(SECTION_MARKERS, positions) if p < 0]}"
    )
    assert positions == sorted(positions), "section markers out of order"


@pytest.mark.parametrize("script", SCRIPTS)
def test_no_project_imports(script):
    project = {Path(s).stem for s in SCRIPTS} | {"tests", "benchmarks", "conftest"}
    for node in ast.walk(parse(script)):
        if isinstance(node, ast.Import):
            names = [a.name.split(".")[0] for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [(node.module or "").split(".")[0]]
        else:
            continue
        assert not set(names) & project, f"{script}:{node.lineno} imports project code"
