"""The blocks every script shares (DESIGN §2) are compared by AST and must be identical.

This keeps the single files diffable as they multiply: a change to a shared block is made in
every script at once, or this test fails and names the script that drifted.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = [
    "ppo_discrete.py",
    "a2c_atari_lstm.py",
    "a3c_pong_hogwild.py",
    "bc_cartpole.py",
    "gail_cartpole.py",
    "random_baseline.py",
]
PRESENT = [s for s in SCRIPTS if (ROOT / s).exists()]
REFERENCE = "ppo_discrete.py"
COMMON_FIELDS = ["exp_name", "seed", "torch_deterministic", "cuda", "track", "capture_video", "save_model"]
# functions every script has, and those compared only where a script defines them
REQUIRED_FUNCTIONS = ["fail", "parse_args", "make_run_name", "make_writer", "seed_everything"]
OPTIONAL_FUNCTIONS = ["layer_init", "log_episode_stats", "format_seconds"]
SECTION_MARKERS = ["# seeding", "# env setup", "# storage", "# rollout", "# logging", "# shutdown"]


def parse(script: str) -> ast.Module:
    return ast.parse((ROOT / script).read_text())


def args_fields(tree: ast.Module) -> list[tuple[str, str, str]]:
    """(name, dump of annotation + default, docstring) for each field of `class Args`."""
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Args")
    fields, body = [], cls.body
    for i, node in enumerate(body):
        if isinstance(node, ast.AnnAssign):
            nxt = body[i + 1] if i + 1 < len(body) else None
            doc = nxt.value.value if isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant) else None
            fields.append((node.target.id, ast.dump(node.annotation) + ast.dump(node.value), doc))
    return fields


def functions(tree: ast.Module) -> dict[str, str]:
    return {n.name: ast.dump(n) for n in tree.body if isinstance(n, ast.FunctionDef)}


@pytest.mark.parametrize("script", PRESENT)
def test_common_args_fields(script):
    fields = args_fields(parse(script))
    reference = args_fields(parse(REFERENCE))[: len(COMMON_FIELDS)]
    assert [f[0] for f in fields[: len(COMMON_FIELDS)]] == COMMON_FIELDS
    assert fields[: len(COMMON_FIELDS)] == reference, "common Args fields differ from ppo_discrete.py"
    assert fields[len(COMMON_FIELDS)][0] == "env_id", "env_id must follow the common fields"
    assert all(doc for _, _, doc in fields), "every Args field needs a docstring (tyro's --help)"


@pytest.mark.parametrize("script", PRESENT)
def test_shared_functions_identical(script):
    reference, mine = functions(parse(REFERENCE)), functions(parse(script))
    for name in REQUIRED_FUNCTIONS:
        assert name in mine, f"{script} lacks the shared function {name}"
    for name in REQUIRED_FUNCTIONS + OPTIONAL_FUNCTIONS:
        if name in mine:
            assert mine[name] == reference[name], f"{script}: {name} differs from ppo_discrete.py"


@pytest.mark.parametrize("script", PRESENT)
def test_section_markers_in_order(script):
    text = (ROOT / script).read_text()
    main_at = text.find('if __name__ == "__main__":')
    assert main_at >= 0
    positions = [text.find(marker, main_at) for marker in SECTION_MARKERS]
    assert all(p >= 0 for p in positions), f"missing markers: {[m for m, p in zip(SECTION_MARKERS, positions) if p < 0]}"
    assert positions == sorted(positions), "section markers out of order"


@pytest.mark.parametrize("script", PRESENT)
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
