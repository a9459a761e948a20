"""Routes of the discussions area: pages, and the JSON API (documented by each ApiRoute's
Operation). Kept apart from web/routes.py so that areas grow without editing one shared list."""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from services.views import (
    FlaggedPostView,
    FollowView,
    ModerationResultView,
    NotificationsView,
    PostView,
    QuestionDiscussionView,
    RevisionView,
    SearchView,
    ThreadView,
    VoteView,
)
from web.endpoints import discussions as d
from web.openapi import (
    FOCUS,
    IDEMPOTENCY_KEY,
    PAGE,
    PER_PAGE,
    SEARCH_QUERY,
    SORT,
    SSE,
    SSE_SCHEMA,
    STREAM,
    ApiRoute,
    Operation,
)

J = "application/json"


def page_routes() -> list[BaseRoute]:
    return [
        Route("/questions/{question:id}", d.question_page, name="discussions:question"),
        Route("/questions/{question:id}/threads", d.thread_create_form, methods=["POST"],
              name="discussions:thread:create"),
        Route("/threads/{thread:public}", d.thread_page, name="discussions:thread"),
        Route("/threads/{thread:public}/posts", d.reply_form, methods=["POST"],
              name="discussions:reply"),
        Route("/posts/{post:public}/edit", d.edit_form, methods=["POST"],
              name="discussions:post:edit"),
        Route("/posts/{post:public}/delete", d.delete_form, methods=["POST"],
              name="discussions:post:delete"),
        Route("/posts/{post:public}/flag", d.flag_form, methods=["POST"],
              name="discussions:post:flag"),
        Route("/posts/{post:public}/vote", d.vote_form, methods=["POST"],
              name="discussions:post:vote"),
        Route("/moderation", d.moderate_form, methods=["POST"], name="discussions:moderate"),
        Route("/cohorts/{cohort:slug}/flags", d.flags_page, name="discussions:flags"),
        Route("/notifications", d.notifications_page, name="discussions:notifications"),
        Route("/search", d.search_page, name="discussions:search"),
        Route("/notifications/read", d.notifications_read_form, methods=["POST"],
              name="discussions:notifications:read"),
    ]  # fmt: skip


def api_routes() -> list[ApiRoute]:
    return [
        ApiRoute("/questions/{question:id}/threads", d.api_question, methods=["GET"],
                 name="api:threads:list",
                 operation=Operation(
                     "A question's discussion: its threads, post-first state and composer",
                     "discussions", {200: QuestionDiscussionView}, errors=(404,))),
        ApiRoute("/questions/{question:id}/discussion", d.api_question_settings,
                 methods=["PATCH"], name="api:questions:discussion",
                 operation=Operation("Turn post-first on or off (staff)", "discussions",
                                     {200: QuestionDiscussionView},
                                     request_body={J: d.DiscussionSettings},
                                     errors=(400, 404, 415, 422))),
        ApiRoute("/questions/{question:id}/threads", d.api_create_thread, methods=["POST"],
                 name="api:threads:create",
                 operation=Operation("Open a thread", "discussions", {201: ThreadView},
                                     request_body={J: d.ThreadCreate},
                                     errors=(400, 403, 404, 415, 422, 429),
                                     params=(IDEMPOTENCY_KEY,))),
        ApiRoute("/threads/{thread:public}", d.api_thread, methods=["GET"],
                 name="api:threads:detail",
                 operation=Operation(
                     "A thread as I may see it", "discussions", {200: ThreadView},
                     errors=(404, 422), params=(SORT, PAGE, PER_PAGE, FOCUS))),
        ApiRoute("/threads/{thread:public}/posts", d.api_reply, methods=["POST"],
                 name="api:posts:create",
                 operation=Operation("Reply to the thread or to one of its posts", "discussions",
                                     {201: PostView}, request_body={J: d.ReplyCreate},
                                     errors=(400, 403, 404, 415, 422, 429),
                                     params=(IDEMPOTENCY_KEY,))),
        ApiRoute("/threads/{thread:public}/follow", d.api_follow, methods=["PUT"],
                 name="api:threads:follow",
                 operation=Operation("Follow or unfollow a thread", "discussions",
                                     {200: FollowView}, request_body={J: d.FollowChange},
                                     errors=(400, 403, 404, 415, 422))),
        ApiRoute("/threads/{thread:public}/events", d.api_thread_events, methods=["GET"],
                 name="api:threads:events",
                 operation=Operation(
                     "Live updates of a thread (text/event-stream)", "discussions",
                     {200: SSE_SCHEMA}, media_types=SSE, errors=(404,), params=STREAM,
                     description="Server-Sent Events; each event's id is resumable with "
                                 "Last-Event-ID; data is JSON with `kind`, and `post` (a "
                                 "PostView) and `html` for post events.")),
        ApiRoute("/posts/{post:public}", d.api_edit_post, methods=["PATCH"], name="api:posts:edit",
                 operation=Operation(
                     "Edit my post", "discussions", {200: PostView},
                     request_body={J: d.PostEdit}, errors=(400, 403, 404, 409, 415, 422),
                     description="409 `stale_version` carries `current_version`.")),
        ApiRoute("/posts/{post:public}", d.api_delete_post, methods=["DELETE"],
                 name="api:posts:delete",
                 operation=Operation("Delete a post (author or staff)", "discussions",
                                     {204: None}, errors=(403, 404))),
        ApiRoute("/posts/{post:public}/revisions", d.api_revisions, methods=["GET"],
                 name="api:posts:revisions",
                 operation=Operation("A post's earlier versions (staff, or its author)",
                                     "discussions", {200: list[RevisionView]}, errors=(404,))),
        ApiRoute("/posts/{post:public}/vote", d.api_vote, methods=["PUT"], name="api:posts:vote",
                 operation=Operation("Vote a post up, or take the vote back", "discussions",
                                     {200: VoteView}, request_body={J: d.VoteChange},
                                     errors=(400, 403, 404, 415, 422))),
        ApiRoute("/posts/{post:public}/flags", d.api_flag, methods=["POST"], name="api:posts:flag",
                 operation=Operation("Flag a post for the moderators", "moderation",
                                     {204: None}, request_body={J: d.FlagCreate},
                                     errors=(400, 403, 404, 409, 415, 422, 429))),
        ApiRoute("/moderation/actions", d.api_moderate, methods=["POST"],
                 name="api:moderation:act",
                 operation=Operation("Hide, unhide, dismiss flags, lock, unlock, pin, unpin",
                                     "moderation", {200: ModerationResultView},
                                     request_body={J: d.ModerationAction},
                                     errors=(400, 404, 415, 422))),
        ApiRoute("/cohorts/{cohort:slug}/flags", d.api_flag_queue, methods=["GET"],
                 name="api:moderation:flags",
                 operation=Operation("The cohort's flag queue (staff)", "moderation",
                                     {200: list[FlaggedPostView]}, errors=(404,))),
        ApiRoute("/search", d.api_search, methods=["GET"], name="api:search",
                 operation=Operation(
                     "Search the discussions of my cohorts", "discussions", {200: SearchView},
                     errors=(422, 429), params=(SEARCH_QUERY,),
                     description="Anonymity, "
                                 "hidden posts and post-first apply as when reading.")),
        ApiRoute("/notifications", d.api_notifications, methods=["GET"],
                 name="api:notifications:list",
                 operation=Operation("My notifications and the unread count", "notifications",
                                     {200: NotificationsView}, errors=(404,))),
        ApiRoute("/notifications/read", d.api_mark_read, methods=["POST"],
                 name="api:notifications:read",
                 operation=Operation("Mark notifications read", "notifications",
                                     {200: NotificationsView}, request_body={J: d.MarkRead},
                                     errors=(400, 404, 415, 422))),
    ]  # fmt: skip
