"""Child processes of the local tooling and the tests: free ports, start, stop, and one polling helper.

Every child starts in its own session (process group), so a stop reaches the whole tree and a Ctrl-C in
the terminal reaches only the parent. `wait_until` is the one polling loop: callers give it a predicate
and say what they wait for, and a timeout names that.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import suppress
from pathlib import Path
from typing import TypeVar

import psutil

from retrain.errors import RetrainError

T = TypeVar("T")


class WaitTimeoutError(RetrainError, TimeoutError):
    """A `wait_until` ran out of time; the message names what it waited for."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when nothing listens on host:port."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
        return True


def start_process(
    command: Sequence[str],
    env: Mapping[str, str] | None,
    log_path: Path,
    *,
    cwd: Path | None = None,
    append: bool = False,
) -> subprocess.Popen[bytes]:
    """Start `command` in its own session, stdout and stderr to `log_path` (`env` None: inherit ours)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab" if append else "wb") as sink:
        return subprocess.Popen(
            list(command),
            env=None if env is None else dict(env),
            cwd=cwd,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_process(
    process: subprocess.Popen[bytes], timeout: float = 30.0, *, sig: int = signal.SIGTERM
) -> int:
    """Send `sig` to the process group, wait up to `timeout`, then SIGKILL the group; the exit code."""
    if process.poll() is None:
        _signal_group(process.pid, sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            _signal_group(process.pid, signal.SIGKILL)
            process.wait(timeout)
    return int(process.returncode)


def stop_process_trees(roots: Iterable[psutil.Process], timeout: float = 30.0) -> None:
    """SIGTERM each root's process group and every descendant (some start their own groups), all at once
    so shutdowns overlap, then SIGKILL whatever is left after `timeout` seconds."""
    roots = list(roots)
    tree: list[psutil.Process] = []
    for root in roots:
        with suppress(psutil.NoSuchProcess):
            tree += [root, *root.children(recursive=True)]
    for root in roots:
        _signal_group(root.pid, signal.SIGTERM)
    for member in tree:
        with suppress(psutil.NoSuchProcess):
            member.terminate()
    _, alive = psutil.wait_procs(tree, timeout=timeout)
    for leftover in alive:
        with suppress(psutil.NoSuchProcess):
            leftover.kill()
    for root in roots:
        _signal_group(root.pid, signal.SIGKILL)
    psutil.wait_procs(alive, timeout=5)


def wait_until(
    predicate: Callable[[], T | None],
    timeout: float,
    what: str,
    *,
    interval: float = 0.1,
    ignore: tuple[type[Exception], ...] = (),
    detail: Callable[[], str] | None = None,
) -> T:
    """Call `predicate` until it returns something truthy and return that; WaitTimeoutError after `timeout`.

    `what` completes "timed out waiting for ..."; exceptions of the `ignore` types count as "not yet" (the
    last one is quoted on timeout); `detail()` adds context to the timeout message (a log tail, a state).
    Any other exception from `predicate` (a process that died) ends the wait at once.
    """
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = predicate()
        except ignore as exc:
            last_error, value = exc, None
        if value:
            return value
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        time.sleep(min(interval, remaining))
    message = f"timed out after {timeout:g} s waiting for {what}"
    if last_error is not None:
        message += f" (last error: {last_error!r})"
    if detail is not None:
        message += f"\n{detail()}"
    raise WaitTimeoutError(message)


def _signal_group(pid: int, sig: int) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)
