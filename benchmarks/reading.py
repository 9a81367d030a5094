"""How one reads each script, top to bottom: `python -m benchmarks.reading [--root DIR]`.

Per script: its length; the line where the training loop starts (`def main`, or the `if __name__ ==
"__main__":` block of a script without one); the plumbing lines that stand between the algorithm and the
loop (from the `Plumbing` banner to the loop, 0 when the plumbing comes after it); and the direction
reversals: the script's own functions and classes that the loop calls and that are defined above it,
taken in the order the loop first names them; each one defined above the one named before it makes the
reader scroll back up. Then the lines that `diff ppo_discrete.py <script>` changes for the PPO family.
"""

import argparse
import ast
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ["ppo_discrete.py", "a2c_atari_lstm.py", "a3c_pong_hogwild.py", "bc_cartpole.py", "gail_cartpole.py"]
SCRIPTS += ["random_baseline.py"]


def loop_node(tree: ast.Module):
    """The training loop: `def main`, else the `if __name__ == "__main__":` block."""
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == "main":
            return node
    return next(n for n in tree.body if isinstance(n, ast.If) and "__main__" in ast.unparse(n.test))


def figures(path: Path) -> dict:
    text = path.read_text()
    lines = text.splitlines()
    tree = ast.parse(text)
    loop = loop_node(tree)
    defined = {n.name: n.lineno for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    banner = next((i for i, line in enumerate(lines, 1) if line.startswith("# Plumbing")), None)
    plumbing = loop.lineno - banner if banner is not None and banner < loop.lineno else 0
    calls = sorted(
        (n.lineno, n.col_offset, n.func.id)
        for n in ast.walk(loop)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in defined
    )
    order = []
    for _, _, name in calls:
        if name not in order and defined[name] < loop.lineno:
            order.append(name)
    reversals = [(a, b) for a, b in zip(order, order[1:]) if defined[b] < defined[a]]
    return {
        "lines": len(lines),
        "loop": loop.lineno,
        "plumbing": plumbing,
        "reversals": len(reversals),
        "reversed": ", ".join(f"{a}->{b}" for a, b in reversals),
        "defined": defined,
    }


def changed_lines(a: Path, b: Path) -> int:
    """`diff a b | grep -c '^[<>]'`: the lines removed plus the lines added."""
    diff = subprocess.run(["diff", str(a), str(b)], capture_output=True, text=True).stdout
    return sum(1 for line in diff.splitlines() if line[:1] in "<>" and line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout to measure (default: this one)")
    root = parser.parse_args().root
    print("| script | lines | loop starts at | plumbing lines between the algorithm and the loop | reversals |")
    print("|---|---|---|---|---|")
    for script in SCRIPTS:
        f = figures(root / script)
        print(f"| {script} | {f['lines']} | {f['loop']} | {f['plumbing']} | {f['reversals']} |")
    for script, name in (("bc_cartpole.py", "PolicyNet"), ("gail_cartpole.py", "Discriminator")):
        at = figures(root / script)["defined"].get(name)
        print(f"\n{script}: {name} starts at line {at}", end="")
    print()
    for script in ("bc_cartpole.py", "gail_cartpole.py"):
        print(f"diff ppo_discrete.py {script}: {changed_lines(root / 'ppo_discrete.py', root / script)} changed lines")


if __name__ == "__main__":
    main()
