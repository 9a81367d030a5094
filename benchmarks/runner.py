"""Run every (env, seed) of a suite as a subprocess, N at a time, each in its own directory.

A run's directory is `benchmarks/runs/<suite>/<label>/<env>/seed<S>/`: the script runs with that
directory as its working directory (so its `runs/<run name>/` lands there), its stdout and stderr
go to `log.txt`, and `meta.json` records the command, exit code, wall time, peak memory (ru_maxrss
of the finished child: the largest single process of its tree), start and end time and the machine.
"""

import datetime
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchmarks.machine import machine_info
from benchmarks.suite import BENCH_DIR, ROOT, Suite, safe_name


def utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def run_dir_for(runs_dir: Path, suite_name: str, member: Suite, env_id: str, seed: int) -> Path:
    return runs_dir / suite_name / member.label / safe_name(env_id) / f"seed{seed}"


class Runner:
    def __init__(self, workers: int, python: str = sys.executable):
        self.workers, self.python = workers, python
        self.live: set = set()
        self.lock = threading.Lock()

    def run_one(self, suite_name: str, member: Suite, env_id: str, seed: int, run_dir: Path) -> dict:
        if run_dir.exists():
            shutil.rmtree(run_dir)
        run_dir.mkdir(parents=True)
        command = member.command(env_id, seed, self.python)
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        start, started_at = time.perf_counter(), utc_now()
        with open(run_dir / "log.txt", "w") as log:
            proc = subprocess.Popen(command, cwd=run_dir, stdout=log, stderr=subprocess.STDOUT, env=env)
            with self.lock:
                self.live.add(proc)
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here; Popen must not wait again
            with self.lock:
                self.live.discard(proc)
        wall = time.perf_counter() - start
        meta = {
            "suite": suite_name,
            "label": member.label,
            "script": member.script,
            "env_id": env_id,
            "seed": seed,
            "args": list(member.args),
            "return_tag": member.return_tag,
            "thresholds": member.thresholds,
            "command": [Path(command[0]).name, member.script, *command[2:]],
            "exit_code": proc.returncode,
            "wall_s": round(wall, 3),
            "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),  # Linux reports KiB
            "start": started_at,
            "end": utc_now(),
            "workers": self.workers,
            "machine": machine_info(),
        }
        (run_dir / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
        status = "ok" if proc.returncode == 0 else f"FAILED (exit {proc.returncode}, see {run_dir / 'log.txt'})"
        print(f"[{meta['end']}] {member.label} {env_id} seed {seed}: {wall:.1f} s, {status}", flush=True)
        return meta

    def stop_all(self) -> None:
        with self.lock:
            for proc in self.live:
                if proc.returncode is None:
                    proc.terminate()


def run_suite(
    suite_name: str,
    members: list,
    workers: int = 1,
    runs_dir: Path = BENCH_DIR / "runs",
    python: str = sys.executable,
    fresh: bool = True,
) -> dict:
    """Run the whole suite, replacing its previous runs (with `fresh=False` only the runs it makes, so a
    rerun of some seeds keeps the others); returns {"wall_s": ..., "runs": [meta, ...]}."""
    jobs = [(m, e, s) for m in members for e in m.env_ids for s in m.seeds]
    for member in members:
        script = ROOT / member.script
        if not script.exists():
            raise FileNotFoundError(f"suite {suite_name!r}: script {member.script} does not exist")
    suite_dir = runs_dir / suite_name
    if suite_dir.exists() and fresh:
        shutil.rmtree(suite_dir)
    print(f"suite {suite_name}: {len(jobs)} runs, {workers} worker(s)", flush=True)
    runner = Runner(workers, python)
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [
            pool.submit(runner.run_one, suite_name, m, e, s, run_dir_for(runs_dir, suite_name, m, e, s))
            for m, e, s in jobs
        ]
        try:
            metas = [f.result() for f in futures]
        except KeyboardInterrupt:
            for f in futures:
                f.cancel()
            runner.stop_all()
            raise
    wall = time.perf_counter() - start
    summary = {"suite": suite_name, "workers": workers, "wall_s": round(wall, 3), "runs": len(metas)}
    (suite_dir / "suite.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"suite {suite_name}: {len(metas)} runs in {wall:.1f} s", flush=True)
    return {"wall_s": wall, "runs": metas}
