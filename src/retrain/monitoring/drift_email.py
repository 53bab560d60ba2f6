"""The drift email: a subject, a summary table per check, where the reports are, small attachments.

An Evidently HTML report is several MB (its JavaScript is inlined), so reports are never attached
raw: each is gzip-compressed and attached only when the compressed file is at most
``MAX_ATTACHMENT_BYTES``; otherwise the email names the report's path under RETRAIN_HOME and its
copy in the production run's MLflow artifacts. The email stays well under a few MB whatever the data.
"""

from __future__ import annotations

import gzip
import html
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from retrain.monitoring.drift_report import FeatureDrift
    from retrain.monitoring.drift_summary import DriftSummary

MAX_ATTACHMENT_BYTES = 1024 * 1024
"""Attach a compressed report up to this size; larger ones are named, not attached."""
TITLES = {"input": "Input drift (curated window)", "predictions": "Prediction log drift"}


@dataclass(frozen=True)
class DriftEmail:
    """Subject, HTML body, the compressed reports to attach and the reports only named."""

    subject: str
    html: str
    attachments: list[Path]
    linked: list[str]

    @property
    def approx_bytes(self) -> int:
        """Body plus base64-encoded attachments: roughly the message size on the wire."""
        attached = sum(p.stat().st_size for p in self.attachments)
        return len(self.html.encode("utf-8")) + attached * 4 // 3


def drift_subject(summaries: Sequence[DriftSummary]) -> str:
    """e.g. ``[retrain] drift detected in retail_demand on 2026-03-12: 2 of 6 features``."""
    first = summaries[0]
    parts = "; ".join(s.headline() for s in summaries)
    return f"[retrain] drift detected in {first.dataset} on {first.day.isoformat()}: {parts}"


def _scored(f: FeatureDrift) -> str:
    return f"{html.escape(f.column)} {f.score:.3f}"


def html_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A bordered HTML table; cells are HTML already (escape text before passing it)."""
    head = "<tr>" + "".join(f"<th>{h}</th>" for h in headers) + "</tr>"
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table border="1" cellpadding="4" cellspacing="0">{head}{body}</table>'


def overview_table(summaries: Sequence[DriftSummary]) -> str:
    """One row per check: window, rows compared, share drifted, drifted columns with scores, target."""
    rows: list[list[str]] = []
    for s in summaries:
        drifted = ", ".join(_scored(f) for f in s.features if f.drifted) or "-"
        target = (
            "-" if s.target is None else _scored(s.target) + (" <b>drift</b>" if s.target.drifted else " ok")
        )
        share = "-" if s.share is None else f"{s.share:.2f} (threshold {s.share_threshold:.2f})"
        compared = f"{s.rows:,} vs {s.reference_rows:,}"
        rows.append([s.kind, html.escape(s.window), compared, share, drifted, target, html.escape(s.verdict)])
    headers = ["check", "window", "rows (current vs reference)", "share drifted"]
    return html_table([*headers, "drifted features (score)", "target", "verdict"], rows)


def column_table(summary: DriftSummary) -> str:
    """The per-column table of one check as HTML, the target last."""
    rows: list[list[str]] = []
    columns = sorted(summary.features, key=lambda f: f.score, reverse=True)
    for f in [*columns, *([summary.target] if summary.target is not None else [])]:
        role = " (key)" if f.column in summary.key_features else ""
        role = " (target)" if summary.target is not None and f is summary.target else role
        noise = "-" if f.noise is None else f"{f.noise:.4f}"
        name, verdict = html.escape(f.column) + role, "<b>drift</b>" if f.drifted else "ok"
        rows.append(
            [name, html.escape(f.method_name), f"{f.score:.4f}", noise, f"{f.threshold:.3f}", verdict]
        )
    headers = ["column", "method", "score", "reference windows max", "threshold", "drift"]
    return html_table(headers, rows)


def check_section(summary: DriftSummary) -> str:
    """Heading, reference, sampling and threshold notes, column table and where the report is."""
    s = summary
    lines = [f"Model v{s.model_version}; reference: {html.escape(s.reference)}."]
    if s.sampling is not None:
        lines.append(html.escape(s.sampling.describe()))
    if s.calibration:
        lines.append(html.escape(s.calibration))
    where = [f"Report: {html.escape(s.report_path)}"] if s.report_path else []
    where += [f"MLflow: {html.escape(s.mlflow_report)}"] if s.mlflow_report else []
    table = column_table(s) if s.features or s.target is not None else ""
    return (
        f"<h3>{TITLES[s.kind]}: {html.escape(s.verdict)}</h3><p>{'<br>'.join(lines)}</p>{table}"
        + (f"<p>{'<br>'.join(where)}</p>" if where else "")
        + "".join(f"<p><i>{html.escape(n)}</i></p>" for n in s.notes)
    )


def compress_report(path: Path, folder: Path) -> Path:
    """``folder/<name>.gz``: the report gzip-compressed (fixed mtime: same report, same bytes)."""
    target = folder / f"{path.name}.gz"
    with (
        path.open("rb") as src,
        target.open("wb") as raw,
        gzip.GzipFile(filename=path.name, mode="wb", fileobj=raw, mtime=0) as out,
    ):
        shutil.copyfileobj(src, out)
    return target


def split_attachments(
    paths: Sequence[str], folder: Path, limit: int = MAX_ATTACHMENT_BYTES
) -> tuple[list[Path], list[str]]:
    """(attached, linked): each report compressed into ``folder``; attached when at most ``limit`` bytes."""
    attached: list[Path] = []
    linked: list[str] = []
    for path in paths:
        report = Path(path)
        if not report.is_file():
            linked.append(path)
            continue
        packed = compress_report(report, folder)
        if packed.stat().st_size <= limit:
            attached.append(packed)
        else:
            packed.unlink()
            linked.append(path)
    return attached, linked


@contextmanager
def compose_drift_email(
    summaries: Sequence[DriftSummary], alerting: Sequence[DriftSummary], reasons: Sequence[str]
) -> Iterator[DriftEmail]:
    """The email for the day's checks; compressed attachments live in a temporary folder until exit."""
    reports = [s.report_path for s in alerting if s.report_path]
    with tempfile.TemporaryDirectory(prefix="retrain-drift-mail-") as tmp:
        attached, linked = split_attachments(reports, Path(tmp))
        parts = [
            "<p>" + "<br>".join(html.escape(r) for r in reasons) + "</p>",
            overview_table(summaries),
            *(check_section(s) for s in summaries),
        ]
        if attached:
            parts.append("<p>Attached (gzip): " + ", ".join(html.escape(p.name) for p in attached) + "</p>")
        if linked:
            parts.append(
                f"<p>Not attached (over {MAX_ATTACHMENT_BYTES // 1024} KB compressed), open from the paths "
                "above: " + ", ".join(html.escape(Path(p).name) for p in linked) + "</p>"
            )
        yield DriftEmail(drift_subject(alerting), "\n".join(parts), attached, linked)
