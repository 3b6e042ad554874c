"""A description of the machine a benchmark ran on, for the top of its report."""

from __future__ import annotations

import os
import platform
import re
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path


def _cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown"
    match = re.search(r"model name\s*:\s*(.+)", text)
    return match.group(1).strip() if match else "unknown"


def _memory_gib() -> str:
    try:
        kib = int(re.search(r"MemTotal:\s*(\d+)", Path("/proc/meminfo").read_text()).group(1))
        return f"{kib / 2**20:.1f} GiB"
    except (OSError, AttributeError):
        return "unknown"


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def describe() -> str:
    """One Markdown paragraph: CPU, cores, memory, OS, Python and library versions."""
    return (
        f"Machine: {_cpu_model()}, {os.cpu_count()} cores, {_memory_gib()} RAM, {platform.system()} "
        f"{platform.machine()}. Python {platform.python_version()}, torch {_version('torch')}, "
        f"numpy {_version('numpy')}, pyarrow {_version('pyarrow')}, scipy {_version('scipy')}, "
        f"recforge {_version('recforge')}."
    )
