"""Shared benchmark helpers: timing, peak RSS from /proc, machine facts, and the docs/benchmarks.md writer.

Each benchmark owns one `## <Section>` of docs/benchmarks.md and rewrites only that section, so
benchmarks written by other people (e.g. `## Serving`) survive every run.
"""

from __future__ import annotations

import contextlib
import math
import os
import platform
import re
import shlex
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

REPO_ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS_MD = REPO_ROOT / "docs" / "benchmarks.md"
_INTRO = """# Benchmarks

Measured with the scripts in `bench/` (see `bench/README.md` for how to run them). Every benchmark
runs its own baseline in the same run and reports ratios: machines are shared and noisy, so compare
ratios, not absolute seconds. Each section records when and where it ran and the load average; a
"Contended run" bullet marks figures taken while other jobs kept the CPUs busy. Each section below is
rewritten in place by the script that owns it.
"""

T = TypeVar("T")


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    """Call fn and return its result and wall seconds."""
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started


def median(values: Sequence[float]) -> float:
    """Median of a non-empty sequence."""
    return float(statistics.median(values))


def _status_kib(field: str) -> int | None:
    try:
        text = Path("/proc/self/status").read_text(encoding="ascii")
    except OSError:
        return None
    match = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) if match else None


def peak_rss_mb() -> float | None:
    """Peak resident set size of this process since start (or the last reset), in MB."""
    kib = _status_kib("VmHWM")
    return None if kib is None else kib / 1024


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark to the current RSS (Linux >= 4.0); False where unsupported."""
    try:
        Path("/proc/self/clear_refs").write_text("5", encoding="ascii")
    except OSError:
        return False
    return True


def _mem_total_gib() -> float | None:
    try:
        text = Path("/proc/meminfo").read_text(encoding="ascii")
    except OSError:
        return None
    match = re.search(r"^MemTotal:\s+(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) / 1024 / 1024 if match else None


def load_average() -> str:
    """The 1/5/15-minute load averages, e.g. '1.52 / 1.80 / 2.01'."""
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "n/a"
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


class LoadSampler:
    """A daemon thread noting the 1-minute load average every few seconds while a benchmark runs."""

    def __init__(self, every_s: float = 5.0) -> None:
        self.samples: list[float] = []
        self._every_s = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="load-sampler", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(OSError):
                self.samples.append(os.getloadavg()[0])
            self._stop.wait(self._every_s)

    def peak(self) -> float:
        """Highest 1-minute load seen so far (0.0 where the OS does not report one)."""
        return max(self.samples, default=0.0)

    def median(self) -> float:
        """Median 1-minute load over the samples so far."""
        return float(statistics.median(self.samples)) if self.samples else 0.0


@dataclass(frozen=True)
class RunContext:
    """When, where and how a benchmark ran; printed above its table."""

    started: datetime
    cpus: int
    ram_gib: float | None
    python: str
    command: str
    load_before: str
    sampler: LoadSampler

    @classmethod
    def capture(cls) -> RunContext:
        """Facts about this machine and the command line, taken at the start of a run."""
        argv = [Path(sys.argv[0]).as_posix(), *sys.argv[1:]]
        with contextlib.suppress(ValueError):  # a script outside the repo keeps its own path
            argv[0] = str(Path(argv[0]).resolve().relative_to(REPO_ROOT))
        return cls(
            started=datetime.now(UTC),
            cpus=len(os.sched_getaffinity(0)),
            ram_gib=_mem_total_gib(),
            python=platform.python_version(),
            command=".venv/bin/python " + shlex.join(argv),
            load_before=load_average(),
            sampler=LoadSampler(),
        )

    def describe(self) -> list[str]:
        """Markdown bullet lines: date, machine, command, load averages at start and now."""
        ram = f"{self.ram_gib:.0f} GiB RAM" if self.ram_gib else "RAM unknown"
        return [
            f"- Date: {self.started:%Y-%m-%d %H:%M} UTC",
            f"- Machine: {self.cpus} CPUs (nproc), {ram}, Python {self.python}, {platform.machine()}",
            f"- Command: `{self.command}`",
            f"- Load average (1/5/15 min) at start: {self.load_before}; at end: {load_average()}"
            " (other jobs shared the machine when this is above ~0.5)",
            f"- 1-minute load sampled every 5 s during the run: median {self.sampler.median():.2f}, "
            f"peak {self.sampler.peak():.2f} (this benchmark itself accounts for up to ~1-2)",
        ]

    def others_load(self, own_load: float = 1.0) -> float:
        """Load from other jobs: the 1-minute load at start, or the run's median minus its own load."""
        return max(_one_minute(self.load_before), self.sampler.median() - own_load)

    def contended(self, own_load: float = 1.0) -> bool:
        """True when other jobs used at least half the CPUs (own_load: CPUs the benchmark keeps busy)."""
        return self.others_load(own_load) >= CONTENDED_LOAD_PER_CPU * self.cpus

    def contention(self, own_load: float = 1.0) -> list[str]:
        """A markdown bullet warning that the numbers are contended, or nothing."""
        if not self.contended(own_load):
            return []
        return [
            f"- **Contended run**: other jobs kept about {self.others_load(own_load):.1f} of the {self.cpus} "
            "CPUs busy (1-minute load at start, or the median during the run minus this benchmark's own "
            f"~{own_load:.0f}). Absolute seconds are inflated and noisy; the ratios, measured side by side "
            "and interleaved, are the figures to read."
        ]


# Other jobs' load per CPU from which a benchmark is visibly slowed.
CONTENDED_LOAD_PER_CPU = 0.5


def _one_minute(loads: str) -> float:
    try:
        return float(loads.split("/")[0])
    except ValueError:
        return 0.0


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub markdown table; the first column is left-aligned, the others right-aligned."""
    align = [":---", *("---:" for _ in headers[1:])]
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def replace_section(document: str, title: str, body: str) -> str:
    """The document with `## title` (up to the next `## ` heading) replaced by body, or body appended."""
    block = f"## {title}\n\n{body.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(title)}[ \t]*\n.*?(?=^## |\Z)", re.MULTILINE | re.DOTALL)
    if pattern.search(document):
        # A function replacement: body text is inserted literally (backslashes in it stay as they are).
        return pattern.sub(lambda _: block + "\n", document, count=1).rstrip("\n") + "\n"
    return document.rstrip("\n") + "\n\n" + block


def write_section(title: str, body: str, path: Path = BENCHMARKS_MD) -> Path:
    """Replace (or add) one `## title` section of the benchmarks page, keeping every other section."""
    path.parent.mkdir(parents=True, exist_ok=True)
    current = path.read_text(encoding="utf-8") if path.is_file() else _INTRO
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_text(replace_section(current, title, body), encoding="utf-8")
    tmp.replace(path)  # a reader (or another benchmark) never sees a half-written page
    return path


def seconds(value: float) -> str:
    """Seconds with three significant-ish digits for a table cell."""
    if value < 1:
        return f"{value:.3f}"
    return f"{value:.2f}" if value < 100 else f"{value:.0f}"


def grid_shape(count: int) -> tuple[int, int]:
    """(a, b) with a x b == count and a the largest divisor of count up to its square root."""
    first = next(d for d in range(math.isqrt(count), 0, -1) if count % d == 0)
    return first, count // first


def parse_counts(text: str) -> list[int]:
    """Comma-separated counts with optional k/M suffixes or underscores: '100k,1M,5_000_000'."""
    scale = {"k": 1_000, "m": 1_000_000}
    counts = []
    for part in (p.strip().lower().replace("_", "") for p in text.split(",")):
        if part:
            factor = scale.get(part[-1], 1)
            counts.append(round(float(part.rstrip("km")) * factor))
    return counts


def human_count(count: int) -> str:
    """100000 -> '100k', 1000000 -> '1M', others with thousands separators."""
    if count % 1_000_000 == 0:
        return f"{count // 1_000_000}M"
    if count % 1_000 == 0:
        return f"{count // 1_000}k"
    return f"{count:,}"
