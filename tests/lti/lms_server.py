"""An LMS on loopback built on `lti1p3platform` (PyPI, MIT; not written by us): a real HTTP
server that launches Peerboard the way an LTI 1.3 platform does.

The library does the platform's LTI work: the OIDC third-party login initiation
(`OIDCLoginAbstract.prepare_preflight_url`), checking the tool's authentication request and
signing the id token (`MessageLaunchAbstract.lti_launch`), the deep linking request
(`LTIAdvantageMessageLaunchAbstract.set_dl`), its JWKS, and validating the tool's deep
linking response against the tool's published keys (`validate_deeplinking_resp`). What the
library leaves to its host is here: routing, the launch scenarios (who launches what),
remembering the links deep linking returned, and LTI Dynamic Registration, which the library
does not implement (the openid-configuration and registration endpoints below follow the
LTI Dynamic Registration 1.0 specification's examples).
"""

from __future__ import annotations

import html
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from lti1p3platform.ltiplatform import LTI1P3PlatformConfAbstract
from lti1p3platform.message_launch import LTIAdvantageMessageLaunchAbstract
from lti1p3platform.oidc_login import OIDCLoginAbstract
from lti1p3platform.registration import Registration
from lti1p3platform.request import Request as LibraryRequest
from lti1p3platform.request import TRequest
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

LIS = "http://purl.imsglobal.org/vocab/lis/v2/membership"
INSTRUCTOR = f"{LIS}#Instructor"
LEARNER = f"{LIS}#Learner"
TOOL_CONFIGURATION = "https://purl.imsglobal.org/spec/lti-tool-configuration"
PLATFORM_CONFIGURATION = "https://purl.imsglobal.org/spec/lti-platform-configuration"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(app: Any, port: int, **options: Any) -> Iterator[str]:
    """`app` served by uvicorn on 127.0.0.1:`port` in a thread, for the block's duration
    (`options`: more uvicorn settings, such as a TLS certificate)."""
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", **options
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the loopback server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _rsa_pair() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()  # fmt: skip
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


@dataclass
class Scenario:
    """One launch the LMS will make: who, in which course, of what."""

    user: str
    roles: list[str]
    kind: str = "resource"  # or "deep_link"
    link_id: str = "lms-link-1"
    context_id: str = "lms-course-7"
    context_title: str = "PSY 210: Attachment in therapy"
    name: str = "Pat Example"
    # Ask the tool to use the LMS's platform storage (LTI client-side postMessages) too.
    storage: bool = False


@dataclass
class Lms:
    """The platform's state: its keys, its registration of the tool, what it has seen."""

    base: str
    tool: str  # the tool's base URL, for a manual registration
    client_id: str | None = "lms-client-1"
    deployment_id: str = "lms-deployment-1"
    private_pem: str = ""
    public_pem: str = ""
    tool_login: str = ""
    tool_launch: str = ""
    tool_jwks: str = ""
    redirect_uris: list[str] = field(default_factory=list)
    registration_token: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    scenarios: dict[str, Scenario] = field(default_factory=dict)
    links: dict[str, dict[str, Any]] = field(default_factory=dict)  # placed by deep linking
    deep_link_answers: list[dict[str, Any]] = field(default_factory=list)
    registrations: list[dict[str, Any]] = field(default_factory=list)
    # The tool's key set when the LMS cannot fetch it itself (a browser test's tool lives
    # under a host name only the browser resolves).
    tool_key_set: dict[str, Any] | None = None
    hold_launches: bool = False

    def __post_init__(self) -> None:
        self.private_pem, self.public_pem = _rsa_pair()
        if self.client_id is not None:  # registered by hand: the tool's documented URLs
            self.tool_login = f"{self.tool}/lti/login"
            self.tool_launch = f"{self.tool}/lti/launch"
            self.tool_jwks = f"{self.tool}/lti/jwks.json"
            self.redirect_uris = [self.tool_launch]

    def forget_tool(self) -> None:
        """As if the tool had never been registered: dynamic registration must tell all."""
        self.client_id = None
        self.tool_login = self.tool_launch = self.tool_jwks = ""
        self.redirect_uris = []

    @property
    def issuer(self) -> str:
        return self.base

    def registration(self) -> Registration:
        assert self.client_id is not None, "the tool is not registered with this LMS"
        registration = (
            Registration()
            .set_iss(self.issuer)
            .set_client_id(self.client_id)
            .set_deployment_id(self.deployment_id)
            .set_oidc_login_url(self.tool_login)
            .set_launch_url(self.tool_launch)
            .set_deeplink_launch_url(self.tool_launch)
            .set_tool_key_set_url(self.tool_jwks)
            .set_platform_public_key(self.public_pem)
            .set_platform_private_key(self.private_pem)
        )
        if self.tool_key_set is not None:
            registration.set_tool_key_set(self.tool_key_set)  # type: ignore[arg-type]
        return registration

    def config(self) -> _Config:
        return _Config(lms=self)

    def start(self, scenario: Scenario) -> str:
        """The address a person's browser opens in the LMS to launch the tool."""
        hint = secrets.token_urlsafe(8)
        self.scenarios[hint] = scenario
        return f"{self.base}/launch/{hint}"


class _Config(LTI1P3PlatformConfAbstract):
    lms: Lms

    def init_platform_config(self, **kwargs: Any) -> None:
        self.lms = kwargs["lms"]

    def get_registration_by_params(self, **kwargs: Any) -> Registration:
        return self.lms.registration()


class _Request(LibraryRequest):
    def build_metadata(self, request: Any) -> TRequest:
        query, form = request
        return {"method": "POST" if form else "GET", "form_data": form, "get_data": query,
                "headers": {}, "content_type": None, "path": "", "json": None}  # fmt: skip


class _Login(OIDCLoginAbstract):
    def set_lti_message_hint(self, **kwargs: Any) -> None:
        self._lti_message_hint = kwargs["hint"]

    def get_redirect(self, url: str) -> Response:
        return RedirectResponse(url, status_code=302)


class _Launch(LTIAdvantageMessageLaunchAbstract):
    lms: Lms

    def prepare_launch(self, preflight_response: dict[str, Any]) -> None:
        scenario = self.lms.scenarios.get(preflight_response.get("lti_message_hint", ""))
        if scenario is None or preflight_response.get("login_hint") != scenario.user:
            raise PermissionError("unknown launch or another person's login hint")
        if preflight_response.get("redirect_uri") not in self.lms.redirect_uris:
            raise PermissionError("redirect_uri is not registered")
        self.set_user_data(scenario.user, scenario.roles, full_name=scenario.name,
                           email_address=f"{scenario.user}@lms.example")  # fmt: skip
        self.set_launch_context_claim(
            scenario.context_id, context_types=[f"{LIS.rsplit('/', 1)[0]}/course#CourseOffering"],
            context_title=scenario.context_title, context_label="PSY210",
        )  # fmt: skip
        if scenario.kind == "deep_link":
            self.set_dl(
                f"{self.lms.base}/deep-link-return", title="Add an activity",
                accept_types={"ltiResourceLink"}, extra_data={"placement": "week-3"},
            )  # fmt: skip
        else:
            placed = self.lms.links.get(scenario.link_id, {})
            self.set_resource_link_claim(scenario.link_id, title=placed.get("title", "Link"))
            if placed.get("custom"):
                self.set_custom_parameters_claim(placed["custom"])

    def render_launch_form(self, launch_data: dict[str, Any], **kwargs: Any) -> Response:
        action = html.escape(launch_data["launch_url"])
        return HTMLResponse(
            f'<form method="post" action="{action}" id="launch">'
            f'<input type="hidden" name="id_token" value="{html.escape(launch_data["id_token"])}">'
            f'<input type="hidden" name="state" value="{html.escape(launch_data["state"])}">'
            '<button type="submit">Launch</button></form>'
            # Browsers post it at once, unless a test holds the launch (to clear cookies).
            + ("" if self.lms.hold_launches else
               "<script>document.getElementById('launch').submit();</script>")
        )  # fmt: skip


def app_for(lms: Lms) -> Starlette:
    def launch(request: Request) -> Response:
        """A person clicks the tool's link in the LMS: the OIDC login initiation."""
        hint = request.path_params["hint"]
        scenario = lms.scenarios[hint]
        login = _Login(_Request(({}, {})), lms.config())
        login.set_lti_message_hint(hint=hint)
        if scenario.kind == "deep_link":
            login.set_deeplinking_launch_url()
        response: Response = login.initiate_login(scenario.user)
        if scenario.storage:  # the library's login initiation has no storage target
            target = response.headers["location"] + "&lti_storage_target=_parent"
            return RedirectResponse(target, status_code=302)
        return response

    async def auth(request: Request) -> Response:
        """The tool's authentication request: answered with the signed launch."""
        query = dict(request.query_params)
        form = dict(await request.form()) if request.method == "POST" else {}
        launch = _Launch(_Request((query, form)), lms.config())
        launch.lms = lms
        try:
            response: Response = launch.lti_launch()
        except PermissionError as exc:
            return JSONResponse({"error": str(exc)}, status_code=403)
        return response

    def jwks(request: Request) -> Response:
        config = lms.config()
        config.get_registration()
        return JSONResponse(config.get_jwks())

    async def deep_link_return(request: Request) -> Response:
        """The tool's deep linking response: validated by the library, the links kept."""
        form = await request.form()
        token = str(form.get("JWT", ""))
        config = lms.config()
        config.get_registration()
        # The library fetches the tool's key set with `requests`: off the event loop.
        items = await run_in_threadpool(config.validate_deeplinking_resp, {"JWT": token})
        claims = await run_in_threadpool(config.tool_validate_and_decode, token)
        placed = []
        for item in items:
            link_id = f"placed-{len(lms.links) + 1}"
            lms.links[link_id] = {"title": item.get("title", ""), "custom": item.get("custom")}
            placed.append(link_id)
        lms.deep_link_answers.append({"claims": claims, "items": items, "links": placed})
        return JSONResponse({"placed": placed})

    def openid_configuration(request: Request) -> Response:
        """LTI Dynamic Registration 1.0 §3.5.1, the platform's configuration."""
        return JSONResponse({
            "issuer": lms.issuer,
            "authorization_endpoint": f"{lms.base}/auth",
            "token_endpoint": f"{lms.base}/token",
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            "token_endpoint_auth_signing_alg_values_supported": ["RS256"],
            "jwks_uri": f"{lms.base}/jwks",
            "registration_endpoint": f"{lms.base}/register",
            "scopes_supported": ["openid"],
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public", "pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "claims_supported": ["sub", "iss", "name", "given_name", "family_name", "email"],
            PLATFORM_CONFIGURATION: {
                "product_family_code": "loopback-lms",
                "version": "1.0",
                "messages_supported": [{"type": "LtiResourceLinkRequest"},
                                       {"type": "LtiDeepLinkingRequest"}],
            },
        })  # fmt: skip

    async def register(request: Request) -> Response:
        """LTI Dynamic Registration 1.0 §3.6: the tool's client registration request."""
        if request.headers.get("authorization") != f"Bearer {lms.registration_token}":
            return JSONResponse({"error": "invalid_token"}, status_code=401)
        body = await request.json()
        tool = body.get(TOOL_CONFIGURATION) or {}
        required = ("initiate_login_uri", "redirect_uris", "jwks_uri")
        if body.get("application_type") != "web" or not all(body.get(k) for k in required):
            return JSONResponse({"error": "invalid_client_metadata"}, status_code=400)
        lms.registrations.append(body)
        lms.client_id = f"dyn-{secrets.token_hex(4)}"
        lms.deployment_id = "dyn-deployment-1"
        lms.tool_login = body["initiate_login_uri"]
        lms.redirect_uris = list(body["redirect_uris"])
        lms.tool_launch = tool.get("target_link_uri") or lms.redirect_uris[0]
        lms.tool_jwks = body["jwks_uri"]
        return JSONResponse({
            **body, "client_id": lms.client_id,
            TOOL_CONFIGURATION: {**tool, "deployment_id": lms.deployment_id},
        })  # fmt: skip

    def course(request: Request) -> Response:
        """The LMS's course page: the tool in an iframe, and the LMS's side of the LTI
        platform storage messages (lti.put_data / lti.get_data, LTI Client Side postMessages
        1.0), answering only the frame, at the origin it came from."""
        hint = request.path_params["hint"]
        return HTMLResponse(COURSE_PAGE.replace("LAUNCH_URL", f"/launch/{hint}"))

    return Starlette(
        routes=[
            Route("/course/{hint}", course),
            Route("/launch/{hint}", launch),
            Route("/auth", auth, methods=["GET", "POST"]),
            Route("/jwks", jwks),
            Route("/deep-link-return", deep_link_return, methods=["POST"]),
            Route("/.well-known/openid-configuration", openid_configuration),
            Route("/register", register, methods=["POST"]),
        ]
    )


COURSE_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Course - Loopback LMS</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="margin:0">
<h1 style="font-size:1rem;margin:0.5rem">PSY 210 (Loopback LMS)</h1>
<iframe id="tool" name="tool" title="Peerboard" src="LAUNCH_URL"
 style="width:100%;height:85vh;border:0"></iframe>
<script>
window.storageLog = [];
const stored = {};
window.addEventListener("message", (event) => {
  const frame = document.getElementById("tool").contentWindow;
  const data = event.data;
  if (event.source !== frame || !data || typeof data !== "object") return;
  const key = event.origin + " " + data.key;
  if (data.subject === "lti.put_data") {
    stored[key] = data.value;
    window.storageLog.push(["put", event.origin, data.key]);
    frame.postMessage({subject: "lti.put_data.response", message_id: data.message_id,
                       key: data.key, value: data.value}, event.origin);
  } else if (data.subject === "lti.get_data") {
    window.storageLog.push(["get", event.origin, data.key]);
    const answer = key in stored
      ? {value: stored[key]}
      : {error: {code: "bad_request", message: "no such key"}};
    frame.postMessage({subject: "lti.get_data.response", message_id: data.message_id,
                       key: data.key, ...answer}, event.origin);
  }
});
</script></body></html>
"""
