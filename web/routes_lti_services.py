"""Routes of LTI Advantage (roster sync, grades): kept apart from web/routes.py and
web/routes_lti.py so that areas grow without editing one shared list."""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from services.lti_grades import GradebookRow, GradingView, SendResult
from web.endpoints import lti_services as s
from web.openapi import ApiRoute, Operation

A = "/assignments/{assignment:id}"
ABOUT = (
    "What becomes a grade in the course's LMS gradebook (LTI Assignment and Grade "
    "Services): measures with weights; each student's score is the weighted mean out of "
    "100. Scores go out when a phase closes and on demand."
)


def page_routes() -> list[BaseRoute]:
    return [
        Route("/cohorts/{cohort:slug}/members/roster-sync", s.roster_sync_form,
              methods=["POST"], name="cohorts:members:roster-sync"),
        Route(A + "/grades", s.grades_page, name="grades:page"),
        Route(A + "/grades", s.grades_save, methods=["POST"], name="grades:save"),
        Route(A + "/grades/send", s.grades_send, methods=["POST"], name="grades:send"),
    ]  # fmt: skip


def api_routes() -> list[ApiRoute]:
    return [
        ApiRoute(A + "/grading", s.api_grading, methods=["GET"], name="api:grading",
                 operation=Operation("What of the assignment becomes a grade (instructors)",
                                     "grades", {200: GradingView}, errors=(404,),
                                     description=ABOUT)),
        ApiRoute(A + "/grading", s.api_save_grading, methods=["PUT"], name="api:grading:save",
                 operation=Operation("Choose the measures and weights of the grade", "grades",
                                     {200: GradingView},
                                     request_body={"application/json": s.GradingUpdate},
                                     errors=(400, 403, 404, 415, 422), description=ABOUT)),
        ApiRoute(A + "/grading/send", s.api_send, methods=["POST"], name="api:grading:send",
                 operation=Operation("Send every student's current score to the LMS now",
                                     "grades", {202: SendResult},
                                     errors=(403, 404, 422))),
        ApiRoute(A + "/gradebook", s.api_gradebook, methods=["GET"], name="api:gradebook",
                 operation=Operation("Per student, the last score sent to the LMS, when, and "
                                     "the LMS's answer", "grades", {200: list[GradebookRow]},
                                     errors=(404,))),
    ]  # fmt: skip
