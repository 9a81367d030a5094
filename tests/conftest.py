"""Helpers shared by the tests: import a script by path, run it, signal it, read its TensorBoard log."""

import importlib.util
import os
import signal
import subprocess
import sys
import time
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


def start_script(command: list[str], cwd: Path, env: dict | None = None) -> subprocess.Popen:
    """Start `python COMMAND` (a script of the repository, or `-m module ...`) as from a terminal, in its own
    process group, its output piped as text. SIGINT is set back to its default: a background parent (CI,
    `cmd &`) may leave it ignored, and children inherit that."""
    if command[0].endswith(".py"):
        command = [str(ROOT / command[0]), *command[1:]]
    return subprocess.Popen(
        [sys.executable, *command],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def signal_when(proc: subprocess.Popen, prefix: str, send, settle: float = 0.0, timeout: float = 120):
    """Once the process prints a line starting with `prefix` (and `settle` seconds later), call `send()`;
    returns (stdout, stderr) when it has ended. Its process group is killed if it outlives the test."""
    try:
        seen = []
        for line in proc.stdout:
            seen.append(line)
            if line.startswith(prefix):
                break
        time.sleep(settle)
        send()
        stdout, stderr = proc.communicate(timeout=timeout)
        return "".join(seen) + stdout, stderr
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def raises_user_error(module, call, *flags: str) -> str:
    """`call()` raises the script's `UserError`, whose one-line message names every one of `flags`."""
    try:
        call()
    except module.UserError as e:
        message = str(e)
    else:
        raise AssertionError("no UserError")
    assert "\n" not in message and all(flag in message for flag in flags), message
    return message


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
