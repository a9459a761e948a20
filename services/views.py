"""Per-viewer public shapes: what a viewer receives about each object, and nothing more.

These pydantic models are the JSON the API returns and the schemas its OpenAPI document
publishes; pages render from the same views, so templates never decide who may see what.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from services.models import (
    ComponentStance,
    LatePolicy,
    MailMode,
    Phase,
    Role,
    Stance,
    TaskStatus,
)


class View(BaseModel):
    model_config = ConfigDict(frozen=True)


class CohortView(View):
    slug: str
    name: str
    my_role: Role | None
    can_manage: bool
    time_zone: str = Field(
        description="IANA time zone its deadlines are set and shown in (times in the API are UTC)"
    )
    can_set_time_zone: bool


NEW_POSTS = (
    "Posts by others in this discussion that you have not read yet: posted after you last "
    "opened their thread (a thread you never opened counts whole); only posts you may read, "
    "never hidden or deleted ones."
)


class QuestionView(View):
    id: int
    position: int
    prompt: str
    prompt_html: str
    new_posts: int | None = Field(
        default=None,
        description=NEW_POSTS + " Always a number in the API's answers.",
    )


class RubricComponentView(View):
    key: str
    label: str
    description: str
    question: int | None = None  # the number (position) of the question it comes from


class RubricView(View):
    source: str | None
    components: list[RubricComponentView]


class AssignmentSummaryView(View):
    id: int
    cohort: str
    title: str
    phase: Phase
    paper_due_at: datetime | None
    review_due_at: datetime | None
    question_count: int


class AssignmentView(View):
    id: int
    cohort: str
    title: str
    instructions: str
    instructions_html: str
    phase: Phase
    paper_due_at: datetime | None
    review_due_at: datetime | None
    reviews_per_paper: int
    auto_advance: bool  # phases move at the deadlines
    late_policy: LatePolicy
    stance_source: str | None  # what reviewers judge the paper against
    allow_anonymous_posts: bool
    version: int
    questions: list[QuestionView]
    rubric: RubricView
    sample_paper: str | None
    sample_paper_html: str | None
    references: list[str]
    can_manage: bool
    can_export_posts: bool  # students: the posts export, as they read the discussion


class TokenView(View):
    id: int
    name: str
    prefix: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked: bool


class TokenCreatedView(TokenView):
    token: str


class MeCohortView(View):
    slug: str
    name: str
    role: Role


class MeUserView(View):
    id: int
    display_name: str
    email: str | None
    is_administrator: bool


class MeView(View):
    user: MeUserView | None
    cohorts: list[MeCohortView]
    csrf_token: str | None


class MemberView(View):
    user_id: int
    display_name: str
    email: str | None
    role: Role
    source: str
    joined_at: datetime


class JoinCodeView(View):
    join_code: str | None
    expires_at: datetime | None


class GroupRuleView(View):
    id: int
    issuer: str
    group: str
    role: Role


# === discussions (issue 4) ==================================================================
# No view here carries a person's id: an author is a display string the presenter chose for
# this viewer (a real name, or the assignment alias), and times are cut to the minute.


class AuthorView(View):
    name: str
    anonymous: bool  # posted "anonymous to classmates"
    is_you: bool
    # Staff and the author see both; peers see only `name` (the alias).
    alias: str | None = None


class PostView(View):
    id: str
    parent: str | None
    depth: int
    author: AuthorView | None  # null once deleted (for everyone but staff)
    body: str | None  # the markdown, for the author's edit box; null when not readable
    body_html: str
    version: int
    score: int
    voted: bool
    created_at: datetime
    edited: bool
    deleted: bool
    hidden: bool
    hidden_reason: str | None
    # Replies deeper than the display cap: follow `continue_url` to read them.
    more_replies: int
    can_reply: bool
    can_edit: bool
    can_delete: bool
    can_flag: bool
    can_vote: bool


class ThreadSummaryView(View):
    id: str
    question: int
    title: str
    author: AuthorView
    pinned: bool
    locked: bool
    hidden: bool
    post_count: int
    created_at: datetime
    last_activity_at: datetime
    new_posts: int = Field(default=0, description=NEW_POSTS)


class PageInfoView(View):
    sort: str
    page: int
    per_page: int
    pages: int
    top_level_replies: int
    focus: str | None


class ThreadView(View):
    id: str
    question: int
    assignment: int
    cohort: str
    # Where the thread sits, for the breadcrumb trail (cohort, assignment, question).
    cohort_name: str
    assignment_title: str
    question_position: int
    title: str
    pinned: bool
    locked: bool
    following: bool
    post_count: int
    created_at: datetime
    last_activity_at: datetime
    opening: PostView
    posts: list[PostView]
    page: PageInfoView
    can_reply: bool
    can_moderate: bool
    can_post_anonymously: bool
    identity_notice: str


class ComposerView(View):
    can_post: bool
    can_post_anonymously: bool
    identity_notice: str
    anonymous_notice: str | None


class QuestionDiscussionView(View):
    question: int
    assignment: int
    assignment_title: str
    cohort: str
    cohort_name: str
    position: int
    prompt_html: str
    post_first: bool
    has_posted: bool
    # Post-first: the classmates' threads are withheld until you open yours.
    withheld: bool
    threads: list[ThreadSummaryView]
    composer: ComposerView
    can_moderate: bool
    new_posts: int = Field(default=0, description=NEW_POSTS + " The sum over `threads`.")


class RevisionView(View):
    version: int
    body: str
    body_html: str
    created_at: datetime
    edited_by: AuthorView


class FlagView(View):
    reason: str
    note: str
    created_at: datetime


class FlaggedPostView(View):
    post: str
    thread: str
    thread_title: str
    author: AuthorView
    body_html: str
    hidden: bool
    hidden_reason: str | None
    open_flags: int
    flags: list[FlagView]


class ModerationResultView(View):
    action: str
    target: str
    hidden: bool | None = None
    locked: bool | None = None
    pinned: bool | None = None


class VoteView(View):
    post: str
    score: int
    voted: bool


class FollowView(View):
    thread: str
    following: bool


class NotificationView(View):
    id: str
    kind: str
    message: str
    thread: str | None
    post: str | None
    # Who replied, as the reader may know them: a named reply's author, an anonymous one's
    # alias (the name only for staff and the author); None when there is nobody to name.
    replier: str | None = None
    created_at: datetime
    read: bool


class DueItemView(View):
    """One thing a student has to do on an assignment: `kind` is paper, reviews or
    feedback; `count` how many (reviews, ratings); `due_at` when, if there is a deadline."""

    kind: str
    text: str
    count: int | None = None
    due_at: datetime | None = None


class NotificationsView(View):
    unread: int
    items: list[NotificationView]


class SearchHitView(View):
    thread: str
    thread_title: str
    post: str | None
    question: int
    snippet: str
    author: AuthorView | None


class SearchView(View):
    query: str
    hits: list[SearchHitView]


# === peer review (issue 5) ==================================================================


# === exemplars (issue 6) ====================================================================


class ExemplarView(View):
    id: str
    assignment_id: int
    question_id: int | None
    kind: str
    title: str
    body_html: str
    note_html: str
    position: int
    # "Anonymous Heron", a name (only with the author's consent), or the assignment itself.
    attribution_label: str
    details: dict[str, object]
    # What only curators (and, for attribution, the author) see:
    status: str | None = None
    attribution: str | None = None
    author_name: str | None = None
    source_changed: bool | None = None
    version: int | None = None
    is_mine: bool = False


# What each side of the peer review sees. Reviewers get "Paper K7Q2" and the text; authors
# get "Reviewer N"; staff get the same aliases until they reveal (RevealView). No view here
# carries a user id, name or email except RevealView and AuditEventView.


class MyPaperView(View):
    assignment_id: int
    status: str  # "none", "draft" or "submitted"
    body: str
    body_html: str
    version: int
    submitted_at: datetime | None
    late: bool
    can_edit: bool


class ComponentStanceView(View):
    key: str
    stance: ComponentStance


class EvidenceView(View):
    component: str | None  # rubric component key; null: the overall stance
    text: str
    start: int
    end: int


class ReviewDraftView(View):
    id: str
    overall_stance: Stance | None
    components: list[ComponentStanceView]
    evidence: list[EvidenceView]
    rationale: str
    suggestion: str
    version: int
    submitted: bool


class ReceivedRatingView(View):
    rating: int
    comment: str


class TaskSummaryView(View):
    id: str
    paper: str  # "Paper K7Q2"
    status: TaskStatus
    rating: ReceivedRatingView | None  # how the author rated it (feedback phase)


class TaskDetailView(View):
    id: str
    assignment_id: int
    paper: str
    paper_text: str
    status: TaskStatus
    source: str | None
    rubric: list[RubricComponentView]
    review: ReviewDraftView | None
    can_edit: bool
    rating: ReceivedRatingView | None


class FeedbackReviewView(View):
    id: str  # the review's opaque id (rate it at /reviews/{id}/rating)
    reviewer: str  # "Reviewer 2"
    overall_stance: Stance | None
    components: list[ComponentStanceView]
    evidence: list[EvidenceView]
    rationale: str
    suggestion: str
    my_rating: ReceivedRatingView | None


class FeedbackView(View):
    assignment_id: int
    paper_html: str  # the paper's text with every quoted passage in <mark>
    reviews: list[FeedbackReviewView]
    can_rate: bool


class StanceCountView(View):
    stance: str
    count: int


class ComponentDistributionView(View):
    key: str
    label: str
    counts: list[StanceCountView]
    agreement: float | None  # share of pairs of reviewers of the same paper who agree


class PaperStanceView(View):
    paper: str
    reviews: int
    counts: list[StanceCountView]
    median: str | None
    consensus: str  # "consensus", "majority", "split", "no reviews"
    spread: int | None  # highest minus lowest rank on the ordinal scale
    components: list[ComponentDistributionView]


class ReviewerAgreementView(View):
    reviewer: str  # an alias stable within the assignment ("Reviewer ab12")
    reviews: int
    mean_distance: float | None  # mean |rank difference| to co-reviewers of the same papers


class StanceView(View):
    assignment_id: int
    source: str | None
    scale: list[str]
    overall: list[StanceCountView]
    components: list[ComponentDistributionView]
    alpha_ordinal: float | None
    pairable_values: int
    # Staff only (null for students): completion and per-paper / per-reviewer detail.
    completion: CompletionView | None
    papers: list[PaperStanceView] | None
    most_disagreement: list[PaperStanceView] | None
    reviewers: list[ReviewerAgreementView] | None


class CompletionView(View):
    papers: int
    tasks: int
    submitted: int
    started: int
    assigned: int


class AllocationTaskView(View):
    id: str
    reviewer: str  # "Reviewer N" (staff reveal names with a reason)
    status: TaskStatus
    by_hand: bool


class AllocationPaperView(View):
    id: str
    paper: str
    submitted: bool
    tasks: list[AllocationTaskView]


class ExclusionView(View):
    """A conflict of interest, for staff: names only, never a paper."""

    id: int
    reviewer: str
    author: str
    created_at: datetime


class AllocationView(View):
    assignment_id: int
    phase: Phase
    reviews_per_paper: int
    papers: list[AllocationPaperView]
    completion: CompletionView


class RatingView(View):
    review: str
    rating: int
    comment: str


class RevealedPersonView(View):
    role: str  # "author" or "Reviewer N"
    display_name: str
    email: str | None


class RevealView(View):
    paper: str
    reason: str
    people: list[RevealedPersonView]


class AuditEventView(View):
    id: int
    action: str
    actor: str | None
    target_type: str
    target_id: str
    reason: str
    details: dict[str, object]
    created_at: datetime


class PhaseView(View):
    assignment_id: int
    phase: Phase
    tasks_created: int


StanceView.model_rebuild()


class QuestionParticipationView(View):
    question_id: int
    position: int
    threads: int
    posts: int
    students_posted: int
    not_yet_posted: list[str]  # names: this view is for staff only


class FlaggedInWorkspaceView(View):
    """A post with open flags, as the workspace lists it (the cohort's flag page acts on it)."""

    post: str
    thread: str
    thread_title: str
    question_position: int
    open_flags: int
    reasons: list[str]  # distinct, most frequent first
    hidden: bool
    first_flagged_at: datetime


class AuditEntryView(View):
    at: datetime
    actor: str
    action: str
    target: str
    reason: str


class WorkspaceView(View):
    assignment_id: int
    cohort: str  # slug
    title: str
    phase: Phase
    students: int
    participation: list[QuestionParticipationView]
    open_flags: int
    flagged: list[FlaggedInWorkspaceView]  # most flagged first, at most 10
    papers_submitted: int
    papers_late: int
    completion: CompletionView | None
    overdue_tasks: int
    stance: StanceView | None
    recent_audit: list[AuditEntryView] | None  # instructors only
    exports: list[str] = []  # the export kinds this viewer may take (audit: instructors)


# === mail (issue 14) ========================================================================


class MailKindView(View):
    kind: str
    label: str
    mode: MailMode
    default: MailMode


class NotificationPreferencesView(View):
    """How the signed-in person hears of each kind of notice by e-mail."""

    kinds: list[MailKindView]
