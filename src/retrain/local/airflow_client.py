"""A small client for Airflow's public REST API (v2): JWT login, trigger, backfill, wait for runs.

It talks to the api-server the way a user, a CI job or `curl` would; `retrain stack` and the end-to-end
tests use it, nothing in the pipeline does.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import httpx

from retrain.errors import RetrainError
from retrain.local.processes import wait_until

TERMINAL_STATES = frozenset({"success", "failed"})


@dataclass(frozen=True)
class RunResult:
    """Final (or current) state of one DAG run as the REST API reports it."""

    dag_id: str
    run_id: str
    state: str
    logical_date: str | None
    run_type: str | None = None
    conf: dict[str, Any] = field(default_factory=dict)
    task_states: dict[str, str] = field(default_factory=dict)

    @property
    def succeeded(self) -> bool:
        """True when the run ended in success."""
        return self.state == "success"


@dataclass(frozen=True)
class BackfillCreated:
    """A backfill the api-server accepted, with the runs it queued (oldest first)."""

    backfill_id: int
    dag_id: str
    run_ids: list[str]


class AirflowClient:
    """REST client authenticated with a JWT from POST /auth/token (simple or FAB auth manager)."""

    def __init__(
        self,
        url: str,
        username: str,
        password: str,
        timeout: float = 30.0,
        alive: Callable[[], None] | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.username = username
        self._password = password
        self.timeout = timeout
        # Called in every wait loop: the local stack raises there when one of its processes died.
        self._alive = alive or (lambda: None)
        self._token: str | None = None

    def token(self) -> str:
        """A fresh JWT for the REST API."""
        response = httpx.post(
            f"{self.url}/auth/token",
            json={"username": self.username, "password": self._password},
            timeout=self.timeout,
        )
        _raise_for(response, "login")
        token: str = response.json()["access_token"]
        return token

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """An authenticated call (path under the api-server root, e.g. /api/v2/dags); re-logs in once on 401."""
        for attempt in range(2):
            if self._token is None:
                self._token = self.token()
            headers = {"Authorization": f"Bearer {self._token}"}
            response = httpx.request(
                method, f"{self.url}{path}", headers=headers, timeout=self.timeout, **kwargs
            )
            if response.status_code != 401 or attempt:
                return response
            self._token = None
        raise AssertionError("unreachable")

    def get_json(self, path: str, **params: Any) -> Any:
        """GET a path and return its JSON body, raising a RetrainError on an HTTP error."""
        response = self.request("GET", path, params=params or None)
        _raise_for(response, f"GET {path}")
        return response.json()

    def import_errors(self) -> list[dict[str, Any]]:
        """DAG files the dag-processor could not import."""
        errors: list[dict[str, Any]] = self.get_json("/api/v2/importErrors").get("import_errors") or []
        return errors

    def wait_for_dag(self, dag_id: str, timeout: float = 120.0) -> dict[str, Any]:
        """Wait until the dag-processor has parsed the DAG; fail fast on an import error."""

        def parsed() -> dict[str, Any] | None:
            self._alive()
            response = self.request("GET", f"/api/v2/dags/{dag_id}")
            if response.is_success:
                dag: dict[str, Any] = response.json()
                return dag
            errors = self.import_errors()
            if errors:
                raise RetrainError(f"DAG import errors: {[e.get('stack_trace', e) for e in errors]}")
            return None

        return wait_until(parsed, timeout, f"DAG {dag_id} to be parsed", interval=1)

    def set_paused(self, dag_id: str, paused: bool) -> None:
        """Pause or unpause a DAG (runs of a paused DAG stay queued)."""
        response = self.request("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": paused})
        _raise_for(response, f"{'pause' if paused else 'unpause'} {dag_id}")

    def trigger(
        self, dag_id: str, day: date, conf: Mapping[str, Any] | None = None, *, logical_date: bool = True
    ) -> str:
        """Trigger a run for a day (`date` in conf); return its run id.

        logical_date: file the run under the day's midnight UTC (a second run of that day is refused
        with 409); False: no logical date, so no data interval, and re-runs never conflict.
        """
        body = {
            "logical_date": midnight(day) if logical_date else None,
            "conf": {"date": day.isoformat(), **(conf or {})},
        }
        response = self.request("POST", f"/api/v2/dags/{dag_id}/dagRuns", json=body)
        _raise_for(response, f"trigger {dag_id} {day}")
        run_id: str = response.json()["dag_run_id"]
        return run_id

    def backfill(
        self, dag_id: str, start: date, end: date, reprocess: str = "completed", max_active_runs: int = 1
    ) -> BackfillCreated:
        """Create a backfill for start..end (inclusive); return the runs it queued."""
        body = {
            "dag_id": dag_id,
            "from_date": midnight(start),
            "to_date": midnight(end),
            "max_active_runs": max_active_runs,
            "reprocess_behavior": reprocess,
        }
        response = self.request("POST", "/api/v2/backfills", json=body)
        _raise_for(response, f"backfill {dag_id} {start}..{end}")
        backfill_id = int(response.json()["id"])
        return BackfillCreated(backfill_id, dag_id, self.backfill_run_ids(dag_id, start, end))

    def backfill_run_ids(self, dag_id: str, start: date, end: date) -> list[str]:
        """Run ids of the backfill runs with logical dates in start..end, oldest first."""
        runs = self.get_json(
            f"/api/v2/dags/{dag_id}/dagRuns",
            run_type="backfill",
            logical_date_gte=midnight(start),
            logical_date_lte=midnight(end),
            order_by="logical_date",
        )
        return [r["dag_run_id"] for r in runs["dag_runs"]]

    def run_state(self, dag_id: str, run_id: str) -> RunResult:
        """Current state of a run and of its task instances."""
        run = self.get_json(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
        tis = self.get_json(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances")
        states = {ti["task_id"]: str(ti["state"]) for ti in tis.get("task_instances", [])}
        return RunResult(
            dag_id,
            run_id,
            str(run["state"]),
            run.get("logical_date"),
            run.get("run_type"),
            run.get("conf") or {},
            states,
        )

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 300.0) -> RunResult:
        """Poll a run until it succeeds or fails; raise if it is still going after `timeout` seconds."""
        seen: list[RunResult] = []  # the last state, for the timeout message

        def finished() -> RunResult | None:
            self._alive()
            seen[:] = [self.run_state(dag_id, run_id)]
            return seen[-1] if seen[-1].state in TERMINAL_STATES else None

        return wait_until(
            finished,
            timeout,
            f"run {run_id} to finish",
            interval=2,
            detail=lambda: f"still {seen[-1].state}: {seen[-1].task_states}" if seen else "",
        )

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        """A task's XCom value (task results are small JSON dicts)."""
        path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}"
        value = self.get_json(path, deserialize=True)["value"]
        return json.loads(value) if isinstance(value, str) else value


def midnight(day: date) -> str:
    """ISO timestamp of a day's midnight UTC: the logical date of its daily run."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC).isoformat()


def _raise_for(response: httpx.Response, action: str) -> None:
    if not response.is_success:
        raise RetrainError(f"Airflow API {action}: HTTP {response.status_code} {response.text[:500]}")
