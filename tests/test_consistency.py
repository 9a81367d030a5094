"""The code that several scripts share must be identical, as source text with its comments, and every
script keeps the one reading order (CONTRIBUTING.md): the algorithm, `def main`, then the plumbing.

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
PLUMBING = [
    "UserError",
    "fail",
    "check_args",
    "make_run_name",
    "make_run_dir",
    "make_writer",
    "seed_everything",
    "StopFlag",
    "atomic_save",
]
PLUMBING += ["format_seconds", "finish_run"]
SHARED = [
    (PLUMBING, SCRIPTS),
    (["load_saved", "settings_from_file", "given_flags", "print_progress", "print_scores"], LEARNING),
    (["compute_gae"], ACTOR_CRITIC),
    (["sample_actions", "check_compile"], ["a2c_atari_lstm.py", "a3c_pong_hogwild.py"]),
    (
        ["make_env", "make_vector_env", "layer_init", "Agent", "ppo_losses", "ppo_update", "make_storage"]
        + ["collect_rollout", "rollout_advantages", "flatten_rollout", "log_episode_stats", "check_env"]
        + ["Episodes", "run_episodes", "save_demonstrations"],
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
# the section comments of each `main`, in order: only the stages the script has
ALL_STAGES = [
    "# seeding",
    "# env setup",
    "# storage",
    "# rollout",
    "# advantages",
    "# update",
    "# logging",
    "# shutdown",
]
SECTIONS = {script: ALL_STAGES for script in ["ppo_discrete.py", "a2c_atari_lstm.py", "gail_cartpole.py"]}
SECTIONS["bc_cartpole.py"] = [
    "# seeding",
    "# env setup",
    "# storage",
    "# rollout",
    "# update",
    "# logging",
    "# shutdown",
]
SECTIONS["a3c_pong_hogwild.py"] = ["# seeding", "# env setup", "# rollout", "# logging", "# shutdown"]
SECTIONS["random_baseline.py"] = ["# seeding", "# env setup", "# rollout", "# logging", "# shutdown"]


# the end of every script: main(), and the script's UserError as one `error:` line and exit status 2
MAIN_BLOCK = """if __name__ == "__main__":
    try:
        main()
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
"""


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
    """{name: source text} of each top-level function and class: its decorators, its comments, and the
    comment lines right above it."""
    lines = (ROOT / script).read_text().splitlines()
    out = {}
    for node in parse(script).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            start = min([node.lineno] + [d.lineno for d in node.decorator_list]) - 1
            while start > 0 and lines[start - 1].startswith("# ") and not lines[start - 1].startswith("# ---"):
                start -= 1
            out[node.name] = "\n".join(lines[start : node.end_lineno])
    return out


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
def test_one_reading_direction(script):
    """Args, the networks and the algorithm, then `def main`, then the plumbing banner and every shared
    plumbing definition, and the command line's block last."""
    text = (ROOT / script).read_text()
    body = parse(script).body
    line = {n.name: n.lineno for n in body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    banner = next(i for i, s in enumerate(text.splitlines(), 1) if s.startswith("# Plumbing"))
    modules = [
        n.lineno for n in body if isinstance(n, ast.ClassDef) and any(ast.unparse(b) == "nn.Module" for b in n.bases)
    ]
    assert line["Args"] < line["main"] < banner
    assert all(at < line["main"] for at in modules) or script in IMITATION  # bc, gail: the expert's after the loop
    assert all(banner < line[name] for names, _ in SHARED[:2] for name in names if name in line)
    last = text[text.index('if __name__ == "__main__":') :]
    assert last == MAIN_BLOCK, "the script must end with the command line's block, main() and its one error line"


@pytest.mark.parametrize("script", SCRIPTS)
def test_no_function_shares_its_name_with_a_flag(script):
    """`play_saved` plays `--play` and `save_agent` writes `--save-model`: a name means one thing."""
    defined = {n.name for n in parse(script).body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    assert not defined & set(args_fields(script))


@pytest.mark.parametrize("script", SCRIPTS)
def test_section_comments_in_order(script):
    """`main` marks each stage it has with its section comment, in order, and each marks code: no
    placeholder comment with nothing under it."""
    main = next(n for n in parse(script).body if isinstance(n, ast.FunctionDef) and n.name == "main")
    lines = (ROOT / script).read_text().splitlines()[main.lineno - 1 : main.end_lineno]
    found = [(i, s.strip()) for i, s in enumerate(lines) if s.strip().startswith("# ")]
    stages = [
        (i, c) for i, c in found if any(c == m or c.startswith(m + ":") or c.startswith(m + " ") for m in ALL_STAGES)
    ]
    names = [next(m for m in ALL_STAGES if c == m or c.startswith(m + ":") or c.startswith(m + " ")) for _, c in stages]
    assert names == SECTIONS[script]
    for i, _ in stages:
        block = [s.strip() for s in lines[i + 1 :]]
        block = block[: block.index("")] if "" in block else block
        assert any(not s.startswith("#") for s in block), f"{script}: {lines[i].strip()!r} marks no code"


def test_reading_figures_meet_the_targets():
    """`python -m benchmarks.reading`: the loop starts early, no plumbing before it, at most 2 reversals."""
    from benchmarks.reading import figures

    targets = {"ppo_discrete.py": 340, "a2c_atari_lstm.py": 430, "a3c_pong_hogwild.py": 530}
    targets.update({"bc_cartpole.py": 430, "gail_cartpole.py": 490, "random_baseline.py": 160})
    for script, loop_by in targets.items():
        f = figures(ROOT / script)
        assert f["loop"] <= loop_by and f["plumbing"] == 0 and f["reversals"] <= 2, (script, f)
    assert figures(ROOT / "bc_cartpole.py")["defined"]["PolicyNet"] < 200
    assert figures(ROOT / "gail_cartpole.py")["defined"]["Discriminator"] < 200


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
