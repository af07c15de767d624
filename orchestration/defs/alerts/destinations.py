"""Where alerts are sent besides ``prod.alerts`` and the sensor log: the destinations the environment configures.

- ``SHOPLAKE_ALERT_WEBHOOK_URL``: a webhook taking Slack-compatible JSON (``{"text": ...}``): Slack,
  Mattermost, Rocket.Chat, Teams workflows and most chat tools accept it.
- ``SHOPLAKE_SMTP_HOST`` (and ``_PORT``, default 587 or 25 without a user; ``_USER``, ``_PASSWORD``,
  ``_FROM``, ``_TO``: comma-separated): e-mail. STARTTLS is used whenever the server offers it, and
  port 465 means TLS from the start.

Secrets (the webhook URL is one) are read from the environment only, never stored in the alert table
and kept out of reprs and error texts. A destination that fails raises ``DeliveryFailed``; the caller
keeps the alert pending and tries again on the sensor's next tick.
"""

from __future__ import annotations

import json
import os
import smtplib
import ssl
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Protocol

SEND_TIMEOUT_S = 10.0  # a destination that hangs delays a tick by at most this, once: it is skipped for the rest of it
DEFAULT_DAGSTER_URL = "http://127.0.0.1:3000"


class DeliveryFailed(RuntimeError):
    """A destination did not take the alert (unreachable, refused, or answered with an error)."""


class Message(Protocol):
    kind: str
    subject: str
    message: str
    link: str


def text_of(alert: Message) -> str:
    return f"[Shoplake {alert.kind}] {alert.subject}\n{alert.message}\n{alert.link}"


@dataclass(frozen=True)
class Webhook:
    url: str = field(repr=False)  # a chat webhook URL is a secret: whoever has it can post
    name: str = "webhook"

    def send(self, alert: Message) -> None:
        body = json.dumps({"text": text_of(alert)}).encode()
        request = urllib.request.Request(
            self.url, data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=SEND_TIMEOUT_S) as response:
                response.read()
        except urllib.error.HTTPError as error:  # its text holds the status, never the URL
            raise DeliveryFailed(f"webhook answered HTTP {error.code}") from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise DeliveryFailed(f"webhook unreachable: {type(reason).__name__}: {reason}") from None


@dataclass(frozen=True)
class Email:
    host: str
    port: int
    sender: str
    recipients: tuple[str, ...]
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    name: str = "email"

    def send(self, alert: Message) -> None:
        mail = EmailMessage()
        mail["Subject"] = f"[Shoplake {alert.kind}] {alert.subject}"
        mail["From"] = self.sender
        mail["To"] = ", ".join(self.recipients)
        mail.set_content(f"{alert.message}\n\n{alert.link}\n")
        try:
            if self.port == 465:
                smtp = smtplib.SMTP_SSL(
                    self.host, self.port, timeout=SEND_TIMEOUT_S, context=ssl.create_default_context()
                )
            else:
                smtp = smtplib.SMTP(self.host, self.port, timeout=SEND_TIMEOUT_S)
            with smtp:
                smtp.ehlo()
                if self.port != 465 and smtp.has_extn("starttls"):
                    smtp.starttls(context=ssl.create_default_context())
                    smtp.ehlo()
                if self.user:
                    smtp.login(self.user, self.password or "")
                smtp.send_message(mail)
        except (smtplib.SMTPException, OSError) as error:
            raise DeliveryFailed(f"SMTP {self.host}:{self.port}: {type(error).__name__}: {error}") from None


Destination = Webhook | Email


class DestinationMisconfigured(ValueError):
    pass


def configured(env: Mapping[str, str] | None = None) -> list[Destination]:
    """The destinations the environment configures, in a fixed order (webhook, then e-mail); empty
    when none is: alerts then go to the table and the log only."""
    env = os.environ if env is None else env
    out: list[Destination] = []
    url = (env.get("SHOPLAKE_ALERT_WEBHOOK_URL") or "").strip()
    if url:
        if not url.startswith(("http://", "https://")):
            raise DestinationMisconfigured(
                "SHOPLAKE_ALERT_WEBHOOK_URL must be an http:// or https:// URL: fix or unset it"
            )
        out.append(Webhook(url))
    host = (env.get("SHOPLAKE_SMTP_HOST") or "").strip()
    if host:
        user = env.get("SHOPLAKE_SMTP_USER") or None
        port_text = env.get("SHOPLAKE_SMTP_PORT") or ("587" if user else "25")
        if not port_text.isdigit():
            raise DestinationMisconfigured(f"SHOPLAKE_SMTP_PORT must be a port number, got {port_text!r}")
        recipients = tuple(a.strip() for a in (env.get("SHOPLAKE_SMTP_TO") or "").split(",") if a.strip())
        sender = (env.get("SHOPLAKE_SMTP_FROM") or "").strip()
        if not recipients or not sender:
            raise DestinationMisconfigured(
                "SHOPLAKE_SMTP_HOST is set: set SHOPLAKE_SMTP_FROM and SHOPLAKE_SMTP_TO (comma-separated) too, "
                "or unset it"
            )
        out.append(Email(host, int(port_text), sender, recipients, user, env.get("SHOPLAKE_SMTP_PASSWORD") or None))
    return out


def dagster_url(env: Mapping[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    return (env.get("SHOPLAKE_DAGSTER_URL") or DEFAULT_DAGSTER_URL).rstrip("/")


def run_link(run_id: str, env: Mapping[str, str] | None = None) -> str:
    return f"{dagster_url(env)}/runs/{run_id}"


def asset_link(path: list[str] | tuple[str, ...], checks: bool = False, env: Mapping[str, str] | None = None) -> str:
    return f"{dagster_url(env)}/assets/{'/'.join(path)}" + ("?view=checks" if checks else "")
