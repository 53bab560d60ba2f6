"""What a drift check reports and where it goes: the summary, MLflow, the email (gauges: drift_metrics)."""

from __future__ import annotations

import html
import logging
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, computed_field

from retrain.drift_metrics import NOT_CONFIGURED, push_drift_metrics
from retrain.drift_report import FeatureDrift, Sampling
from retrain.notify import mail_settings, send_email
from retrain.settings import Settings

if TYPE_CHECKING:
    from retrain.registry import VersionInfo

log = logging.getLogger(__name__)

MAX_ATTACHMENT_BYTES = 15 * 1024 * 1024
"""Attach reports up to this total size (an Evidently report is ~4 MB); larger ones are only linked."""
DriftKind = Literal["input", "predictions"]


class DriftSummary(BaseModel):
    """One drift check of one day: per-column scores, the share of drifted columns and the verdicts."""

    model_config = ConfigDict(frozen=True, extra="ignore")  # ignore: computed fields come back from JSON

    dataset: str
    day: date
    kind: DriftKind
    model_version: int
    reference: str
    features: tuple[FeatureDrift, ...]
    share: float
    share_threshold: float
    feature_threshold: float
    key_features: tuple[str, ...]
    sampling: Sampling
    report_path: str
    notes: tuple[str, ...] = ()
    logged_to_mlflow: bool = False
    pushed: bool = False

    @computed_field  # type: ignore[prop-decorator]
    @property
    def drifted_features(self) -> list[str]:
        """Columns whose score reached the threshold."""
        return [f.column for f in self.features if f.drifted]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def dataset_drift(self) -> bool:
        """The share of drifted columns reached the spec's share_threshold."""
        return self.share >= self.share_threshold

    @computed_field  # type: ignore[prop-decorator]
    @property
    def key_drift(self) -> list[str]:
        """Drifted columns among the spec's key features."""
        return [c for c in self.drifted_features if c in self.key_features]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def alert(self) -> bool:
        """Whether this check asks for an email: dataset drift or any key feature drifted."""
        return self.dataset_drift or bool(self.key_drift)

    @property
    def sampled(self) -> bool:
        """Whether either side was sampled."""
        return self.sampling.sampled

    def headline(self) -> str:
        """e.g. ``2 of 6 features`` (input) or ``prediction log: 2 of 5 columns``."""
        counted = f"{len(self.drifted_features)} of {len(self.features)}"
        return f"{counted} features" if self.kind == "input" else f"prediction log: {counted} columns"


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

    @property
    def emailed(self) -> bool:
        """An email was sent (SMTP) or written to the maildir sink."""
        return self.delivered_to is not None


def alert_reasons(summary: DriftSummary) -> list[str]:
    """Why a check asks for an email (empty: it does not)."""
    reasons = []
    if summary.dataset_drift:
        reasons.append(
            f"{summary.kind}: drift share {summary.share:.2f} reached {summary.share_threshold:.2f}"
        )
    for column in summary.key_drift:
        drift = next(f for f in summary.features if f.column == column)
        reasons.append(
            f"{summary.kind}: key feature {column} score {drift.score:.3f} reached {drift.threshold:.3f}"
        )
    return reasons


def drift_subject(summaries: Sequence[DriftSummary]) -> str:
    """e.g. ``[retrain] drift detected in retail_demand on 2026-03-12: 2 of 6 features``."""
    first = summaries[0]
    parts = "; ".join(s.headline() for s in summaries)
    return f"[retrain] drift detected in {first.dataset} on {first.day.isoformat()}: {parts}"


def summary_table(summary: DriftSummary) -> str:
    """The per-column table of one check as HTML."""
    rows = []
    for f in sorted(summary.features, key=lambda f: f.score, reverse=True):
        key = " (key)" if f.column in summary.key_features else ""
        verdict = "<b>drift</b>" if f.drifted else "ok"
        rows.append(
            f"<tr><td>{html.escape(f.column)}{key}</td><td>{html.escape(f.method_name)}</td>"
            f"<td>{f.score:.4f}</td><td>{f.threshold:.3f}</td><td>{verdict}</td></tr>"
        )
    return (
        '<table border="1" cellpadding="4" cellspacing="0">'
        "<tr><th>feature</th><th>method</th><th>score</th><th>threshold</th><th>drift</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def drift_email_html(summaries: Sequence[DriftSummary], reasons: Sequence[str]) -> str:
    """The email body: why, then per check the share, the sampling note and the table."""
    parts = ["<p>" + "<br>".join(html.escape(r) for r in reasons) + "</p>"]
    for s in summaries:
        title = "Input drift (curated batch)" if s.kind == "input" else "Prediction log drift"
        parts.append(
            f"<h3>{title}: {s.headline()}</h3>"
            f"<p>Model v{s.model_version}; reference: {html.escape(s.reference)}.<br>"
            f"Drift share {s.share:.2f} (threshold {s.share_threshold:.2f}); "
            f"dataset drift: {'yes' if s.dataset_drift else 'no'}.<br>"
            f"{html.escape(s.sampling.describe())}</p>"
            + summary_table(s)
            + f"<p>Report: {html.escape(s.report_path)}</p>"
            + "".join(f"<p><i>{html.escape(n)}</i></p>" for n in s.notes)
        )
    return "\n".join(parts)


def split_attachments(paths: Sequence[str], limit: int = MAX_ATTACHMENT_BYTES) -> tuple[list[str], list[str]]:
    """(attached, linked): reports in order while their total size stays under the limit."""
    attached: list[str] = []
    linked: list[str] = []
    total = 0
    for path in paths:
        size = Path(path).stat().st_size if Path(path).is_file() else None
        if size is not None and total + size <= limit:
            attached.append(path)
            total += size
        else:
            linked.append(path)
    return attached, linked


def alert_on_drift(
    settings: Settings, summaries: Sequence[DriftSummary], day: date, notify: bool = True
) -> DriftAlert:
    """Email the summary table with the HTML reports attached when any check reached a threshold.

    notify=False decides the same way but sends nothing (``retrain drift --no-email``).
    """
    alerting = [s for s in summaries if s.alert]
    reasons = tuple(r for s in alerting for r in alert_reasons(s))
    if not alerting:
        log.info("drift day=%s: no alert (no share or key feature over threshold)", day)
        return DriftAlert(day=day, alert=False)
    subject = drift_subject(alerting)
    attached, linked = split_attachments([s.report_path for s in alerting])
    if not notify:
        log.info("drift day=%s: alert %r not emailed (notify off)", day, subject)
        return DriftAlert(day=day, alert=True, reasons=reasons, subject=subject)
    body = drift_email_html(summaries, reasons)
    if linked:
        body += (
            "<p>Too large to attach (open from the drift reports folder): "
            + ", ".join(html.escape(p) for p in linked)
            + "</p>"
        )
    where = send_email(mail_settings(settings), subject, body, [Path(p) for p in attached])
    log.info("drift day=%s: emailed %r to %s", day, subject, where)
    return DriftAlert(
        day=day,
        alert=True,
        reasons=reasons,
        subject=subject,
        delivered_to=where,
        attachments=tuple(attached),
        linked=tuple(linked),
    )


def publish_summary(settings: Settings, summary: DriftSummary, version: VersionInfo) -> DriftSummary:
    """Write the JSON summary, log report and summary to the production run, push the gauges."""
    report = Path(summary.report_path)
    notes = list(summary.notes)
    logged = False
    if version.run_id:
        logged = _log_to_run(settings, version.run_id, summary, report, notes)
    else:
        notes.append(f"not logged to MLflow: v{version.version} has no run")
    not_pushed = push_drift_metrics(settings, summary)
    if not_pushed and not_pushed != NOT_CONFIGURED:
        notes.append(not_pushed)
    summary = summary.model_copy(
        update={"notes": tuple(notes), "logged_to_mlflow": logged, "pushed": not_pushed is None}
    )
    report.with_suffix(".json").write_text(summary.model_dump_json(indent=2), encoding="utf-8")
    log.info(
        "drift kind=%s day=%s model_version=%d drifted=%s share=%.3f alert=%s sampled=%s",
        summary.kind,
        summary.day,
        summary.model_version,
        ",".join(summary.drifted_features) or "-",
        summary.share,
        summary.alert,
        summary.sampled,
    )
    return summary


def _log_to_run(
    settings: Settings, run_id: str, summary: DriftSummary, report: Path, notes: list[str]
) -> bool:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from retrain.tracking import configure_mlflow

    configure_mlflow(settings)
    client = MlflowClient(tracking_uri=settings.tracking_uri)
    folder = f"drift/date={summary.day.isoformat()}"
    try:
        client.log_artifact(run_id, str(report), folder)
        client.log_dict(run_id, summary.model_dump(mode="json"), f"{folder}/{summary.kind}_drift.json")
    except (MlflowException, OSError) as exc:
        # The verdict and the email matter more than the copy in MLflow: note it and go on.
        log.warning("drift report not logged to run %s: %s", run_id, exc)
        notes.append(f"not logged to MLflow run {run_id}: {exc}")
        return False
    return True
