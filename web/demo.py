"""`peerboard demo`: the seeded cohort behind a real (mock) OpenID provider on loopback.

Sign-in in the demo goes through exactly the production code path (Authlib, PKCE, nonce,
id-token checks); only the provider differs: oidc-provider-mock, offering the seeded people
as one-click choices. Settings refuse a demo provider outside demo/development.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from services.demo import DEMO_PEOPLE
from web.settings import Environment, Settings, load_settings

DEMO_PROVIDER = "demo"
DEFAULT_IDP_PORT = 9400


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


def demo_settings(*, host: str, port: int, database_url: str, issuer: str) -> Settings:
    provider = {
        "name": DEMO_PROVIDER,
        "issuer": issuer,
        "client_id": "peerboard-demo",
        "client_secret": secrets.token_urlsafe(24),
        "label": "choose one of the demo people",
    }
    return load_settings(
        PEERBOARD_ENV=Environment.demo,
        DATABASE_URL=database_url,
        PEERBOARD_BASE_URL=f"http://{host}:{port}",
        PEERBOARD_OIDC_PROVIDERS=json.dumps([provider]),
        PEERBOARD_DEMO_IDENTITY_PROVIDER=DEMO_PROVIDER,
    )
