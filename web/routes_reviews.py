"""Routes of the reviews area: pages, and the JSON API (documented by each ApiRoute's
Operation). Kept apart from web/routes.py so that areas grow without editing one shared list."""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from services.views import (
    AllocationView,
    AuditEventView,
    FeedbackView,
    MyPaperView,
    PhaseView,
    RatingView,
    RevealView,
    StanceView,
    TaskDetailView,
    TaskSummaryView,
)
from web.endpoints import papers as p
from web.endpoints import reviews as r
from web.openapi import SSE, SSE_SCHEMA, STREAM, ApiRoute, Operation

A = "/assignments/{assignment:id}"
WRITE = (400, 404, 409, 415, 422)


def page_routes() -> list[BaseRoute]:
    return [
        Route(f"{A}/paper", p.paper_page, name="reviews:paper"),
        Route(f"{A}/paper", p.paper_form, methods=["POST"], name="reviews:paper:save"),
        Route(f"{A}/review-tasks", r.tasks_page, name="reviews:tasks"),
        Route("/review-tasks/{task:public}", r.review_page, name="reviews:task"),
        Route(f"{A}/feedback", r.feedback_page, name="reviews:feedback"),
        Route("/reviews/{review:public}/rating", r.rating_form, methods=["POST"],
              name="reviews:rating"),
        Route(f"{A}/review-dashboard", r.dashboard_page, name="reviews:dashboard"),
        Route(f"{A}/phase", r.phase_form, methods=["POST"], name="reviews:phase"),
        Route(f"{A}/allocate", r.allocate_form, methods=["POST"], name="reviews:allocate"),
        Route(f"{A}/reveal", r.reveal_form, methods=["POST"], name="reviews:reveal"),
        Route(f"{A}/review-dashboard/assign", r.assign_form, methods=["POST"],
              name="reviews:assign"),
        Route(f"{A}/review-dashboard/move", r.move_form, methods=["POST"], name="reviews:move"),
        Route(f"{A}/review-conflicts", r.conflicts_page, name="reviews:conflicts"),
        Route(f"{A}/review-conflicts", r.exclude_form, methods=["POST"],
              name="reviews:exclude"),
        Route(f"{A}/review-conflicts/lift", r.unexclude_form, methods=["POST"],
              name="reviews:exclude:lift"),
    ]  # fmt: skip


def api_routes() -> list[ApiRoute]:
    return [
        ApiRoute(f"{A}/paper", p.api_my_paper, methods=["GET"], name="api:papers:mine",
                 operation=Operation("My paper for an assignment (students)", "reviews",
                                     {200: MyPaperView}, errors=(404,))),
        ApiRoute(f"{A}/paper", p.api_save_paper, methods=["PUT"], name="api:papers:save",
                 operation=Operation(
                     "Save a new version of my paper (typed, or as a file), and submit it",
                     "reviews", {200: MyPaperView}, request_body=p.PAPER_BODIES,
                     errors=WRITE, description=p.SAVE_DESCRIPTION)),
        ApiRoute(f"{A}/allocations", r.api_allocation, methods=["GET"],
                 name="api:allocations:list",
                 operation=Operation("The allocation: papers and their reviewers' numbers "
                                     "(staff)", "reviews", {200: AllocationView}, errors=(404,))),
        ApiRoute(f"{A}/allocations", r.api_allocate, methods=["POST"],
                 name="api:allocations:run",
                 operation=Operation(
                     "Allocate reviewers (staff): fills gaps, never reshuffles", "reviews",
                     {200: AllocationView}, errors=(404, 409))),
        ApiRoute(f"{A}/allocations/manual", r.api_assign, methods=["POST"],
                 name="api:allocations:assign",
                 operation=Operation("Add a reviewer to a paper by hand (staff); without "
                                     "`reviewer` Peerboard picks one", "reviews",
                                     {201: AllocationView},
                                     request_body={"application/json": r.ManualAssign},
                                     errors=WRITE)),
        ApiRoute(f"{A}/exclusions", r.api_exclude, methods=["POST"],
                 name="api:exclusions:create",
                 operation=Operation("Exclude a reviewer from an author's paper (staff)",
                                     "reviews", {204: None},
                                     request_body={"application/json": r.ExclusionCreate},
                                     errors=WRITE)),
        ApiRoute("/review-tasks/{task:public}/move", r.api_move_task, methods=["POST"],
                 name="api:tasks:move",
                 operation=Operation("Move an unsubmitted task to another student (staff); "
                                     "without `reviewer` Peerboard picks one",
                                     "reviews", {200: AllocationView},
                                     request_body={"application/json": r.TaskMove},
                                     errors=WRITE)),
        ApiRoute(f"{A}/review-tasks", r.api_my_tasks, methods=["GET"], name="api:tasks:mine",
                 operation=Operation("My review tasks", "reviews", {200: list[TaskSummaryView]},
                                     errors=(404,))),
        ApiRoute("/review-tasks/{task:public}", r.api_task, methods=["GET"],
                 name="api:tasks:detail",
                 operation=Operation("A review task: the paper (by its code) and my review",
                                     "reviews", {200: TaskDetailView}, errors=(404,))),
        ApiRoute("/review-tasks/{task:public}/review", r.api_save_review, methods=["PUT"],
                 name="api:reviews:save",
                 operation=Operation(
                     "Save my review (draft), or submit it", "reviews", {200: TaskDetailView},
                     request_body={"application/json": r.ReviewWrite}, errors=WRITE,
                     description="Every quote must be a passage of the paper (whitespace "
                                 "may differ). Send the version you last saw: 409 if it "
                                 "changed.")),
        ApiRoute("/review-tasks/{task:public}/reopen", r.api_reopen, methods=["POST"],
                 name="api:reviews:reopen",
                 operation=Operation("Reopen a submitted review (staff)", "reviews",
                                     {200: TaskDetailView}, errors=(404, 409))),
        ApiRoute(f"{A}/feedback", r.api_feedback, methods=["GET"], name="api:feedback",
                 operation=Operation("The reviews of my paper, once feedback is released",
                                     "reviews", {200: FeedbackView}, errors=(404,))),
        ApiRoute("/reviews/{review:public}/rating", r.api_rate, methods=["POST"],
                 name="api:reviews:rate",
                 operation=Operation("Rate how helpful a review of my paper was", "reviews",
                                     {200: RatingView},
                                     request_body={"application/json": r.RatingWrite},
                                     errors=WRITE)),
        ApiRoute(f"{A}/stance", r.api_stance, methods=["GET"], name="api:stance",
                 operation=Operation("Stance analytics (students: cohort aggregates only)",
                                     "reviews", {200: StanceView}, errors=(404,))),
        ApiRoute(f"{A}/reveals", r.api_reveal, methods=["POST"], name="api:reveals:create",
                 operation=Operation(
                     "Reveal who wrote or reviewed a paper (staff, with a reason)", "reviews",
                     {201: RevealView}, request_body={"application/json": r.RevealRequest},
                     errors=(400, 403, 404, 415, 422),
                     description="Written to the audit log in the same transaction; refused "
                                 "(403) to a moderator who is the paper's author or reviewer.")),
        ApiRoute(f"{A}/audit", r.api_audit, methods=["GET"], name="api:audit:list",
                 operation=Operation("The cohort's audit log (instructors)", "reviews",
                                     {200: list[AuditEventView]}, errors=(404,))),
        ApiRoute(f"{A}/phase", r.api_phase, methods=["PUT"], name="api:phase:change",
                 operation=Operation("Move the assignment one phase (instructors)", "reviews",
                                     {200: PhaseView},
                                     request_body={"application/json": r.PhaseChange},
                                     errors=WRITE)),
        ApiRoute(f"{A}/review-events", r.api_review_events, methods=["GET"],
                 name="api:reviews:events",
                 operation=Operation(
                     "Live review status (text/event-stream)", "reviews", {200: SSE_SCHEMA},
                     errors=(404,), media_types=SSE, params=STREAM,
                     description="Staff get completion counts; reviewers get changes to "
                                 "their own tasks. `?poll=1` returns what is pending and ends.")),
    ]  # fmt: skip
