"""Outgoing mail: SMTP settings, the one function that composes a mail, unsubscribe links,
and the sender that delivers the outbox (services/outbox.py) with retries.

`compose` takes only strings that were already presented for the recipient (by the service
that wrote the notice): it formats no name or pseudonym itself. Headers carry no identity:
the Message-ID is a random id, threading uses the thread's public id, the unsubscribe link
names a random per-person key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import logging
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime, parseaddr
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services import outbox
from services.db import transaction
from services.models import utcnow

log = logging.getLogger("peerboard.mail")

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
FLAGS = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}


# --- configuration -------------------------------------------------------------------------


@dataclass(frozen=True)
class SmtpConfig:
    """Where mail goes, from `PEERBOARD_SMTP_URL`:
    `smtp://user:password@host:587?starttls=1` (STARTTLS required), `smtps://host:465`
    (TLS from the start), `smtp://host:25` (STARTTLS when offered). Optional query
    parameters: `cafile=/path.pem` (trust this CA, e.g. a test server's), `timeout=30`."""

    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    use_tls: bool = False
    start_tls: bool | None = None  # None: when the server offers it
    cafile: str | None = None
    timeout: float = 30.0

    @classmethod
    def parse(cls, url: str) -> SmtpConfig:
        parts = urlsplit(url.strip())
        if parts.scheme not in ("smtp", "smtps"):
            raise ValueError("PEERBOARD_SMTP_URL must be an smtp:// or smtps:// URL")
        if not parts.hostname:
            raise ValueError("PEERBOARD_SMTP_URL must name a host")
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        unknown = sorted(set(query) - {"starttls", "cafile", "timeout"})
        if unknown:
            raise ValueError(f"PEERBOARD_SMTP_URL: unknown parameter(s) {', '.join(unknown)}")
        use_tls = parts.scheme == "smtps"
        start_tls: bool | None = None
        if "starttls" in query:
            if query["starttls"].lower() not in FLAGS:
                raise ValueError("PEERBOARD_SMTP_URL: starttls must be 1 or 0")
            start_tls = FLAGS[query["starttls"].lower()]
        if use_tls and start_tls:
            raise ValueError("PEERBOARD_SMTP_URL: smtps:// is TLS already; drop starttls=1")
        try:
            timeout = float(query.get("timeout", "30"))
            port = parts.port or (465 if use_tls else 587 if start_tls else 25)
        except ValueError:
            raise ValueError("PEERBOARD_SMTP_URL: port and timeout must be numbers") from None
        if not 0 < timeout <= 600:
            raise ValueError("PEERBOARD_SMTP_URL: timeout must be between 0 and 600 seconds")
        username = unquote(parts.username) if parts.username else None
        password = unquote(parts.password) if parts.password else None
        if username and not (use_tls or start_tls) and parts.hostname not in LOOPBACK_HOSTS:
            raise ValueError(
                "PEERBOARD_SMTP_URL: a password would cross the network in clear text; "
                "use starttls=1 or smtps://"
            )
        return cls(
            host=parts.hostname,
            port=port,
            username=username,
            password=password,
            use_tls=use_tls,
            start_tls=start_tls,
            cafile=query.get("cafile") or None,
            timeout=timeout,
        )

    def client(self) -> aiosmtplib.SMTP:
        context = None
        if self.cafile:
            context = ssl.create_default_context(cafile=self.cafile)
        return aiosmtplib.SMTP(
            hostname=self.host,
            port=self.port,
            username=self.username,
            password=self.password,
            use_tls=self.use_tls,
            start_tls=self.start_tls,
            tls_context=context,
            timeout=self.timeout,
        )


# --- unsubscribe links (RFC 8058) ----------------------------------------------------------


def _signature(secret: str, key: str, kind: str) -> str:
    digest = hmac.new(secret.encode(), f"unsubscribe:{key}:{kind}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(digest.digest()).decode().rstrip("=")[:32]


def unsubscribe_token(secret: str, *, key: str, kind: str) -> str:
    """A link token for one person (by their random mail key) and one kind, signed."""
    return f"{key}.{kind}.{_signature(secret, key, kind)}"


def read_unsubscribe_token(secret: str, token: str) -> tuple[str, str] | None:
    """(mail key, kind) of a genuine token, else None."""
    key, _, rest = token.partition(".")
    kind, _, signature = rest.partition(".")
    if not key or not kind or len(token) > 200:
        return None
    if not hmac.compare_digest(signature.encode(), _signature(secret, key, kind).encode()):
        return None
    return key, kind


# --- composing -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    """One presented notice and where to read it (an absolute URL)."""

    text: str
    url: str


def compose(
    *,
    sender: str,
    to: str,
    subject: str,
    lines: Sequence[Line],
    message_id: str,
    thread_id: str | None,
    unsubscribe_url: str,
    unsubscribe_label: str,
    settings_url: str,
    date: datetime,
) -> EmailMessage:
    """The one place a mail is put together, from strings already presented for `to`."""
    message = EmailMessage(policy=SMTP_POLICY)
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(date)
    message["Message-ID"] = message_id
    if thread_id is not None:
        # Every mail about one thread answers the same (never sent) root, so mail clients
        # keep them together; the root names the thread's public id only.
        message["In-Reply-To"] = thread_id
        message["References"] = thread_id
    message["List-Unsubscribe"] = f"<{unsubscribe_url}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies
    footer = (
        f"You receive this because of your Peerboard settings: {settings_url}\n"
        f"Stop e-mails about {unsubscribe_label}: {unsubscribe_url}\n"
    )
    text = "\n\n".join(f"{line.text}\n{line.url}" for line in lines)
    message.set_content(f"{text}\n\n-- \n{footer}", cte="quoted-printable")
    e = html.escape
    items = "".join(
        f'<li><p>{e(line.text)}</p><p><a href="{e(line.url)}">Open in Peerboard</a></p></li>'
        for line in lines
    )
    message.add_alternative(
        "<!doctype html><html><body>"
        f'<ul style="list-style:none;padding:0">{items}</ul>'
        '<hr><p style="color:#555;font-size:90%">'
        f'<a href="{e(settings_url)}">Your notification settings</a> · '
        f'<a href="{e(unsubscribe_url)}">Stop e-mails about {e(unsubscribe_label)}</a></p>'
        "</body></html>",
        subtype="html",
        cte="quoted-printable",
    )
    return message


# --- sending -------------------------------------------------------------------------------


@dataclass
class SendReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0

    def __str__(self) -> str:
        return f"{self.sent} sent, {self.retried} to retry, {self.failed} failed"


def _permanent(exc: Exception) -> outbox.Status | None:
    """A refusal that retrying cannot fix: the address (a bounce) or this message (5xx).
    Authentication and connection trouble is ours to fix, so it is retried."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [r.code for r in exc.recipients]
        return outbox.Status.bounced if codes and min(codes) >= 500 else None
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return None
    if isinstance(exc, aiosmtplib.SMTPRecipientRefused) and exc.code >= 500:
        return outbox.Status.bounced
    if isinstance(exc, aiosmtplib.SMTPResponseException) and exc.code >= 500:
        return outbox.Status.failed
    return None


@dataclass
class Mailer:
    """Delivers the outbox over SMTP. `sender` is the From header (`PEERBOARD_MAIL_FROM`)."""

    smtp: SmtpConfig
    sender: str
    base_url: str
    secret: str
    batch: int = 20

    @property
    def domain(self) -> str:
        address = parseaddr(self.sender)[1]
        return address.rpartition("@")[2] or urlsplit(self.base_url).hostname or "localhost"

    def message_for(self, claimed: outbox.Claimed, *, to: str, now: datetime) -> EmailMessage:
        kind = (
            outbox.DIGEST
            if claimed.kind == outbox.DIGEST
            else outbox.preference_kind(claimed.kind) or claimed.kind
        )
        token = unsubscribe_token(self.secret, key=claimed.mail_key or "", kind=kind)
        label = (
            "the daily digest"
            if kind == outbox.DIGEST
            else outbox.KINDS[kind].label.lower()
            if kind in outbox.KINDS
            else "this kind of notice"
        )
        return compose(
            sender=self.sender,
            to=to,
            subject=claimed.subject,
            lines=[Line(item.text, self.base_url + (item.link or "/")) for item in claimed.items],
            message_id=f"<{claimed.public_id}@{self.domain}>",
            thread_id=(
                f"<thread.{claimed.thread_ref}@{self.domain}>" if claimed.thread_ref else None
            ),
            unsubscribe_url=f"{self.base_url}/mail/unsubscribe/{token}",
            unsubscribe_label=label,
            settings_url=f"{self.base_url}/settings/notifications",
            date=now,
        )

    async def send_due(
        self, sessions: async_sessionmaker[AsyncSession], *, now: datetime | None = None
    ) -> SendReport:
        """Claim one batch of due messages and deliver it over one SMTP connection; each
        outcome is recorded in its own transaction as soon as it is known."""
        now = now or utcnow()
        report = SendReport()
        async with transaction(sessions) as session:
            claimed = await outbox.claim(session, now=now, limit=self.batch)
        if not claimed:
            return report
        ready: list[tuple[outbox.Claimed, str]] = []
        for message in claimed:
            if message.to:
                ready.append((message, message.to))
            else:
                await self._record(
                    sessions, message, "no e-mail address", outbox.Status.failed, now, report
                )
        if not ready:
            return report
        client = self.smtp.client()
        try:
            await client.connect()
        except (aiosmtplib.SMTPException, OSError) as exc:
            log.warning("SMTP server %s:%s unavailable: %s", self.smtp.host, self.smtp.port, exc)
            for message, _ in ready:
                await self._record(sessions, message, f"connect: {exc}", None, now, report)
            return report
        try:
            for i, (message, to) in enumerate(ready):
                try:
                    composed = self.message_for(message, to=to, now=now)
                except Exception as exc:  # e.g. an address the mail format cannot carry
                    error = f"cannot compose: {type(exc).__name__}: {exc}"
                    await self._record(sessions, message, error, outbox.Status.failed, now, report)
                    continue
                try:
                    await client.send_message(composed)
                except (aiosmtplib.SMTPException, OSError) as exc:
                    await self._record(sessions, message, str(exc), _permanent(exc), now, report)
                    if not client.is_connected:
                        for rest, _ in ready[i + 1 :]:
                            await self._record(
                                sessions, rest, f"disconnected: {exc}", None, now, report
                            )
                        break
                    continue
                async with transaction(sessions) as session:
                    await outbox.mark_sent(
                        session, message_id=message.id, attempts=message.attempts, now=utcnow()
                    )
                report.sent += 1
        finally:
            if client.is_connected:
                try:
                    await client.quit()
                except (aiosmtplib.SMTPException, OSError):
                    client.close()
        return report

    async def _record(
        self,
        sessions: async_sessionmaker[AsyncSession],
        message: outbox.Claimed,
        error: str,
        permanent: outbox.Status | None,
        now: datetime,
        report: SendReport,
    ) -> None:
        async with transaction(sessions) as session:
            status = await outbox.mark_failed(
                session,
                message_id=message.id,
                attempts=message.attempts,
                error=error,
                permanent=permanent,
                now=now,
            )
        if status is outbox.Status.pending:
            report.retried += 1
        else:
            report.failed += 1
            log.warning("mail %s given up (%s): %s", message.public_id, status.value, error)


async def deliver_round(
    mailer: Mailer, sessions: async_sessionmaker[AsyncSession], *, now: datetime | None = None
) -> SendReport:
    """One round of the sender: bundle the digests that are due, then send until nothing
    is due (bounded, so one round always ends)."""
    now = now or utcnow()
    async with transaction(sessions) as session:
        await outbox.collect_digests(session, now=now)
    total = SendReport()
    for _ in range(50):
        report = await mailer.send_due(sessions, now=now)
        total.sent += report.sent
        total.retried += report.retried
        total.failed += report.failed
        if report.sent + report.retried + report.failed < mailer.batch:
            break
    return total
