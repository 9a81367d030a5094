"""The documentation against the code: README.md and docs/ cannot drift from the scripts.

- Every function or class a page names in backticks (`name()`, `ClassName`, `ClassName.method()`) exists
  in the script the page is about (docs/scripts/<script>.md), or in some script (the other pages).
- Every `--flag` a page shows exists in the script it belongs to: the script of a command (`python
  <script>.py ...`, `torchrun ... <script>.py ...`), else the script of the page; a flag is a field of the
  script's `Args` dataclass as tyro spells it (`--field-name`, `--no-field-name` for a bool, `--help`).
  The commands of the learning scripts are also parsed by tyro with the script's own `Args`, as the
  command line would parse them; nothing is run. `python -m benchmarks...` commands name existing modules,
  suites and flags.
- Every relative link (and `<!-- include: ... -->`) of README.md and docs/ points to an existing file.
- README.md has at most 200 lines; every script has a page with the same sections in the same order.
- docs/reading-order.md gives the figures that `python -m benchmarks.reading` prints for the code as it is.
- `mkdocs build --strict` passes (skipped when mkdocs is not installed).
"""

import ast
import functools
import importlib.util
import keyword
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SCRIPTS = [
    "ppo_discrete.py",
    "a2c_atari_lstm.py",
    "a3c_pong_hogwild.py",
    "bc_cartpole.py",
    "gail_cartpole.py",
    "random_baseline.py",
]
PAGES = sorted(DOCS.rglob("*.md")) + [ROOT / "README.md"]
README_MAX_LINES = 200
# the sections of every script page, in this order
SECTIONS = [
    "Overview",
    "Usage",
    "Implementation details",
    "Departures from the article",
    "Logged metrics",
    "Results",
    "Limitations",
]
# class names the pages write without a module that belong to a library or to an article, not to a script
FOREIGN = {
    "Box",
    "Discrete",  # gymnasium's spaces
    "SyncVectorEnv",
    "RecordEpisodeStatistics",
    "AutoresetMode",  # gymnasium's vector envs
    "AtariVectorEnv",  # ale-py
    "LSTMCell",  # torch.nn
    "FireResetEnv",
    "VecFrameStack",  # stable-baselines3
    "ICMAgent",
    "ConvBlock",
    "A2CNet",
    "RolloutStorage",
    "Runner",  # the A2C article's code
    "ActorCritic",
    "MasterAgent",
    "Memory",
    "RandomAgent",  # the A3C articles' code
    "ValueNet",
    "BehaviorClone",
    "GAIL",  # the imitation article's code
}
# flags the pages show on purpose although no script has them: each must stay absent from every script
NOT_FLAGS = {
    "--flag": "a placeholder in `--flag value`, `--flag=value`",
    "--no-flag": "a placeholder",
    "--sed": "the misspelt flag of the bad-input example",
    "--overlap": "removed from a2c_atari_lstm.py (its speed notes say why)",
    "--curiosity-coeff": "the A2C article's unused option, left out",
    "--icm-beta": "the A2C article's unused option, left out",
    "--algorithm": "the A3C CartPole article's command line",
    "--max-eps": "the A3C CartPole article's command line",
}

CODE_SPAN = re.compile(r"`([^`\n]+)`")
FENCE = re.compile(r"^(```|~~~)[^\n]*\n(.*?)^\1", re.M | re.S)
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
INCLUDE = re.compile(r"^<!-- include: (\S+) -->$", re.M)
FLAG = re.compile(r"(?<![\w-])(--[a-z0-9]+(?:-[a-z0-9]+)*)")
CALL = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*\(\)")
CAMEL = re.compile(r"[A-Z]\w*[a-z]\w*")
MEMBER = re.compile(r"([A-Z]\w*[a-z]\w*)\.([A-Za-z_]\w*)(?:\(\))?")


@functools.cache
def script_info(script: str) -> dict:
    """A script's top-level names, its classes' members and its command-line flags, read from its source."""
    tree = ast.parse((ROOT / script).read_text(encoding="utf-8"))
    names, members, flags, params = set(), {}, {"--help", "-h"}, {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            arguments = node.args.posonlyargs + node.args.args + node.args.kwonlyargs
            params[node.name] = (len(node.args.posonlyargs + node.args.args), {a.arg for a in arguments})
        if isinstance(node, ast.ClassDef):
            members[node.name] = {
                n.name if hasattr(n, "name") else getattr(n.target, "id", "")
                for n in node.body
                if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.AnnAssign))
            }
        if isinstance(node, ast.ClassDef) and node.name == "Args":
            for field in node.body:
                if isinstance(field, ast.AnnAssign) and isinstance(field.target, ast.Name):
                    flag = "--" + field.target.id.replace("_", "-")
                    flags.add(flag)
                    if ast.unparse(field.annotation) == "bool":
                        flags.add("--no-" + flag[2:])
    assert "Args" in members and len(flags) > 5, f"{script}: no Args dataclass found"
    return {"names": names, "members": members, "flags": flags, "params": params}


@functools.cache
def load_args_class(script: str):
    """The script's `Args` (importing a script has no side effects)."""
    spec = importlib.util.spec_from_file_location(f"docs_{script[:-3]}", ROOT / script)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # tyro reads the fields' docstrings from the module's source
    spec.loader.exec_module(module)
    return module.Args


def page_scripts(page: Path) -> list:
    """The scripts a page is about: its own script for docs/scripts/<script>.md, else all of them."""
    if page.parent == DOCS / "scripts":
        return [page.stem + ".py"]
    return SCRIPTS


def rel(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


def split_code(text: str):
    """(prose without fenced blocks, [fenced block bodies])."""
    return FENCE.sub("", text), [m.group(2) for m in FENCE.finditer(text)]


def python_blocks(text: str) -> list:
    return [m.group(2) for m in FENCE.finditer(text) if m.group(0).splitlines()[0].strip("`~ ") == "python"]


def commands_of(text: str) -> list:
    """The shell commands of a block: continuation lines joined, split at && || ; |, comments dropped."""
    commands = []
    for line in text.replace("\\\n", " ").splitlines():
        try:
            tokens = shlex.split(line, comments=True)
        except ValueError:
            continue
        command = []
        for token in tokens + ["&&"]:
            if token in ("&&", "||", ";", "|"):
                if command:
                    commands.append(command)
                command = []
            else:
                command.append(token)
    return commands


def script_command(tokens: list):
    """(script, its arguments) for `python X.py ...`, `torchrun ... X.py ...` or `X.py ...`; else None."""
    for i, token in enumerate(tokens):
        if Path(token).name in SCRIPTS and (i == 0 or tokens[0] in ("python", "python3", "torchrun")):
            return Path(token).name, tokens[i + 1 :]
        if i == 0 and token not in ("python", "python3", "torchrun"):
            return None
    return None


def page_commands(page: Path) -> list:
    """Every command a page shows: the lines of its fenced blocks and the code spans that are commands."""
    prose, blocks = split_code(page.read_text(encoding="utf-8"))
    commands = [c for block in blocks for c in commands_of(block)]
    for span in CODE_SPAN.findall(prose):
        tokens = span.split()
        if tokens and (tokens[0] in ("python", "python3", "torchrun") or tokens[0] in SCRIPTS):
            commands += commands_of(span)
    return commands


def flags_in(arguments: list) -> list:
    return [a.split("=")[0] for a in arguments if a.startswith("--") or a == "-h"]


def test_every_script_has_a_page_with_the_same_sections():
    pages = {p.stem + ".py" for p in (DOCS / "scripts").glob("*.md")}
    assert pages == set(SCRIPTS), "one page per script in docs/scripts/, named after it"
    for script in SCRIPTS:
        page = DOCS / "scripts" / (script[:-3] + ".md")
        prose, _ = split_code(page.read_text(encoding="utf-8"))
        sections = re.findall(r"^## (.+?)\s*$", prose, re.M)
        assert sections == SECTIONS, f"{rel(page)}: sections {sections}, expected {SECTIONS}"


@pytest.mark.parametrize("page", PAGES, ids=rel)
def test_code_spans_stay_on_one_line(page):
    """The checks below read the code spans line by line: a span broken over two lines would escape them."""
    prose, _ = split_code(page.read_text(encoding="utf-8"))
    broken = [line for line in prose.splitlines() if line.count("`") % 2]
    assert not broken, f"{rel(page)}: a code span runs over the end of these lines: {broken}"


def test_readme_is_short():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines (at most {README_MAX_LINES})"


@pytest.mark.parametrize("page", PAGES, ids=rel)
def test_relative_links_point_to_files(page):
    text = page.read_text(encoding="utf-8")
    prose, _ = split_code(text)
    targets = LINK.findall(prose) + INCLUDE.findall(text)
    missing = []
    for target in targets:
        if re.match(r"[a-zA-Z][a-zA-Z0-9+.-]*:", target) or target.startswith(("#", "/")):
            continue
        if not (page.parent / target.partition("#")[0]).exists():
            missing.append(target)
    assert not missing, f"{rel(page)}: links to files that do not exist: {missing}"


@pytest.mark.parametrize("page", PAGES, ids=rel)
def test_named_functions_and_classes_exist(page):
    scripts = page_scripts(page)
    prose, _ = split_code(page.read_text(encoding="utf-8"))
    infos = [script_info(s) for s in scripts]
    problems = []
    for span in CODE_SPAN.findall(prose):
        span = span.strip()
        member = MEMBER.fullmatch(span)
        if member and member.group(1) not in FOREIGN:
            cls, name = member.groups()
            if not any(name in info["members"].get(cls, ()) for info in infos):
                problems.append(span)
        elif CALL.fullmatch(span) and "." not in span:
            if not any(span[:-2] in info["names"] for info in infos):
                problems.append(span)
        elif CAMEL.fullmatch(span) and not keyword.iskeyword(span) and span not in FOREIGN:
            if not any(span in info["names"] for info in infos):
                problems.append(span)
    where = scripts[0] if len(scripts) == 1 else "any script"
    assert not problems, f"{rel(page)} names what {where} does not define: {problems}"


def test_foreign_names_are_not_the_scripts():
    """A name listed as foreign would hide a script's own class of that name from the check above."""
    clash = {name for script in SCRIPTS for name in script_info(script)["names"]} & FOREIGN
    assert not clash, f"remove {clash} from FOREIGN: the scripts define them"


def test_flags_the_pages_show_on_purpose_are_absent():
    for flag, why in NOT_FLAGS.items():
        holders = [s for s in SCRIPTS if flag in script_info(s)["flags"]]
        assert not holders, f"{flag} ({why}) is a flag of {holders}: the pages say otherwise"


@pytest.mark.parametrize("page", PAGES, ids=rel)
def test_flags_exist(page):
    """The flags of each script command; then the flags the page's prose shows, against the page's script."""
    problems = []
    command_spans = set()
    for tokens in page_commands(page):
        found = script_command(tokens)
        if found:
            script, arguments = found
            problems += [f"{script} {f}" for f in flags_in(arguments) if f not in script_info(script)["flags"]]
    prose, _ = split_code(page.read_text(encoding="utf-8"))
    for span in CODE_SPAN.findall(prose):
        tokens = span.split()
        if tokens and (tokens[0] in ("python", "python3", "torchrun", "pip", "tensorboard", "mkdocs", "ruff")):
            command_spans.add(span)
        elif tokens and tokens[0] in SCRIPTS:
            command_spans.add(span)
    scripts = page_scripts(page)
    for span in set(CODE_SPAN.findall(prose)) - command_spans:
        for flag in FLAG.findall(span):
            if flag in NOT_FLAGS:
                continue
            if not any(flag in script_info(s)["flags"] for s in scripts):
                problems.append(f"{'/'.join(scripts) if len(scripts) == 1 else 'any script'} {flag}")
    assert not problems, f"{rel(page)} shows flags the scripts do not have: {problems}"


@pytest.mark.parametrize("page", PAGES, ids=rel)
def test_script_commands_parse(page):
    """Each command of a script, parsed by tyro with the script's `Args`: flags, values and choices."""
    import tyro

    failures = []
    for tokens in page_commands(page):
        found = script_command(tokens)
        if not found or "--help" in found[1] or "-h" in found[1]:
            continue
        script, arguments = found
        try:
            tyro.cli(load_args_class(script), args=arguments)
        except SystemExit:
            failures.append(" ".join([script, *arguments]))
    assert not failures, f"{rel(page)}: commands the script's command line rejects: {failures}"


@pytest.mark.parametrize("page", PAGES, ids=rel)
def test_benchmark_commands_exist(page):
    """`python -m benchmarks ...` and `python -m benchmarks.<module> ...`: the module, the suites, the flags."""
    from benchmarks.suite import discover_suites

    problems = []
    for tokens in page_commands(page):
        if tokens[:2] not in (["python", "-m"], ["python3", "-m"]) or not tokens[2:3]:
            continue
        module, arguments = tokens[2], tokens[3:]
        if module == "benchmarks":
            source = (ROOT / "benchmarks" / "__main__.py").read_text(encoding="utf-8")
            if arguments[:1] == ["run"]:
                # the suite names: the words before the first flag (NAME, in capitals, is a placeholder)
                words = [a for a in arguments[1:] if not a.isupper()]
                suites = words[: next((i for i, a in enumerate(words) if a.startswith("-")), len(words))]
                problems += [f"suite {s}" for s in suites if s not in discover_suites()]
        elif module.startswith("benchmarks."):
            files = sorted((ROOT / "benchmarks").glob(module.split(".", 1)[1].replace(".", "/") + ".py"))
            if not files:
                problems.append(f"module {module}")
                continue
            source = "\n".join(f.read_text(encoding="utf-8") for f in files)
        else:
            continue
        problems += [f"{module} {f}" for f in flags_in(arguments) if f'"{f}' not in source and f != "--help"]
    assert not problems, f"{rel(page)}: benchmark commands that do not exist: {problems}"


@pytest.mark.parametrize("page", PAGES, ids=rel)
def test_python_snippets_call_what_the_scripts_define(page):
    """A Python block that imports a script by path (`spec_from_file_location(name, "<script>.py")`) calls
    only functions the script defines, with arguments their signatures take."""
    problems = []
    for block in python_blocks(page.read_text(encoding="utf-8")):
        tree = ast.parse(block)
        files = [
            n.args[1].value
            for n in ast.walk(tree)
            if isinstance(n, ast.Call)
            and getattr(n.func, "attr", "") == "spec_from_file_location"
            and len(n.args) > 1
            and isinstance(n.args[1], ast.Constant)
        ]
        modules = {
            t.id
            for n in ast.walk(tree)
            if isinstance(n, ast.Assign) and "module_from_spec" in ast.unparse(n.value)
            for t in ast.walk(n.targets[0])
            if isinstance(t, ast.Name)
        }
        if not files or not modules:
            continue
        info = script_info(Path(files[0]).name)
        for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)):
            if not (isinstance(call.func.value, ast.Name) and call.func.value.id in modules):
                continue
            name = call.func.attr
            if name not in info["names"]:
                problems.append(f"{name}()")
            elif name in info["params"]:
                positional, accepted = info["params"][name]
                problems += [f"{name}({k.arg}=)" for k in call.keywords if k.arg not in accepted]
                if len(call.args) > positional:
                    problems.append(f"{name}() with {len(call.args)} positional arguments")
    assert not problems, f"{rel(page)}: Python snippets call what the script does not define: {problems}"


def test_pages_name_what_they_check():
    """The checks above find something to check: each script page names functions and shows commands."""
    for script in SCRIPTS:
        page = DOCS / "scripts" / (script[:-3] + ".md")
        prose, _ = split_code(page.read_text(encoding="utf-8"))
        calls = [s for s in CODE_SPAN.findall(prose) if CALL.fullmatch(s.strip())]
        assert len(calls) >= 3, f"{rel(page)} names fewer than 3 of the script's functions"
        assert any(script_command(c) for c in page_commands(page)), f"{rel(page)} shows no command of {script}"


def test_reading_figures_are_what_the_command_prints():
    """docs/reading-order.md and the README give `python -m benchmarks.reading`'s current figures: the table's
    row of each script, where BC's policy and GAIL's discriminator start, and the two diffs against ppo."""
    sys.path.insert(0, str(ROOT))
    from benchmarks.reading import changed_lines, figures

    policy, discriminator = (
        figures(ROOT / s)["defined"][n]
        for s, n in [("bc_cartpole.py", "PolicyNet"), ("gail_cartpole.py", "Discriminator")]
    )
    bc, gail = (changed_lines(ROOT / "ppo_discrete.py", ROOT / s) for s in ("bc_cartpole.py", "gail_cartpole.py"))
    for page in (DOCS / "reading-order.md", ROOT / "README.md"):
        text = page.read_text(encoding="utf-8")
        for script in SCRIPTS:
            f = figures(ROOT / script)
            row = f"| `{script}` | {f['lines']} | {f['loop']} | {f['plumbing']} | {f['reversals']} |"
            assert row in text, f"{page.name}: no row {row!r}: rerun python -m benchmarks.reading"
        assert f"`PolicyNet` starts at line {policy} and GAIL's `Discriminator` at line {discriminator}." in text
        assert f"bc_cartpole.py` changes {bc} lines and `diff ppo_discrete.py gail_cartpole.py` {gail}:" in text


@pytest.mark.skipif(
    importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("material") is None,
    reason='mkdocs and mkdocs-material are not installed (pip install -e ".[docs]")',
)
def test_site_builds_strictly(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"), "-d", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    warnings = [line for line in result.stderr.splitlines() if "WARNING" in line or "ERROR" in line]
    assert result.returncode == 0, "mkdocs build --strict failed:\n" + "\n".join(warnings or [result.stderr[-2000:]])
