"""`peerboard demo`: the seeded cohort behind a real (mock) OpenID provider on loopback.

Sign-in in the demo goes through exactly the production code path (Authlib, PKCE, nonce,
id-token checks); only the provider differs: oidc-provider-mock, offering the seeded people
as one-click choices. Settings refuse a demo provider outside demo/development.

Mail likewise goes through the production sender (the outbox, aiosmtplib) into a local SMTP
sink (aiosmtpd on 127.0.0.1) unless PEERBOARD_SMTP_URL names a server: nothing leaves the
machine, and /dev/mail shows each message with its delivery status.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from services.demo import DEMO_PEOPLE
from web.settings import Environment, Settings, load_settings

DEMO_PROVIDER = "demo"
DEFAULT_IDP_PORT = 9400
DEFAULT_SMTP_PORT = 9425


@dataclass(frozen=True)
class SunkMail:
    sender: str
    recipients: list[str]
    raw: bytes


@dataclass
class MailSink:
    """An aiosmtpd handler that accepts every message and keeps it (the demo's mail server)."""

    received: list[SunkMail] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.received.append(
                SunkMail(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content)
            )
        return "250 Message accepted for the demo sink"


@contextmanager
def run_demo_smtp_sink(port: int = DEFAULT_SMTP_PORT) -> Iterator[tuple[str, MailSink]]:
    """Serve an SMTP sink on 127.0.0.1:port in aiosmtpd's own thread; yields the
    PEERBOARD_SMTP_URL that reaches it and the sink."""
    import logging

    from aiosmtpd.controller import Controller

    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every command
    sink = MailSink()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield f"smtp://127.0.0.1:{port}?starttls=0", sink
    finally:
        controller.stop()


@contextmanager
def run_demo_identity_provider(port: int = DEFAULT_IDP_PORT) -> Iterator[str]:
    """Serve the mock provider on 127.0.0.1:port in a thread; yields its issuer URL."""
    import warnings

    import werkzeug.serving

    with warnings.catch_warnings():
        # The mock still imports authlib.jose, which Authlib marks deprecated.
        warnings.simplefilter("ignore", DeprecationWarning)
        from oidc_provider_mock import User, app

    provider_app = app(
        require_client_registration=False,
        require_nonce=True,
        user_claims=[
            User(
                sub=p.subject,
                claims={"name": p.display_name, "email": p.email, "email_verified": True},
            )
            for p in DEMO_PEOPLE
        ],
    )
    server = werkzeug.serving.make_server("127.0.0.1", port, provider_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="demo-idp", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def demo_settings(
    *, host: str, port: int, database_url: str, issuer: str, smtp_url: str | None = None
) -> Settings:
    """The demo's settings; `smtp_url` (the sink's) is used only when the environment sets
    no PEERBOARD_SMTP_URL of its own."""
    provider = {
        "name": DEMO_PROVIDER,
        "issuer": issuer,
        "client_id": "peerboard-demo",
        "client_secret": secrets.token_urlsafe(24),
        "label": "choose one of the demo people",
    }
    mail: dict[str, object] = {}
    if smtp_url is not None and not os.environ.get("PEERBOARD_SMTP_URL"):
        mail["PEERBOARD_SMTP_URL"] = smtp_url
        if not os.environ.get("PEERBOARD_MAIL_TICK_SECONDS"):
            mail["PEERBOARD_MAIL_TICK_SECONDS"] = 2  # a reply's mail shows within seconds
    return load_settings(
        **mail,
        PEERBOARD_ENV=Environment.demo,
        DATABASE_URL=database_url,
        PEERBOARD_BASE_URL=f"http://{host}:{port}",
        PEERBOARD_OIDC_PROVIDERS=json.dumps([provider]),
        PEERBOARD_DEMO_IDENTITY_PROVIDER=DEMO_PROVIDER,
    )
