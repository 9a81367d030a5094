"""What a measurement ran on: cores, CPU model and the versions that matter, recorded with every run."""

import os
import platform
import sys
from importlib import metadata

PACKAGES = ["torch", "gymnasium", "ale-py", "numpy", "stable-baselines3"]


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def machine_info() -> dict:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "cores": usable_cores(),
        "cpu": cpu_model(),
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "versions": versions,
        "executable": sys.executable,
    }


def describe(info: dict) -> str:
    """One line, e.g. `2 cores, Intel(R) Xeon(R) ...; Linux 6.1; Python 3.11.2, torch 2.13.0+cpu, ...`."""
    versions = ", ".join(f"{k} {v}" for k, v in info.get("versions", {}).items() if v)
    return (
        f"{info.get('cores')} cores, {info.get('cpu')}; {info.get('system')}; Python {info.get('python')}, {versions}"
    )
