"""Command line of the benchmark tool; see `python -m benchmarks --help`."""

import argparse
import shutil
import subprocess
import sys
from dataclasses import replace

from benchmarks.runner import run_suite
from benchmarks.suite import BENCH_DIR, ROOT, discover_suites, suites_left_out_of_all
from benchmarks.summary import summarize

# fragment writers that read the runs of the suites (run by `all` after the suites)
RUN_READERS = ["imitation"]


def speed_modules() -> list:
    """The fragment writers run by `all` as `python -m benchmarks.<name>`: the readers of the suites'
    runs, then the speed benchmarks `benchmarks/speed_*.py`."""
    return RUN_READERS + sorted(p.stem for p in BENCH_DIR.glob("speed_*.py"))


def main(argv=None) -> int:
    import benchmarks

    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=benchmarks.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the suites of benchmarks/suites/ and the speed benchmarks")
    run = sub.add_parser("run", help="run every (env, seed) of one or more suites, replacing their previous runs")
    run.add_argument("suites", nargs="+", metavar="SUITE")
    run.add_argument("--workers", type=int, default=1, help="runs at a time (default 1)")
    run.add_argument("--seeds", type=int, nargs="+", help="only these of the suites' seeds (the others' runs are kept)")
    summ = sub.add_parser("summarize", help="rebuild benchmarks/RESULTS.md and benchmarks/plots/ from all runs present")
    summ.add_argument("--no-plots", action="store_true", help="keep the existing plots")
    every = sub.add_parser(
        "all",
        help="rerun every suite (but those listed in a suite file's NOT_IN_ALL) and every speed_*.py, then summarize",
    )
    every.add_argument("--workers", type=int, default=1, help="runs at a time (default 1)")
    every.add_argument("--no-speed", action="store_true", help="skip the speed_*.py benchmarks")
    opts = parser.parse_args(argv)

    try:
        suites = discover_suites()
    except Exception as e:  # a broken suite file: say which, without a traceback
        print(f"error: cannot load the suites: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    if getattr(opts, "workers", 1) <= 0:
        print(f"error: --workers must be a positive integer, got {opts.workers}", file=sys.stderr)
        return 2

    if opts.command == "list":
        for name, members in suites.items():
            for m in members:
                print(f"{name}: {m.label} = {m.script} {' '.join(m.args)} on {', '.join(m.env_ids)}, seeds {m.seeds}")
        for name in speed_modules():
            print(f"speed: python -m benchmarks.{name}")
        return 0
    if opts.command == "summarize":
        summarize(BENCH_DIR, suites, plots=not opts.no_plots)
        return 0

    names = [n for n in suites if n not in suites_left_out_of_all()] if opts.command == "all" else opts.suites
    unknown = [n for n in names if n not in suites]
    if unknown:
        print(f"error: unknown suite(s) {', '.join(unknown)}; known: {', '.join(suites) or 'none'}", file=sys.stderr)
        return 2
    failed = 0
    try:
        for name in names:
            members = suites[name]
            if getattr(opts, "seeds", None):  # a rerun of some seeds replaces their records only
                members = [replace(m, seeds=kept) for m in members if (kept := [s for s in m.seeds if s in opts.seeds])]
                for m in members:
                    for record in (BENCH_DIR / "records" / name / m.label).glob("*/seed*.json"):
                        if int(record.stem[4:]) in m.seeds:
                            record.unlink()
            else:
                shutil.rmtree(BENCH_DIR / "records" / name, ignore_errors=True)  # a rerun replaces the suite's records
            if not members:
                print(f"error: suite {name} has none of the seeds {opts.seeds}", file=sys.stderr)
                return 2
            result = run_suite(name, members, workers=opts.workers, fresh=not getattr(opts, "seeds", None))
            failed += sum(1 for m in result["runs"] if m["exit_code"] != 0)
        if opts.command == "all" and not opts.no_speed:
            for module in speed_modules():
                print(f"python -m benchmarks.{module}", flush=True)
                failed += subprocess.run([sys.executable, "-m", f"benchmarks.{module}"], cwd=ROOT).returncode != 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    summarize(BENCH_DIR, suites)
    if failed:
        print(f"{failed} run(s) failed; see their log.txt", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
