"""Where a drift check goes: the JSON summary, MLflow, the email (gauges: drift_metrics).

The summary model lives in drift_summary (re-exported here); the email itself (subject, summary table,
compressed attachments) is composed in drift_email.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from retrain.monitoring.drift_metrics import NOT_CONFIGURED, push_drift_metrics
from retrain.monitoring.drift_summary import DriftKind, DriftSummary
from retrain.notify import mail_settings, send_email
from retrain.settings import Settings

if TYPE_CHECKING:
    from retrain.registry import VersionInfo

log = logging.getLogger(__name__)

__all__ = ["DriftAlert", "DriftKind", "DriftSummary", "alert_on_drift", "alert_reasons", "publish_summary"]


class DriftAlert(BaseModel):
    """Whether the day's drift checks called for an email, why, and where it went (None: not sent)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    day: date
    alert: bool
    reasons: tuple[str, ...] = ()
    subject: str | None = None
    delivered_to: str | None = None
    attachments: tuple[str, ...] = ()
    linked: tuple[str, ...] = ()
    email_bytes: int | None = None

    @property
    def emailed(self) -> bool:
        """An email was sent (SMTP) or written to the maildir sink."""
        return self.delivered_to is not None


def alert_reasons(summary: DriftSummary) -> list[str]:
    """Why a check asks for an email (empty: it does not)."""
    reasons = []
    if summary.dataset_drift and summary.share is not None:
        reasons.append(
            f"{summary.kind}: drift share {summary.share:.2f} reached {summary.share_threshold:.2f}"
        )
    for column in summary.key_drift:
        drift = next(f for f in summary.features if f.column == column)
        reasons.append(
            f"{summary.kind}: key feature {column} score {drift.score:.3f} reached {drift.threshold:.3f}"
        )
    if summary.target is not None and summary.target.drifted:
        t = summary.target
        reasons.append(f"{summary.kind}: target {t.column} score {t.score:.3f} reached {t.threshold:.3f}")
    return reasons


def alert_on_drift(
    settings: Settings, summaries: Sequence[DriftSummary], day: date, notify: bool = True
) -> DriftAlert:
    """Email the summary table and where the reports are when any check reached a threshold.

    Reports are attached gzip-compressed when each is at most 1 MB so; larger ones are only named.
    notify=False decides the same way but sends nothing (``retrain drift --no-email``).
    """
    from retrain.monitoring.drift_email import compose_drift_email

    alerting = [s for s in summaries if s.alert]
    reasons = tuple(r for s in alerting for r in alert_reasons(s))
    if not alerting:
        log.info("drift day=%s: no alert (%s)", day, "; ".join(f"{s.kind}: {s.verdict}" for s in summaries))
        return DriftAlert(day=day, alert=False)
    with compose_drift_email(summaries, alerting, reasons) as email:
        if not notify:
            log.info("drift day=%s: alert %r not emailed (notify off)", day, email.subject)
            return DriftAlert(day=day, alert=True, reasons=reasons, subject=email.subject)
        where = send_email(mail_settings(settings), email.subject, email.html, email.attachments)
        log.info(
            "drift day=%s: emailed %r to %s (about %d bytes)", day, email.subject, where, email.approx_bytes
        )
        return DriftAlert(
            day=day,
            alert=True,
            reasons=reasons,
            subject=email.subject,
            delivered_to=where,
            attachments=tuple(p.name for p in email.attachments),
            linked=tuple(email.linked),
            email_bytes=email.approx_bytes,
        )


def publish_summary(settings: Settings, summary: DriftSummary, version: VersionInfo) -> DriftSummary:
    """Write the JSON summary, log report and summary to the production run, push the gauges."""
    notes = list(summary.notes)
    mlflow_report: str | None = None
    logged = False
    if version.run_id:
        logged, mlflow_report = _log_to_run(settings, version.run_id, summary, notes)
    else:
        notes.append(f"not logged to MLflow: v{version.version} has no run")
    not_pushed = push_drift_metrics(settings, summary)
    if not_pushed and not_pushed != NOT_CONFIGURED:
        notes.append(not_pushed)
    summary = summary.model_copy(
        update={
            "notes": tuple(notes),
            "logged_to_mlflow": logged,
            "pushed": not_pushed is None,
            "mlflow_report": mlflow_report,
        }
    )
    path = Path(summary.summary_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(summary.model_dump_json(indent=2), encoding="utf-8")
    log.info(
        "drift kind=%s day=%s window=%s..%s rows=%d model_version=%d verdict=%r drifted=%s share=%s "
        "target=%s alert=%s sampled=%s",
        summary.kind,
        summary.day,
        summary.window_start,
        summary.window_end,
        summary.rows,
        summary.model_version,
        summary.verdict,
        ",".join(summary.drifted_features) or "-",
        "-" if summary.share is None else f"{summary.share:.3f}",
        "-" if summary.target is None else f"{summary.target.score:.3f}",
        summary.alert,
        summary.sampled,
    )
    return summary


def _log_to_run(
    settings: Settings, run_id: str, summary: DriftSummary, notes: list[str]
) -> tuple[bool, str | None]:
    """Log the HTML report (when there is one) and the summary; the report's artifact location."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from retrain.tracking import configure_mlflow

    configure_mlflow(settings)
    client = MlflowClient(tracking_uri=settings.tracking_uri)
    folder = f"drift/date={summary.day.isoformat()}"
    try:
        located = None
        if summary.report_path is not None:
            report = Path(summary.report_path)
            client.log_artifact(run_id, str(report), folder)
            located = f"{client.get_run(run_id).info.artifact_uri}/{folder}/{report.name}"
        client.log_dict(run_id, summary.model_dump(mode="json"), f"{folder}/{summary.kind}_drift.json")
    except (MlflowException, OSError) as exc:
        # The verdict and the email matter more than the copy in MLflow: note it and go on.
        log.warning("drift report not logged to run %s: %s", run_id, exc)
        notes.append(f"not logged to MLflow run {run_id}: {exc}")
        return False, None
    return True, located
