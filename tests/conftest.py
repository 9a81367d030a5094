"""Helpers shared by the tests: import a script by path, run it, read its TensorBoard log."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.summary import read_scalars  # noqa: F401  (the project's one TensorBoard reader)

ROOT = Path(__file__).resolve().parent.parent


def load_script(name: str):
    """Import a root-level script (e.g. "ppo_discrete") as a module; importing has no side effects."""
    spec = importlib.util.spec_from_file_location(name, ROOT / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_script(script: str, args: list[str], cwd: Path, timeout: float = 300, env: dict | None = None):
    """Run a script as a user would, in `cwd`; returns the CompletedProcess (text output)."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    full_env["PYTHONPATH"] = os.pathsep.join([str(ROOT), full_env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, str(ROOT / script), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
    )


def assert_user_error(result: subprocess.CompletedProcess, cwd: Path, flag: str = "") -> None:
    """Bad input (CONTRIBUTING.md, errors): exit status 2, one `error: ...` line on stderr naming `flag`, no
    traceback, and no run directory written."""
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and flag in lines[0], result.stderr
    assert "Traceback" not in result.stderr
    assert not (cwd / "runs").exists()


@pytest.fixture
def ppo():
    return load_script("ppo_discrete")
