"""The explicit route table. API routes carry their OpenAPI operation beside them."""

from __future__ import annotations

from pathlib import Path

from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from services.importing import AssignmentSpec
from services.views import (
    AssignmentSummaryView,
    AssignmentView,
    CohortView,
    GroupRuleView,
    JoinCodeView,
    MemberView,
    MeView,
    TokenCreatedView,
    TokenView,
)
from web import (
    routes_discussions,
    routes_exemplars,
    routes_lti,
    routes_lti_services,
    routes_mail,
    routes_reviews,
    routes_webhooks,
)
from web.endpoints import api, assignment_settings, auth, authoring, health, pages
from web.openapi import API, ApiRoute, Operation
from web.ratelimit import RateLimitedView

STATIC_DIR = Path(__file__).parent / "static"

ASSIGNMENT_TEXT_SCHEMA = {
    "type": "string",
    "description": (
        "The plain-text assignment format: title line(s), one paragraph per question, "
        "'Paper For Above instruction', the sample paper, 'References', one per line."
    ),
}


def api_routes() -> list[ApiRoute]:
    return [
        ApiRoute("/cohorts", api.list_cohorts, methods=["GET"], name="api:cohorts:list",
                 operation=Operation("Cohorts I can see", "cohorts", {200: list[CohortView]})),
        ApiRoute("/cohorts", api.create_cohort, methods=["POST"], name="api:cohorts:create",
                 operation=Operation("Create a cohort (administrators)", "cohorts",
                                     {201: CohortView},
                                     request_body={"application/json": api.CohortCreate},
                                     errors=(400, 404, 409, 415, 422))),
        ApiRoute("/cohorts/{cohort:slug}", api.cohort_detail, methods=["GET"],
                 name="api:cohorts:detail",
                 operation=Operation("A cohort", "cohorts", {200: CohortView}, errors=(404,))),
        ApiRoute("/cohorts/{cohort:slug}/assignments", api.list_assignments, methods=["GET"],
                 name="api:assignments:list",
                 operation=Operation("The cohort's assignments", "assignments",
                                     {200: list[AssignmentSummaryView]}, errors=(404,))),
        ApiRoute("/cohorts/{cohort:slug}/assignments", api.create_assignment, methods=["POST"],
                 name="api:assignments:create",
                 operation=Operation(
                     "Import an assignment (cohort staff)", "assignments", {201: AssignmentView},
                     request_body={"application/json": AssignmentSpec,
                                   "application/toml": ASSIGNMENT_TEXT_SCHEMA | {
                                       "description": "The structured format, as TOML"},
                                   "text/plain": ASSIGNMENT_TEXT_SCHEMA},
                     errors=(400, 404, 415, 422),
                     description="Nothing is stored unless the whole document is valid; "
                                 "`errors` lists each problem with its line or field.")),
        ApiRoute("/assignments/{assignment:id}", api.assignment_detail, methods=["GET"],
                 name="api:assignments:detail",
                 operation=Operation("An assignment with its questions, rubric and references",
                                     "assignments", {200: AssignmentView}, errors=(404,))),
        ApiRoute("/assignments/{assignment:id}", api.update_assignment, methods=["PATCH"],
                 name="api:assignments:update",
                 operation=Operation(
                     "Edit title, instructions, deadlines and review settings (cohort staff)",
                     "assignments", {200: AssignmentView},
                     request_body={"application/json": api.AssignmentSettings},
                     errors=(400, 404, 409, 415, 422),
                     description="Send the version you read; a stale one gets 409. "
                                 "reviews_per_paper is fixed once review has started.")),
        ApiRoute("/assignments/{assignment:id}/questions", authoring.api_questions,
                 methods=["PUT"], name="api:assignments:questions",
                 operation=Operation(
                     "Edit, reorder, add and remove questions (cohort staff, draft only)",
                     "assignments", {200: AssignmentView},
                     request_body={"application/json": authoring.QuestionsWrite},
                     errors=(400, 404, 409, 415, 422),
                     description="The list is the new order; an entry with an `id` edits that "
                                 "question, one without adds a question, and questions left out "
                                 "(or emptied) are removed unless they have threads. 409 when the "
                                 "version is stale or the assignment has left the draft phase.")),
        ApiRoute("/assignments/{assignment:id}/rubric", authoring.api_rubric, methods=["PUT"],
                 name="api:assignments:rubric",
                 operation=Operation(
                     "Replace the stance rubric: source and components (cohort staff)",
                     "assignments", {200: AssignmentView},
                     request_body={"application/json": authoring.RubricWrite},
                     errors=(400, 404, 409, 415, 422),
                     description="The source is one of the assignment's references, by "
                                 "position; it is stored as its short citation. Components "
                                 "sent with an existing `key` keep it; others get a key from "
                                 "their label; components left out are removed. 409 when the "
                                 "version is stale or a review has been started. Audited.")),
        ApiRoute("/assignments/{assignment:id}/copies", authoring.api_copy, methods=["POST"],
                 name="api:assignments:copy",
                 operation=Operation(
                     "Copy the assignment into another cohort you manage (next term)",
                     "assignments", {201: AssignmentView},
                     request_body={"application/json": authoring.CopyRequest},
                     errors=(400, 404, 415, 422),
                     description="Questions, sample paper, references, rubric and settings; "
                                 "published exemplars whose authors agreed to show them, "
                                 "without their authors. The copy is a draft without "
                                 "deadlines.")),
        ApiRoute("/me", api.me, methods=["GET"], name="api:me",
                 operation=Operation(
                     "The signed-in person, their cohorts and roles, and the CSRF token",
                     "account", {200: MeView}, errors=(401,),
                     description="`csrf_token` is set for browser sessions: send it as "
                                 "X-CSRF-Token on unsafe requests. Anonymous: user is null.")),
        ApiRoute("/me/data", api.my_data, methods=["GET"], name="api:me:data",
                 operation=Operation(
                     "Everything the service holds about me (JSON download)", "account",
                     {200: {"type": "object", "description": "peerboard.person-export.v1"}},
                     errors=(401,),
                     description="Profile, memberships, aliases, posts (with the alias each "
                                 "anonymous one carried), papers, reviews written, ratings "
                                 "given, notifications, exemplars of my work, audit entries "
                                 "about me, tokens. Names nobody I may not know.")),
        ApiRoute("/tokens", api.list_tokens, methods=["GET"], name="api:tokens:list",
                 operation=Operation("My personal access tokens (never the secret)", "account",
                                     {200: list[TokenView]}, errors=(401,))),
        ApiRoute("/tokens", api.create_token, methods=["POST"], name="api:tokens:create",
                 operation=Operation(
                     "Create a personal access token; the secret is shown only in this answer",
                     "account", {201: TokenCreatedView},
                     request_body={"application/json": api.TokenCreate},
                     errors=(400, 401, 403, 415, 422, 429),
                     description="At most 10 per hour per person (30 per address); then 429. "
                                 "Use it as `Authorization: Bearer <token>`; no CSRF token is "
                                 "needed with it.")),
        ApiRoute("/tokens/{token:id}", api.revoke_token, methods=["DELETE"],
                 name="api:tokens:revoke",
                 operation=Operation("Revoke one of my tokens", "account", {204: None},
                                     errors=(401, 403, 404))),
        ApiRoute("/join", api.join, methods=["POST"], name="api:join",
                 operation=Operation("Join a cohort with its join code (as a student)", "cohorts",
                                     {200: CohortView},
                                     request_body={"application/json": api.JoinRequest},
                                     errors=(400, 401, 403, 415, 422, 429),
                                     description="At most 10 attempts per person (30 per "
                                                 "address) in 10 minutes; then 429 with "
                                                 "Retry-After.")),
        ApiRoute("/cohorts/{cohort:slug}/members", api.list_members, methods=["GET"],
                 name="api:members:list",
                 operation=Operation("The cohort's members (moderators and instructors)",
                                     "members", {200: list[MemberView]}, errors=(404,))),
        ApiRoute("/cohorts/{cohort:slug}/rate-limits", api.rate_limited, methods=["GET"],
                 name="api:members:rate-limited",
                 operation=Operation("Who in the cohort met a rate limit in the last hour",
                                     "members", {200: list[RateLimitedView]}, errors=(404,),
                                     description="Moderators and instructors: per person and "
                                                 "limit, how many 429 answers and the last "
                                                 "one. Kept for an hour, not stored.")),
        ApiRoute("/cohorts/{cohort:slug}/members/{user:id}", api.set_member_role, methods=["PUT"],
                 name="api:members:role",
                 operation=Operation("Change a member's role", "members", {200: MemberView},
                                     request_body={"application/json": api.RoleChange},
                                     errors=(400, 403, 404, 415, 422))),
        ApiRoute("/cohorts/{cohort:slug}/members/{user:id}", api.remove_member, methods=["DELETE"],
                 name="api:members:remove",
                 operation=Operation("Remove a member", "members", {204: None},
                                     errors=(403, 404, 422))),
        ApiRoute("/cohorts/{cohort:slug}/join-code", api.join_code, methods=["GET"],
                 name="api:join-code:get",
                 operation=Operation("The cohort's join code", "members", {200: JoinCodeView},
                                     errors=(404,))),
        ApiRoute("/cohorts/{cohort:slug}/join-code", api.rotate_join_code, methods=["POST"],
                 name="api:join-code:rotate",
                 operation=Operation("Issue a new join code, or turn joining by code off",
                                     "members", {200: JoinCodeView},
                                     request_body={"application/json": api.JoinCodeChange},
                                     errors=(400, 403, 404, 415, 422))),
        ApiRoute("/cohorts/{cohort:slug}/group-rules", api.list_group_rules, methods=["GET"],
                 name="api:group-rules:list",
                 operation=Operation("Identity-provider group → cohort role rules", "members",
                                     {200: list[GroupRuleView]}, errors=(404,))),
        ApiRoute("/cohorts/{cohort:slug}/group-rules", api.create_group_rule, methods=["POST"],
                 name="api:group-rules:create",
                 operation=Operation("Map an identity-provider group to a role", "members",
                                     {201: GroupRuleView},
                                     request_body={"application/json": api.GroupRuleCreate},
                                     errors=(400, 403, 404, 409, 415, 422))),
        ApiRoute("/cohorts/{cohort:slug}/group-rules/{rule:id}", api.delete_group_rule,
                 methods=["DELETE"], name="api:group-rules:delete",
                 operation=Operation("Delete a group rule", "members", {204: None},
                                     errors=(403, 404))),
    ]  # fmt: skip


def build_routes() -> list[BaseRoute]:
    return [
        Route("/", pages.home, name="home"),
        Route("/signin", auth.signin_page, name="auth:signin"),
        Route("/auth/providers", auth.providers, name="auth:providers"),
        Route("/auth/{provider}/login", auth.login, name="auth:login"),
        Route("/auth/{provider}/callback", auth.callback, name="auth:callback"),
        Route("/auth/logout", auth.logout, methods=["POST"], name="auth:logout"),
        Route("/join", pages.join, methods=["POST"], name="join"),
        Route("/cohorts", pages.create_cohort, methods=["POST"], name="cohorts:create"),
        Route("/cohorts/{cohort:slug}", pages.cohort_page, name="cohorts:detail"),
        Route("/cohorts/{cohort:slug}/members", pages.members_page, name="cohorts:members"),
        Route("/cohorts/{cohort:slug}/time-zone", pages.time_zone_form, methods=["POST"],
              name="cohorts:time-zone"),
        Route("/cohorts/{cohort:slug}/members/{user:id}/role", pages.member_role_form,
              methods=["POST"], name="cohorts:members:role"),
        Route("/cohorts/{cohort:slug}/members/{user:id}/remove", pages.member_remove_form,
              methods=["POST"], name="cohorts:members:remove"),
        Route("/cohorts/{cohort:slug}/join-code", pages.join_code_form, methods=["POST"],
              name="cohorts:join-code"),
        Route("/cohorts/{cohort:slug}/group-rules", pages.group_rule_form, methods=["POST"],
              name="cohorts:group-rules:add"),
        Route("/cohorts/{cohort:slug}/group-rules/{rule:id}/delete", pages.group_rule_delete_form,
              methods=["POST"], name="cohorts:group-rules:delete"),
        Route("/assignments/{assignment:id}", pages.assignment_page, name="assignments:detail"),
        Route("/assignments/{assignment:id}/settings", assignment_settings.settings_page,
              name="assignments:settings"),
        Route("/assignments/{assignment:id}/settings", assignment_settings.settings_form,
              methods=["POST"], name="assignments:settings:save"),
        Route("/cohorts/{cohort:slug}/assignments/new", authoring.new_page, name="authoring:new"),
        Route("/cohorts/{cohort:slug}/assignments/new", authoring.read_form, methods=["POST"],
              name="authoring:read"),
        Route("/cohorts/{cohort:slug}/assignments/create", authoring.create_form, methods=["POST"],
              name="authoring:create"),
        Route("/assignments/{assignment:id}/questions", authoring.questions_page,
              name="authoring:questions"),
        Route("/assignments/{assignment:id}/questions", authoring.questions_form,
              methods=["POST"], name="authoring:questions:save"),
        Route("/assignments/{assignment:id}/rubric", authoring.rubric_page,
              name="authoring:rubric"),
        Route("/assignments/{assignment:id}/rubric", authoring.rubric_form, methods=["POST"],
              name="authoring:rubric:save"),
        Route("/assignments/{assignment:id}/copy", authoring.copy_form, methods=["POST"],
              name="authoring:copy"),
        Route("/healthz", health.healthz, name="healthz"),
        Route("/readyz", health.readyz, name="readyz"),
        Route(f"{API}/openapi.json", api.openapi_document, name="api:openapi"),
        *routes_discussions.page_routes(),
        *routes_reviews.page_routes(),
        *routes_exemplars.page_routes(),
        *routes_mail.page_routes(),
        *routes_webhooks.page_routes(),
        *routes_lti.page_routes(),
        *routes_lti_services.page_routes(),
        *api_routes(),
        *routes_discussions.api_routes(),
        *routes_reviews.api_routes(),
        *routes_exemplars.api_routes(),
        *routes_mail.api_routes(),
        *routes_webhooks.api_routes(),
        *routes_lti_services.api_routes(),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ]  # fmt: skip
