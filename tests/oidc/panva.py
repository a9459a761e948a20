"""Start panva's ``oidc-provider`` (Node) on loopback and drive its sign-in pages.

The provider lives in ``tests/oidc/panva`` (``provider.mjs`` and a pinned ``package.json``);
``scripts/ensure-oidc-provider`` installs its ``node_modules``. When Node or the installed
package is missing, :func:`require_panva` skips the test, or fails it when
``PEERBOARD_REQUIRE_OIDC_PROVIDER=1`` (CI).

The provider is strict: authorization code flow only, PKCE with S256 required for every client,
``redirect_uri`` required and matched exactly against the registered ones, ID tokens signed
RS256 only. Scopes: ``openid``, ``email`` (email, email_verified), ``profile`` (name and the other
profile names, plus ``groups``) and ``groups``; the granted claims are in the ID token as well as
at the userinfo endpoint. An account with an ``email`` but no ``email_verified`` gets
``email_verified: true``.

Sign-in interaction: the provider sends the browser to ``/interaction/<uid>``, a login form with
a text field ``login`` (the account's ``sub``); then to the same path again for a consent form
with one "Allow" button. :func:`complete_login` submits both.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import pytest

PANVA_DIR = Path(__file__).resolve().parent / "panva"
PROVIDER_SCRIPT = PANVA_DIR / "provider.mjs"
PACKAGE_DIR = PANVA_DIR / "node_modules" / "oidc-provider"
REQUIRE_ENV = "PEERBOARD_REQUIRE_OIDC_PROVIDER"
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 5.0
MAX_STEPS = 20


def unavailable_reason() -> str | None:
    """Why the Node provider cannot run here, or None when it can."""
    if shutil.which("node") is None:
        return "Node.js is not installed (needed for the oidc-provider tests)"
    if shutil.which("npm") is None:
        return "npm is not installed (needed for the oidc-provider tests)"
    if not (PACKAGE_DIR / "package.json").is_file():
        return f"{PACKAGE_DIR} is missing: run scripts/ensure-oidc-provider"
    return None


def node_available() -> bool:
    """True when Node, npm and the installed ``oidc-provider`` package are all present."""
    return unavailable_reason() is None


def require_panva() -> None:
    """Skip the calling test when the provider cannot run (fail under
    ``PEERBOARD_REQUIRE_OIDC_PROVIDER=1``)."""
    reason = unavailable_reason()
    if reason is None:
        return
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{REQUIRE_ENV}=1 but {reason}")
    pytest.skip(reason)


@dataclass
class PanvaProvider:
    """A running provider. ``issuer`` is ``http://127.0.0.1:<port>`` (no trailing slash)."""

    issuer: str
    clients: list[dict[str, Any]]
    accounts: dict[str, dict[str, Any]]
    process: subprocess.Popen[str] = field(repr=False)
    _stderr: list[str] = field(default_factory=list, repr=False)

    @property
    def discovery_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    @property
    def authorization_endpoint(self) -> str:
        return f"{self.issuer}/auth"

    @property
    def token_endpoint(self) -> str:
        return f"{self.issuer}/token"

    @property
    def jwks_uri(self) -> str:
        return f"{self.issuer}/jwks"

    @property
    def userinfo_endpoint(self) -> str:
        return f"{self.issuer}/me"

    def logs(self) -> str:
        """What the provider has written to stderr so far."""
        return "".join(self._stderr)


def _pump(stream: Any, sink: list[str], lines: queue.Queue[str] | None) -> None:
    for line in iter(stream.readline, ""):
        sink.append(line)
        if lines is not None:
            lines.put(line)
    if lines is not None:
        lines.put("")


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def run_panva_provider(
    *, clients: list[dict[str, Any]], accounts: Mapping[str, Mapping[str, Any]]
) -> Iterator[PanvaProvider]:
    """Run the provider on a free 127.0.0.1 port for the duration of the block.

    ``clients``: client metadata dicts (``client_id``, ``client_secret``, ``redirect_uris``, and
    optionally e.g. ``token_endpoint_auth_method="client_secret_post"``).
    ``accounts``: ``{sub: claims}``, e.g.
    ``{"alice": {"email": ..., "name": ..., "groups": [...]}}``.
    Skips (or fails, see :func:`require_panva`) when Node or the package is missing.
    """
    require_panva()
    node = shutil.which("node")
    assert node is not None
    account_map = {sub: dict(claims) for sub, claims in accounts.items()}
    client_list = [dict(client) for client in clients]
    env = {
        **os.environ,
        "PROVIDER_CONFIG": json.dumps({"port": 0, "clients": client_list, "accounts": account_map}),
        "NODE_ENV": "test",
    }
    process = subprocess.Popen(
        [node, str(PROVIDER_SCRIPT)],
        cwd=PANVA_DIR,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
    )
    assert process.stdout is not None and process.stderr is not None
    stdout: list[str] = []
    stderr: list[str] = []
    lines: queue.Queue[str] = queue.Queue()
    pumps = [
        threading.Thread(target=_pump, args=(process.stdout, stdout, lines), daemon=True),
        threading.Thread(target=_pump, args=(process.stderr, stderr, None), daemon=True),
    ]
    for pump in pumps:
        pump.start()
    try:
        issuer = _wait_ready(process, lines, stdout, stderr)
        yield PanvaProvider(
            issuer=issuer,
            clients=client_list,
            accounts=account_map,
            process=process,
            _stderr=stderr,
        )
    finally:
        if process.stdin is not None:
            with suppress(OSError):
                process.stdin.close()
        _stop(process)
        for pump in pumps:
            pump.join(timeout=STOP_TIMEOUT)
        process.stdout.close()
        process.stderr.close()


def _wait_ready(
    process: subprocess.Popen[str],
    lines: queue.Queue[str],
    stdout: list[str],
    stderr: list[str],
) -> str:
    def fail(why: str) -> NoReturn:
        _stop(process)
        output = "".join(stdout) + "".join(stderr)
        raise RuntimeError(f"oidc-provider {why}; output:\n{output}")

    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            fail(f"did not print READY within {READY_TIMEOUT:.0f} s")
        try:
            line = lines.get(timeout=remaining)
        except queue.Empty:
            continue
        if line == "":
            process.wait(timeout=STOP_TIMEOUT)
            fail(f"exited with status {process.returncode} before READY")
        if line.startswith("READY "):
            return line.split(maxsplit=1)[1].strip()


# --- driving the sign-in pages ---------------------------------------------------------------


@dataclass
class _Form:
    action: str = ""
    method: str = "get"
    fields: dict[str, str] = field(default_factory=dict)


class _PageParser(HTMLParser):
    """Collects the forms of a page and the text of its ``error``/``error_description``."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[_Form] = []
        self.errors: dict[str, str] = {}
        self.text: list[str] = []
        self._in_form = False
        self._capture: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.forms.append(_Form(attr.get("action", ""), attr.get("method", "get").lower()))
            self._in_form = True
        elif tag == "input" and self._in_form and attr.get("name"):
            self.forms[-1].fields[attr["name"]] = attr.get("value", "")
        elif tag in {"p", "pre"} and attr.get("class") in {"error", "error_description"}:
            self._capture = attr["class"]

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._in_form = False
        elif tag in {"p", "pre"}:
            self._capture = None

    def handle_data(self, data: str) -> None:
        if data.strip():
            self.text.append(data.strip())
        if self._capture is not None:
            self.errors[self._capture] = self.errors.get(self._capture, "") + data.strip()


def _parse(html: str) -> _PageParser:
    parser = _PageParser()
    parser.feed(html)
    parser.close()
    return parser


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc


def _redirect_error(location: str) -> str | None:
    query = parse_qs(urlsplit(location).query)
    if "error" not in query:
        return None
    description = query.get("error_description", [""])[0]
    return f"{query['error'][0]}: {description}".rstrip(": ")


class _ProviderRefused(AssertionError):
    def __init__(self, error: str, detail: str) -> None:
        super().__init__(f"the provider refused: {error}\n{detail}")
        self.error = error


async def _walk(client: httpx.AsyncClient, authorize_url: str, login: str) -> str:
    provider = _origin(authorize_url)
    request = client.build_request("GET", authorize_url)
    for _ in range(MAX_STEPS):
        response = await client.send(request, follow_redirects=False)
        url = str(response.url)
        if response.is_redirect:
            location = urljoin(url, response.headers["location"])
            if _origin(location) != provider:
                error = _redirect_error(location)
                if error is not None:
                    raise _ProviderRefused(error, f"redirected to {location}")
                return location
            request = client.build_request("GET", location)
            continue
        page = _parse(response.text)
        if response.status_code >= 400 or page.errors:
            error = page.errors.get("error") or f"HTTP {response.status_code}"
            description = page.errors.get("error_description", "")
            text = " ".join(page.text)
            raise _ProviderRefused(
                f"{error}: {description}".rstrip(": "), f"{response.status_code} {url}\n{text}"
            )
        if not page.forms:
            raise AssertionError(f"unexpected provider page at {url}:\n{' '.join(page.text)}")
        form = page.forms[0]
        data = dict(form.fields)
        if "login" in data:
            data["login"] = login
        target = urljoin(url, form.action or url)
        if form.method == "post":
            request = client.build_request("POST", target, data=data)
        else:
            request = client.build_request("GET", target, params=data)
    raise AssertionError(f"sign-in did not finish within {MAX_STEPS} steps")


async def complete_login(client: httpx.AsyncClient, authorize_url: str, *, login: str) -> str:
    """Sign in as ``login`` and grant consent, starting at ``authorize_url``.

    ``client`` talks to the provider over real HTTP and keeps its cookies (a later call with the
    same client reuses the provider session, so no login form appears). Returns the Location
    that sends the browser back to the relying party (``redirect_uri?code=...&state=...``)
    without requesting it. Raises AssertionError with the provider's error when it refuses,
    whether on its own error page or by redirecting back with ``error=...``.
    """
    return await _walk(client, authorize_url, login)


async def provider_error(
    client: httpx.AsyncClient, authorize_url: str, *, login: str = "alice"
) -> str:
    """The error the provider answers ``authorize_url`` with, as ``"<error>: <description>"``
    (e.g. ``"invalid_request: Authorization Server policy requires PKCE ..."``), taken from its
    error page or from the ``error`` parameter of its redirect back. Fails when the sign-in
    succeeds instead."""
    try:
        location = await _walk(client, authorize_url, login)
    except _ProviderRefused as refused:
        return refused.error
    raise AssertionError(f"expected the provider to refuse, but it redirected to {location}")
