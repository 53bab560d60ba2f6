"""A bounded local load loop: a few client threads posting predictions until told to stop (or a cap)."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import httpx


@dataclass(frozen=True)
class Outcome:
    """One request: when it started and ended (monotonic), its status (0: no answer) and the version."""

    path: str
    started: float
    ended: float
    status: int
    version: int | None
    error: str = ""


@dataclass
class LoadLoop:
    """`threads` clients cycling through (path, body) pairs; at most `max_requests` each, stop() ends it."""

    base_url: str
    requests: Sequence[tuple[str, dict[str, Any]]]
    threads: int = 4
    max_requests: int = 20_000
    outcomes: list[Outcome] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _workers: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __enter__(self) -> LoadLoop:
        for offset in range(self.threads):
            worker = threading.Thread(target=self._run, args=(offset,), daemon=True)
            worker.start()
            self._workers.append(worker)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def stop(self) -> list[Outcome]:
        """Stop every client and return what they saw, in start order."""
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=30)
        with self._lock:
            return sorted(self.outcomes, key=lambda o: o.started)

    def seen(self, version: int) -> Outcome | None:
        """The first answer (by end time) from `version`, if any yet."""
        with self._lock:
            found = [o for o in self.outcomes if o.version == version]
        return min(found, key=lambda o: o.ended) if found else None

    def count(self) -> int:
        """Requests answered so far."""
        with self._lock:
            return len(self.outcomes)

    def _run(self, offset: int) -> None:
        cycle = itertools.islice(itertools.cycle(self.requests), offset, None)
        with httpx.Client(base_url=self.base_url, timeout=30.0) as client:
            for _, (path, body) in zip(range(self.max_requests), cycle, strict=False):
                if self._stop.is_set():
                    return
                started = time.monotonic()
                try:
                    answer = client.post(path, json=body)
                    version = answer.json().get("model_version") if answer.status_code == 200 else None
                    outcome = Outcome(path, started, time.monotonic(), answer.status_code, version)
                    if answer.status_code != 200:
                        outcome = Outcome(path, started, outcome.ended, answer.status_code, None, answer.text)
                except httpx.HTTPError as exc:
                    outcome = Outcome(path, started, time.monotonic(), 0, None, repr(exc))
                with self._lock:
                    self.outcomes.append(outcome)
