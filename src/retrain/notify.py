"""Email from Airflow: the SMTP provider's notifier when SMTP is configured, else a local maildir sink.

Imported by DAG files, so it stays light: Airflow pieces are imported inside functions.
"""

from __future__ import annotations

import json
import mailbox
from collections.abc import Sequence
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from retrain.settings import Settings

SMTP_CONN_ID = "retrain_smtp"

FAILURE_SUBJECT = "[retrain] {{ dag.dag_id }} failed on {{ ds }} at task {{ ti.task_id }}"
FAILURE_BODY = (
    "<p>Task <b>{{ ti.task_id }}</b> of <b>{{ dag.dag_id }}</b> (run {{ run_id }}) failed"
    " after {{ ti.try_number }} attempt(s).</p><p>{{ exception }}</p>"
    "<p>Production model is unchanged unless the register task logged a promotion.</p>"
)


def smtp_connection_json(settings: Settings) -> str | None:
    """The Airflow connection (AIRFLOW_CONN_RETRAIN_SMTP) built from RETRAIN_SMTP_* settings, or None."""
    if not settings.smtp_host:
        return None
    conn: dict[str, Any] = {
        "conn_type": "smtp",
        "host": settings.smtp_host,
        "port": settings.smtp_port,
        "extra": {
            "from_email": settings.mail_from,
            "disable_ssl": True,
            "disable_tls": not settings.smtp_starttls,
            "timeout": 10,
            "retry_limit": 2,
        },
    }
    if settings.smtp_user:
        conn["login"] = settings.smtp_user
        conn["password"] = settings.smtp_password or ""
    return json.dumps(conn)


def maildir_path(settings: Settings) -> Path:
    """Where emails go when no SMTP server is configured."""
    return settings.resolved_home / "mail"


def write_to_maildir(
    settings: Settings,
    subject: str,
    html: str,
    attachments: Sequence[Path] = (),
    to: Sequence[str] | None = None,
) -> Path:
    """Deliver an email to the local maildir sink; returns the message file."""
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = settings.mail_from
    message["To"] = ", ".join(to or settings.mail_to)
    message.set_content(html, subtype="html")
    for attachment in attachments:
        message.add_attachment(
            attachment.read_bytes(), maintype="application", subtype="octet-stream", filename=attachment.name
        )
    box = mailbox.Maildir(maildir_path(settings), create=True)
    key = box.add(message)
    return maildir_path(settings) / "new" / key


def mail_settings(settings: Settings) -> Settings:
    """Settings to send with: SMTP when RETRAIN_SMTP_HOST is set or an Airflow connection ``retrain_smtp``
    exists (env var, secrets backend or metadata DB), else unchanged (the maildir sink)."""
    if settings.smtp_host:
        return settings
    try:
        from airflow.sdk import BaseHook

        conn = BaseHook.get_connection(SMTP_CONN_ID)
    except Exception:  # not defined, or no Airflow configuration here: either way, no connection
        return settings
    if not conn.host:
        return settings
    return settings.model_copy(update={"smtp_host": conn.host, "smtp_port": conn.port or settings.smtp_port})


def send_email(
    settings: Settings,
    subject: str,
    html: str,
    attachments: Sequence[Path] = (),
    to: Sequence[str] | None = None,
) -> str:
    """Send through the Airflow SMTP hook when SMTP is configured, else write to the maildir; says where."""
    if settings.smtp_host:
        from airflow.providers.smtp.hooks.smtp import SmtpHook

        with SmtpHook(smtp_conn_id=SMTP_CONN_ID) as hook:
            hook.send_email_smtp(
                to=list(to or settings.mail_to),
                subject=subject,
                html_content=html,
                from_email=settings.mail_from,
                files=[str(p) for p in attachments],
            )
        return f"smtp://{settings.smtp_host}:{settings.smtp_port}"
    return str(write_to_maildir(settings, subject, html, attachments, to))


def failure_notifier(settings: Settings | None = None) -> Any:
    """An on_failure_callback: the SMTP provider's SmtpNotifier, or a maildir notifier in local mode."""
    settings = settings or Settings()
    if settings.smtp_host:
        from airflow.providers.smtp.notifications.smtp import SmtpNotifier

        return SmtpNotifier(
            to=settings.mail_to,
            from_email=settings.mail_from,
            smtp_conn_id=SMTP_CONN_ID,
            subject=FAILURE_SUBJECT,
            html_content=FAILURE_BODY,
        )
    return _maildir_notifier(settings)


def _maildir_notifier(settings: Settings) -> Any:
    from airflow.sdk import BaseNotifier

    class MaildirNotifier(BaseNotifier):  # type: ignore[misc]
        """Renders the same subject and body as the SMTP notifier into the local maildir."""

        template_fields = ("subject", "html_content")

        def __init__(self) -> None:
            super().__init__()
            self.subject = FAILURE_SUBJECT
            self.html_content = FAILURE_BODY

        def notify(self, context: Any) -> None:
            write_to_maildir(settings, self.subject, self.html_content)

    return MaildirNotifier()
