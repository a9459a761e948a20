"""axe-core on every page for every role, in light and dark mode, at desktop width and at a
390 px phone width: no violation of serious or critical impact, and nothing wider than the
phone's screen. The test lists the pages it covered, and fails when a page route (a GET
route of web/routes*.py that answers HTML) has no page here, so a new page cannot skip it.

axe-core comes from npm, pinned in tests/browser/axe/package-lock.json and installed by
scripts/ensure-axe-core (make test-deps, .ci/run)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from starlette.routing import Route

from tests.browser.conftest import LiveServer, new_page, sign_in_as
from web.routes import build_routes

AXE = Path(__file__).parent / "axe" / "node_modules" / "axe-core" / "axe.min.js"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}

# GET routes that are not pages: JSON, redirects to the identity provider, health checks.
NOT_PAGES = {
    "auth:providers": "JSON list of identity providers",
    "auth:login": "redirects to the identity provider",
    "auth:callback": "the identity provider's redirect back",
    "healthz": "health check (problem+json / JSON)",
    "readyz": "readiness check (JSON)",
    "lti:login": "an LMS's login initiation: redirects to the platform",
    "lti:jwks": "the tool's public keys (JSON)",
    "lti:register": "needs an LMS's registration request (tests/lti/ drive it)",
    "lti:platforms": "administrators only; the demo signs in no administrator",
    "lti:deep_link": "needs an LMS's deep linking request: test_lti_iframe.py runs axe on it",
    "mail:unsubscribe": "needs a signed per-person link from a mail (tests/web/test_mail_http.py)",
}

ROLES = ("anonymous", "ada-student", "mona-moderator", "ivo-instructor")

RUN_AXE = """async () => {
    const result = await axe.run(document, {resultTypes: ["violations"]});
    return result.violations
        .filter(v => v.impact === "serious" || v.impact === "critical")
        .map(v => ({id: v.id, impact: v.impact, help: v.help,
                    nodes: v.nodes.slice(0, 3).map(n => n.target.join(" "))}));
}"""

OVERFLOW = """() => {
    const wide = [];
    const limit = document.documentElement.clientWidth;
    if (document.documentElement.scrollWidth > limit + 1) {
        for (const el of document.body.querySelectorAll("*")) {
            const box = el.getBoundingClientRect();
            if (box.right > limit + 1 && getComputedStyle(el).position !== "fixed") {
                let inScroller = false;
                for (let p = el.parentElement; p; p = p.parentElement) {
                    const s = getComputedStyle(p).overflowX;
                    if (s === "auto" || s === "scroll" || s === "hidden") {
                        inScroller = true;
                        break;
                    }
                }
                const cls = typeof el.className === "string" ? el.className.split(" ")[0] : "";
                if (!inScroller) wide.push(el.tagName.toLowerCase()
                    + (el.id ? "#" + el.id : "") + (cls ? "." + cls : ""));
            }
        }
    }
    return wide.slice(0, 5);
}"""


def page_routes() -> dict[str, str]:
    return {
        r.name: r.path
        for r in build_routes()
        if isinstance(r, Route)
        and "GET" in (r.methods or ())
        and not r.path.startswith("/api/")
        and r.name not in NOT_PAGES
    }


async def _demo_ids(page: Any, server: LiveServer) -> dict[str, str]:
    """Ids of the demo's things, read through the API as Ada (a student) would."""
    base = server.base_url + "/api/v1"
    a = server.assignment_id
    assignments = await (await page.request.get(f"{base}/cohorts/demo/assignments")).json()
    feedback = next(x["id"] for x in assignments if x["phase"] == "feedback")
    detail = await (await page.request.get(f"{base}/assignments/{a}")).json()
    question = detail["questions"][0]["id"]
    threads = await (await page.request.get(f"{base}/questions/{question}/threads")).json()
    tasks = await (await page.request.get(f"{base}/assignments/{a}/review-tasks")).json()
    return {
        "assignment": str(a),
        "feedback_assignment": str(feedback),
        "question": str(question),
        "thread": threads["threads"][0]["id"],
        "task": next(t["id"] for t in tasks if t["status"] != "submitted"),
    }


def urls(ids: dict[str, str]) -> dict[str, str]:
    a = ids["assignment"]
    return {
        "home": "/",
        "auth:signin": "/signin",
        "cohorts:detail": "/cohorts/demo",
        "cohorts:members": "/cohorts/demo/members",
        "assignments:detail": f"/assignments/{a}",
        "assignments:settings": f"/assignments/{a}/settings",
        "discussions:question": f"/questions/{ids['question']}",
        "discussions:thread": f"/threads/{ids['thread']}",
        "discussions:flags": "/cohorts/demo/flags",
        "discussions:notifications": "/notifications",
        "discussions:search": "/search?q=secure",
        "reviews:paper": f"/assignments/{a}/paper",
        "reviews:tasks": f"/assignments/{a}/review-tasks",
        "reviews:task": f"/review-tasks/{ids['task']}",
        "reviews:feedback": f"/assignments/{ids['feedback_assignment']}/feedback",
        "reviews:dashboard": f"/assignments/{a}/review-dashboard",
        "reviews:conflicts": f"/assignments/{a}/review-conflicts",
        "exemplars:gallery": f"/assignments/{a}/exemplars",
        "workspace": f"/assignments/{a}/workspace",
        "authoring:new": "/cohorts/demo/assignments/new",
        "authoring:questions": f"/assignments/{a}/questions",
        "authoring:rubric": f"/assignments/{a}/rubric",
        "mail:settings": "/settings/notifications",
        "mail:dev": "/dev/mail",
        "webhooks:page": "/cohorts/demo/webhooks",
        "grades:page": f"/assignments/{a}/grades",
    }


async def _check(page: Any) -> list[str]:
    """axe in light and dark, at desktop and phone width; overflow at phone width."""
    found: list[str] = []
    for scheme, size in (("light", DESKTOP), ("light", PHONE), ("dark", PHONE)):
        await page.emulate_media(color_scheme=scheme)
        await page.set_viewport_size(size)
        for v in await page.evaluate(RUN_AXE):
            found.append(f"{scheme} {size['width']}px {v['impact']} {v['id']}: {v['help']} "
                         f"at {v['nodes']}")  # fmt: skip
        if size is PHONE and scheme == "light":
            for element in await page.evaluate(OVERFLOW):
                found.append(f"{size['width']}px: {element} is wider than the screen")
    return found


async def test_every_page_for_every_role_passes_axe_light_dark_and_at_phone_width(
    browser: Any, demo_server: LiveServer
) -> None:
    if not AXE.exists():
        reason = "axe-core is not installed: run scripts/ensure-axe-core (needs Node and npm)"
        if os.environ.get("PEERBOARD_REQUIRE_BROWSER") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    routes = page_routes()
    covered: dict[str, list[str]] = {}
    problems: list[str] = []
    ids: dict[str, str] | None = None
    for role in ROLES:
        context, page, errors = await new_page(
            browser, demo_server, bypass_csp=True, viewport=DESKTOP
        )
        if role != "anonymous":
            await sign_in_as(page, demo_server, role)
            if ids is None and role == "ada-student":
                ids = await _demo_ids(page, demo_server)
        targets = urls(ids) if ids is not None else {"home": "/", "auth:signin": "/signin"}
        unknown = set(targets) - set(routes)
        assert not unknown, f"pages listed here that are no route any more: {unknown}"
        for name, path in targets.items():
            response = await page.goto(demo_server.base_url + path)
            assert response is not None
            if response.status == 404 or ("/signin" in page.url and name != "auth:signin"):
                continue  # not this role's page (404, or a sign-in redirect)
            assert response.status == 200, f"{role} {path}: {response.status}"
            await page.add_script_tag(path=str(AXE))
            for problem in await _check(page):
                problems.append(f"{role} {path} {problem}")
            await page.emulate_media(color_scheme="light")
            await page.set_viewport_size(DESKTOP)
            covered.setdefault(name, []).append(role)
        await context.close()
        assert [e for e in errors if "status of 404" not in e] == [], errors
    print("\naxe covered:")
    for name in sorted(covered):
        print(f"  {routes[name]}  ({name}): {', '.join(covered[name])}")
    missing = sorted(set(routes) - set(covered))
    assert not missing, f"page routes with no page in the accessibility test: {missing}"
    assert problems == [], "\n".join(problems)
