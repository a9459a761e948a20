"""Tests for services.importing: the assignment document parser."""

from __future__ import annotations

import json
import re
import string
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.errors import ImportRejected, Problem
from services.importing import (
    MAX_DOCUMENT_CHARS,
    MAX_QUESTION_CHARS,
    MAX_QUESTIONS,
    MAX_REFERENCES,
    MAX_RUBRIC_COMPONENTS,
    MAX_TITLE_CHARS,
    AssignmentDraft,
    QuestionDraft,
    RubricComponentDraft,
    parse_assignment_document,
    parse_assignment_structured,
    parse_assignment_text,
)

FIXTURE_NAME = "secure-base-assignment.txt"
FIXTURE_TITLE = "Reflect On The Ways You Have Been A Secure Base For Your Clients"
MARKER = "Paper For Above instruction"


def fixture_path() -> Path:
    """The assignment document as the project ships it (services/demo/)."""
    return Path(__file__).resolve().parents[2] / "services" / "demo" / FIXTURE_NAME


def test_shipped_copy_equals_the_shared_fixture() -> None:
    """The demo ships a copy of ../shared/fixtures; when that folder is beside the
    checkout (on the team's machines and in CI), the copy must be byte-identical."""
    shared = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / FIXTURE_NAME
    if not shared.is_file():
        pytest.skip(f"no shared fixtures beside this checkout ({shared})")
    assert fixture_path().read_bytes() == shared.read_bytes()


@pytest.fixture(scope="module")
def fixture_text() -> str:
    return fixture_path().read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def fixture_draft(fixture_text: str) -> AssignmentDraft:
    return parse_assignment_text(fixture_text)


def build_document(
    title: str = "A Title",
    questions: Sequence[str] = ("What is a secure base?",),
    *,
    paper: Sequence[str] | None = ("A sample paragraph.",),
    references: Sequence[str] | None = ("Bowlby, J. (1988). A secure base.",),
    newline: str = "\n",
) -> str:
    blocks = [title, *questions]
    if paper is not None:
        blocks += [MARKER, *paper]
    if references is not None:
        blocks += ["References", "\n".join(f"  • {ref}" for ref in references)]
    return "\n\n".join(blocks).replace("\n", newline)


def rejection(call: Callable[[], object]) -> list[Problem]:
    with pytest.raises(ImportRejected) as info:
        call()
    assert info.value.code == "import_rejected"
    assert info.value.problems, "ImportRejected must carry at least one problem"
    return info.value.problems


def only_problem(call: Callable[[], object]) -> Problem:
    problems = rejection(call)
    assert len(problems) == 1, problems
    return problems[0]


# ======================================================================================
# The real fixture
# ======================================================================================


class TestFixture:
    def test_title_collapses_repeated_heading_variants(
        self, fixture_draft: AssignmentDraft
    ) -> None:
        assert fixture_draft.title == FIXTURE_TITLE
        assert fixture_draft.instructions == ""

    def test_five_questions(self, fixture_draft: AssignmentDraft) -> None:
        questions = fixture_draft.questions
        assert len(questions) == 5
        assert all(isinstance(q, QuestionDraft) for q in questions)
        assert questions[0].prompt.startswith(
            'Reflect on the ways you have been a "secure base" for your clients. If you have'
        )
        assert questions[0].prompt.endswith("see you do and/or hear you do?")
        assert questions[1].prompt.startswith("Mikulincer & Shaver state that one of the")
        assert questions[2].prompt == (
            "With what components of the Mikulincer & Shaver article did you align or find "
            "helpful? Why? Were there any parts of the article with which you disagreed or did "
            "not find to be helpful? Why?"
        )
        assert questions[3].prompt.startswith("David Wallin, author of Attachment in Psychotherapy")
        assert questions[4].prompt == (
            "Discuss how a therapist's own attachment pattern might impact the therapeutic "
            "process with that therapist's clients."
        )

    def test_questions_are_the_source_paragraphs_verbatim(
        self, fixture_text: str, fixture_draft: AssignmentDraft
    ) -> None:
        paragraphs = [p.strip() for p in fixture_text.split("\n\n")]
        assert [q.prompt for q in fixture_draft.questions] == paragraphs[3:8]

    def test_sample_paper(self, fixture_draft: AssignmentDraft) -> None:
        paper = fixture_draft.sample_paper
        assert paper is not None
        paragraphs = paper.split("\n\n")
        assert len(paragraphs) == 6
        assert paragraphs[0].startswith(
            "The role of the therapist as a secure base is fundamental in fostering effective"
        )
        assert paper.endswith("aligned with attachment theory principles.")
        assert "Mikulincer & Shaver\u2019s perspectives" in paragraphs[1]  # curly apostrophe kept
        assert "Paper For Above" not in paper
        assert "References" not in paper

    def test_references(self, fixture_draft: AssignmentDraft) -> None:
        refs = fixture_draft.references
        assert len(refs) == 10
        assert refs[0].startswith("Mikulincer, M., & Shaver, P. R. (2019)")
        assert refs[1] == "Wallin, D. J. (2007). Attachment in Psychotherapy. Guilford Press."
        assert refs[-1] == (
            "Johnson, S. M. (2019). Attachment theory in clinical work with adults. "
            "Guilford Publications."
        )
        assert not any(r.startswith(("•", " ", "-")) for r in refs)

    def test_text_format_has_no_rubric_and_default_settings(
        self, fixture_draft: AssignmentDraft
    ) -> None:
        assert fixture_draft.stance_source is None
        assert fixture_draft.rubric == ()
        assert fixture_draft.reviews_per_paper == 3
        assert fixture_draft.allow_anonymous_posts is True

    def test_draft_is_frozen(self, fixture_draft: AssignmentDraft) -> None:
        with pytest.raises(AttributeError):
            fixture_draft.title = "changed"  # type: ignore[misc]

    @pytest.mark.parametrize("newline", ["\r\n", "\r"], ids=["crlf", "cr-only"])
    def test_line_ending_variants_give_identical_draft(
        self, fixture_text: str, fixture_draft: AssignmentDraft, newline: str
    ) -> None:
        assert parse_assignment_text(fixture_text.replace("\n", newline)) == fixture_draft

    def test_bom_and_trailing_whitespace_are_ignored(
        self, fixture_text: str, fixture_draft: AssignmentDraft
    ) -> None:
        noisy = (
            "\ufeff"
            + "\n".join(line + " \t\u00a0 " for line in fixture_text.split("\n"))
            + "\n\n\n"
        )
        assert parse_assignment_text(noisy) == fixture_draft

    @pytest.mark.parametrize("content_type", [None, "text/plain", "text/plain; charset=utf-8"])
    def test_document_bytes_with_bom(
        self, fixture_text: str, fixture_draft: AssignmentDraft, content_type: str | None
    ) -> None:
        content = b"\xef\xbb\xbf" + fixture_text.encode("utf-8")
        draft = parse_assignment_document(
            content, filename="secure-base-assignment.txt", content_type=content_type
        )
        assert draft == fixture_draft

    def test_document_str_without_filename(
        self, fixture_text: str, fixture_draft: AssignmentDraft
    ) -> None:
        assert parse_assignment_document(fixture_text) == fixture_draft


# ======================================================================================
# Generated plain-text documents
# ======================================================================================


class TestGeneratedText:
    @pytest.mark.parametrize("count", [2, 8])
    def test_question_count(self, count: int) -> None:
        questions = [f"Question number {i}: explain point {i}." for i in range(1, count + 1)]
        draft = parse_assignment_text(
            build_document("Generated Assignment", questions, paper=["P one.", "P two."])
        )
        assert draft == AssignmentDraft(
            title="Generated Assignment",
            instructions="",
            questions=tuple(QuestionDraft(q) for q in questions),
            sample_paper="P one.\n\nP two.",
            references=("Bowlby, J. (1988). A secure base.",),
        )

    def test_soft_wrapped_lines_are_joined_with_a_space(self) -> None:
        text = (
            "Title\n\nWhat does a secure\nbase look like\n   in practice?\n\n"
            f"{MARKER}\n\nFirst line\nsecond line.\n\nReferences\nRef."
        )
        draft = parse_assignment_text(text)
        assert draft.questions == (QuestionDraft("What does a secure base look like in practice?"),)
        assert draft.sample_paper == "First line second line."

    def test_internal_whitespace_tabs_and_nbsp_are_preserved(self) -> None:
        question = "Compare\tthese  two\u00a0ideas."
        draft = parse_assignment_text(build_document("T", [question]))
        assert draft.questions[0].prompt == question

    def test_non_ascii_text_is_preserved(self) -> None:
        title = "Théorie De L\u2019Attachement \u2014 安全基地"
        question = "\u201cSecure base\u201d \u2014 what does 安全基地 mean to you? Réfléchissez."
        paper = "Le thérapeute est une « base sûre » \u2014 安全感。"
        reference = "Müller, J. (2020). Bindung und Psychotherapie \u2013 Ein Überblick."
        draft = parse_assignment_text(
            build_document(title, [question], paper=[paper], references=[reference])
        )
        assert draft.title == title
        assert draft.questions == (QuestionDraft(question),)
        assert draft.sample_paper == paper
        assert draft.references == (reference,)

    def test_missing_sample_paper(self) -> None:
        draft = parse_assignment_text(build_document("T", ["Q1?", "Q2?"], paper=None))
        assert draft.questions == (QuestionDraft("Q1?"), QuestionDraft("Q2?"))
        assert draft.sample_paper is None
        assert draft.references == ("Bowlby, J. (1988). A secure base.",)

    def test_marker_without_paper_text(self) -> None:
        draft = parse_assignment_text(build_document("T", ["Q1?"], paper=[]))
        assert draft.sample_paper is None
        assert draft.references == ("Bowlby, J. (1988). A secure base.",)

    def test_missing_references(self) -> None:
        draft = parse_assignment_text(build_document("T", ["Q1?"], references=None))
        assert draft.sample_paper == "A sample paragraph."
        assert draft.references == ()

    def test_references_heading_without_entries(self) -> None:
        draft = parse_assignment_text(build_document("T", ["Q1?"], references=[]))
        assert draft.references == ()

    def test_missing_sample_paper_and_references(self) -> None:
        draft = parse_assignment_text(
            build_document("T", ["Q1?", "Q2."], paper=None, references=None)
        )
        assert draft == AssignmentDraft(
            title="T",
            instructions="",
            questions=(QuestionDraft("Q1?"), QuestionDraft("Q2.")),
            sample_paper=None,
            references=(),
        )

    @pytest.mark.parametrize(
        "marker",
        [
            "Paper For Above instruction",
            "Paper for above instructions:",
            "PAPER FOR ABOVE INSTRUCTION  ",
            "paper  for the above instructions :",
            "## Paper For Above Instructions",
        ],
    )
    def test_paper_marker_variants(self, marker: str) -> None:
        text = f"T\n\nQ1?\n\n{marker}\n\nThe paper.\n\nReferences\nRef A."
        draft = parse_assignment_text(text)
        assert draft.questions == (QuestionDraft("Q1?"),)
        assert draft.sample_paper == "The paper."
        assert draft.references == ("Ref A.",)

    @pytest.mark.parametrize(
        "heading", ["References", "references:", "REFERENCES :", "Bibliography", "Works Cited:"]
    )
    def test_references_heading_variants(self, heading: str) -> None:
        text = f"T\n\nQ1?\n\n{MARKER}\n\nThe paper.\n\n{heading}\n\nRef A.\nRef B."
        draft = parse_assignment_text(text)
        assert draft.sample_paper == "The paper."
        assert draft.references == ("Ref A.", "Ref B.")

    def test_references_without_paper_marker_end_the_questions(self) -> None:
        draft = parse_assignment_text("T\n\nQ1?\n\nQ2?\n\nWorks Cited\n- Ref A.")
        assert draft.questions == (QuestionDraft("Q1?"), QuestionDraft("Q2?"))
        assert draft.sample_paper is None
        assert draft.references == ("Ref A.",)

    @pytest.mark.parametrize(
        "bullet",
        ["-", "*", "+", "•", "◦", "▪", "‣", "·", "\u2013", "\u2014", "1.", "1)", "a)", "(a)"],
    )
    def test_every_bullet_kind_in_references(self, bullet: str) -> None:
        text = (
            f"T\n\nQ1?\n\nReferences\n  {bullet} Ref A, (2001). Title.\n\t{bullet} Ref B.\n"
            f"{bullet}  Ref C."
        )
        assert parse_assignment_text(text).references == (
            "Ref A, (2001). Title.",
            "Ref B.",
            "Ref C.",
        )

    @pytest.mark.parametrize(
        "bullet",
        ["-", "*", "+", "•", "◦", "▪", "‣", "·", "\u2013", "\u2014", "1.", "1)", "a)", "(a)"],
    )
    def test_every_bullet_kind_in_a_question(self, bullet: str) -> None:
        text = f"T\n\nConsider the following:\n{bullet} safety\n  {bullet} exploration\n\nQ2?"
        draft = parse_assignment_text(text)
        assert draft.questions == (
            QuestionDraft("Consider the following:\n\n- safety\n- exploration"),
            QuestionDraft("Q2?"),
        )

    def test_unicode_bullets_without_a_space_and_numbered_references(self) -> None:
        text = "T\n\nQ1?\n\nReferences\n•Ref A.\n[1] Ref B.\n12. Ref C.\n(3) Ref D."
        assert parse_assignment_text(text).references == ("Ref A.", "Ref B.", "Ref C.", "Ref D.")

    def test_bullets_attach_to_the_question_across_one_blank_line(self) -> None:
        text = "T\n\nDescribe two behaviours:\n\n- tone of voice\n\n• eye contact\n\nQ2?"
        draft = parse_assignment_text(text)
        assert draft.questions == (
            QuestionDraft("Describe two behaviours:\n\n- tone of voice\n- eye contact"),
            QuestionDraft("Q2?"),
        )

    def test_bullets_after_two_blank_lines_are_separate_questions(self) -> None:
        text = "T\n\nQ1?\n\n\n- Q2?\n- Q3?"
        draft = parse_assignment_text(text)
        assert [q.prompt for q in draft.questions] == ["Q1?", "Q2?", "Q3?"]

    def test_bullets_before_any_question_paragraph_are_one_question_each(self) -> None:
        text = (
            "T\n\n1. Reflect on your practice.\n2. Describe what a camera would\n"
            "   see you do.\n\n3) Discuss attachment.\n\nA paragraph question?\n- with a point"
        )
        draft = parse_assignment_text(text)
        assert [q.prompt for q in draft.questions] == [
            "Reflect on your practice.",
            "Describe what a camera would see you do.",
            "Discuss attachment.",
            "A paragraph question?\n\n- with a point",
        ]

    def test_text_after_a_list_inside_one_paragraph(self) -> None:
        text = "T\n\nConsider:\n- a point\n  wrapped here\n- another\nThen explain why.\n\nQ2?"
        draft = parse_assignment_text(text)
        assert draft.questions[0] == QuestionDraft(
            "Consider:\n\n- a point wrapped here\n- another\n\nThen explain why."
        )

    def test_bullets_in_sample_paper_become_a_list(self) -> None:
        text = f"T\n\nQ?\n\n{MARKER}\n\nIntro:\n• one\n• two\n\nEnd."
        assert parse_assignment_text(text).sample_paper == "Intro:\n\n- one\n- two\n\nEnd."

    def test_dash_without_space_is_not_a_bullet(self) -> None:
        text = "T\n\n-5 degrees is cold.\n\n*emphasis* matters."
        assert [q.prompt for q in parse_assignment_text(text).questions] == [
            "-5 degrees is cold.",
            "*emphasis* matters.",
        ]


class TestTitleBlock:
    def test_most_frequent_variant_wins(self) -> None:
        text = "Secure Base\n\nThe Secure Base\n\nThe Secure Base\n\nQ?"
        assert parse_assignment_text(text).title == "The Secure Base"

    def test_ties_go_to_the_longest_variant(self) -> None:
        text = "Secure Base Reflection\n\nSecure Base Reflections\n\nQ?"
        draft = parse_assignment_text(text)
        assert draft.title == "Secure Base Reflections"
        assert draft.instructions == ""

    def test_near_duplicates_ignore_case_and_punctuation(self) -> None:
        text = "THE SECURE-BASE ASSIGNMENT\n\nThe secure base assignment\n\nQ?"
        draft = parse_assignment_text(text)
        assert draft.title == "THE SECURE-BASE ASSIGNMENT"  # tie on count and length: first
        assert draft.instructions == ""

    def test_distinct_heading_lines_become_instructions(self) -> None:
        text = (
            "Attachment Week 3\n\nAttachment Week 3\n\nAnswer every question below\n"
            "Due Friday at noon\n\nQ1?"
        )
        draft = parse_assignment_text(text)
        assert draft.title == "Attachment Week 3"
        assert draft.instructions == "Answer every question below\n\nDue Friday at noon"
        assert draft.questions == (QuestionDraft("Q1?"),)

    def test_title_and_subtitle_on_consecutive_lines(self) -> None:
        draft = parse_assignment_text("Secure Base\nA reflection\n\nQ?")
        assert draft.title == "Secure Base"
        assert draft.instructions == "A reflection"

    def test_markdown_heading_hashes_are_removed(self) -> None:
        draft = parse_assignment_text("# Secure Base\n\n## Read carefully\n\nQ?")
        assert draft.title == "Secure Base"
        assert draft.instructions == "Read carefully"

    def test_leading_blank_lines_are_skipped(self) -> None:
        draft = parse_assignment_text("\n\n   \n\tTitle\n\nQ?")
        assert draft.title == "Title"

    def test_title_of_exactly_the_maximum_length(self) -> None:
        title = "T" * MAX_TITLE_CHARS
        assert parse_assignment_text(f"{title}\n\nQ?").title == title


# ======================================================================================
# Plain-text rejections
# ======================================================================================


class TestTextRejections:
    @pytest.mark.parametrize("text", ["", "\n\n", "  \t\u00a0\r\n", "\ufeff"])
    def test_empty_document(self, text: str) -> None:
        problem = only_problem(lambda: parse_assignment_text(text))
        assert problem.line == 1
        assert "empty" in problem.message

    def test_title_only(self) -> None:
        problem = only_problem(lambda: parse_assignment_text("\nJust A Title\n"))
        assert problem.line == 2
        assert "no questions found after the title" in problem.message

    def test_title_and_headings_only_explains_the_heading_rule(self) -> None:
        problem = only_problem(lambda: parse_assignment_text("Title\n\nDiscuss attachment"))
        assert problem.line == 1
        assert "no questions found" in problem.message
        assert "read as headings" in problem.message

    def test_no_questions_before_marker(self) -> None:
        text = f"Title\n\n{MARKER}\n\nSome paper.\n\nReferences\n- Ref."
        problem = only_problem(lambda: parse_assignment_text(text))
        assert problem.line == 3
        assert problem.message == "no questions found before line 3 'Paper For Above instruction'"
        assert problem.describe().startswith("line 3: no questions found")

    def test_no_questions_before_references(self) -> None:
        problem = only_problem(lambda: parse_assignment_text("Title\n\nReferences\n- Ref."))
        assert problem.line == 3
        assert problem.message == "no questions found before line 3 'References'"

    def test_marker_with_nothing_before_it(self) -> None:
        text = f"\n{MARKER}\n\nSome paper.\n\nReferences\n- Ref."
        problems = rejection(lambda: parse_assignment_text(text))
        assert [p.line for p in problems] == [2, 2]
        assert "must start with a title" in problems[0].message
        assert (
            problems[1].message == "no questions found before line 2 'Paper For Above instruction'"
        )

    def test_document_starting_with_a_question_has_no_title(self) -> None:
        problem = only_problem(lambda: parse_assignment_text("What is a secure base?\n\nQ2?"))
        assert problem.line == 1
        assert "must start with a title" in problem.message

    def test_title_directly_followed_by_a_question_paragraph(self) -> None:
        problem = only_problem(lambda: parse_assignment_text("Title\nWhat is a base?\n\nQ?"))
        assert problem.line == 1
        assert "followed by a blank line" in problem.message

    def test_over_long_title(self) -> None:
        title = "Word " * 41  # 204 characters after stripping the trailing space
        problem = only_problem(lambda: parse_assignment_text(f"\n\n{title}\n\nQ?"))
        assert problem.line == 3
        assert (
            problem.message == f"the title is 204 characters long; the limit is {MAX_TITLE_CHARS}"
        )

    def test_nul_byte(self) -> None:
        text = "Title\n\nQuestion one?\n\nQuestion\x00two?"
        problem = only_problem(lambda: parse_assignment_text(text))
        assert problem.line == 5
        assert "U+0000 NUL" in problem.message
        assert "column 9" in problem.message

    def test_nul_byte_in_bytes_document(self) -> None:
        problem = only_problem(lambda: parse_assignment_document(b"Title\r\n\r\nQ\x00?"))
        assert problem.line == 3
        assert "NUL" in problem.message

    def test_every_line_with_a_control_character_is_reported(self) -> None:
        text = "Title\x1b\n\nQ1?\x07\n\nQ2\x0c?\n\tTabs are fine."
        problems = rejection(lambda: parse_assignment_text(text))
        assert [p.line for p in problems] == [1, 3, 5]
        assert "U+001B" in problems[0].message
        assert "U+0007" in problems[1].message
        assert "form feed" in problems[2].message

    def test_exactly_max_questions_is_fine(self) -> None:
        questions = [f"Q{i}?" for i in range(MAX_QUESTIONS)]
        draft = parse_assignment_text(build_document("T", questions))
        assert len(draft.questions) == MAX_QUESTIONS

    def test_too_many_questions(self) -> None:
        questions = [f"Q{i}?" for i in range(1, MAX_QUESTIONS + 2)]
        problem = only_problem(lambda: parse_assignment_text(build_document("T", questions)))
        # line 1 title, blank, then every question takes two lines: Q51 is on line 3 + 2*50
        assert problem.line == 3 + 2 * MAX_QUESTIONS
        assert problem.message == (
            f"the document has {MAX_QUESTIONS + 1} questions; at most {MAX_QUESTIONS} are "
            f"allowed (question {MAX_QUESTIONS + 1} starts on this line)"
        )

    def test_over_long_question(self) -> None:
        long_question = "word " * (MAX_QUESTION_CHARS // 5) + "end?"
        problem = only_problem(
            lambda: parse_assignment_text(build_document("T", ["Fine?", long_question]))
        )
        assert problem.line == 5
        assert problem.message.startswith(f"question 2 is {len(long_question.strip()):,}")

    def test_too_many_references(self) -> None:
        refs = [f"Ref {i}." for i in range(MAX_REFERENCES + 1)]
        text = build_document("T", ["Q?"], paper=None, references=refs)
        problem = only_problem(lambda: parse_assignment_text(text))
        assert problem.line == 7 + MAX_REFERENCES  # heading on 5, blank, first reference on 7
        assert "too many references" in problem.message

    def test_document_too_large(self) -> None:
        text = "T\n\n" + ("A long question? " * 20 + "\n\n") * 700
        assert len(text) > MAX_DOCUMENT_CHARS
        problem = only_problem(lambda: parse_assignment_text(text))
        assert problem.line is not None and problem.line > 1
        assert f"{MAX_DOCUMENT_CHARS:,}" in problem.message

    def test_references_before_the_paper_marker(self) -> None:
        text = f"T\n\nQ?\n\nReferences\n- Ref.\n\n{MARKER}\n\nPaper."
        problem = only_problem(lambda: parse_assignment_text(text))
        assert problem.line == 5
        assert "comes before" in problem.message

    def test_second_paper_marker(self) -> None:
        text = f"T\n\nQ?\n\n{MARKER}\n\nPaper.\n\n{MARKER}\n\nMore."
        problem = only_problem(lambda: parse_assignment_text(text))
        assert problem.line == 9
        assert "first is on line 5" in problem.message

    def test_all_problems_are_reported_together(self) -> None:
        long_question = "x" * MAX_QUESTION_CHARS + "?"
        text = f"T\n\n{long_question}\n\nQ?\n\n{long_question}\n\nReferences\n- a\n\n{MARKER}"
        problems = rejection(lambda: parse_assignment_text(text))
        assert [p.line for p in problems] == [3, 7, 9]
        assert all(p.describe().startswith(f"line {p.line}: ") for p in problems)

    def test_rejection_message_summarises_every_problem(self) -> None:
        with pytest.raises(ImportRejected) as info:
            parse_assignment_text("Title")
        assert str(info.value) == (
            "line 1: no questions found after the title (the document ends after line 1)"
        )


# ======================================================================================
# Document decoding and dispatch
# ======================================================================================

STRUCTURED: dict[str, object] = {
    "title": "  Reflect On The Ways You Have Been A Secure Base  ",
    "instructions": "Answer **all** questions.",
    "reviews_per_paper": 2,
    "allow_anonymous_posts": False,
    "questions": [
        {"prompt": ' Reflect on the ways you have been a "secure base". '},
        "Discuss how a therapist's own attachment pattern might matter.",
    ],
    "sample_paper": "Para one.\n\nPara two.",
    "references": ["Bowlby, J. (1988). A secure base.", "Wallin, D. J. (2007)."],
    "rubric": {
        "source": "Mikulincer & Shaver (2019)",
        "components": [
            {
                "key": "secure-base",
                "label": "The therapist as a secure base",
                "description": "Safety before exploration.",
            },
            {"label": "Exploring relational biases"},
        ],
    },
}

STRUCTURED_EXPECTED = AssignmentDraft(
    title="Reflect On The Ways You Have Been A Secure Base",
    instructions="Answer **all** questions.",
    questions=(
        QuestionDraft('Reflect on the ways you have been a "secure base".'),
        QuestionDraft("Discuss how a therapist's own attachment pattern might matter."),
    ),
    sample_paper="Para one.\n\nPara two.",
    references=("Bowlby, J. (1988). A secure base.", "Wallin, D. J. (2007)."),
    stance_source="Mikulincer & Shaver (2019)",
    rubric=(
        RubricComponentDraft(
            key="secure-base",
            label="The therapist as a secure base",
            description="Safety before exploration.",
        ),
        RubricComponentDraft(
            key="exploring-relational-biases", label="Exploring relational biases"
        ),
    ),
    reviews_per_paper=2,
    allow_anonymous_posts=False,
)

STRUCTURED_TOML = '''\
title = "  Reflect On The Ways You Have Been A Secure Base  "
instructions = "Answer **all** questions."
reviews_per_paper = 2
allow_anonymous_posts = false
questions = [
  { prompt = ' Reflect on the ways you have been a "secure base". ' },
  "Discuss how a therapist's own attachment pattern might matter.",
]
sample_paper = """
Para one.

Para two.
"""
references = ["Bowlby, J. (1988). A secure base.", "Wallin, D. J. (2007)."]

[rubric]
source = "Mikulincer & Shaver (2019)"

[[rubric.components]]
key = "secure-base"
label = "The therapist as a secure base"
description = "Safety before exploration."

[[rubric.components]]
label = "Exploring relational biases"
'''


class TestDocumentDispatch:
    def test_json_and_toml_give_the_same_draft(self) -> None:
        from_json = parse_assignment_document(json.dumps(STRUCTURED), filename="a.json")
        from_toml = parse_assignment_document(STRUCTURED_TOML, filename="a.toml")
        assert from_json == STRUCTURED_EXPECTED
        assert from_toml == STRUCTURED_EXPECTED
        assert parse_assignment_structured(STRUCTURED) == STRUCTURED_EXPECTED

    @pytest.mark.parametrize(
        ("filename", "content_type"),
        [
            (None, "application/json"),
            ("upload.bin", "application/json; charset=utf-8"),
            ("ASSIGNMENT.JSON", None),
            ("assignment.json", "application/octet-stream"),
            (None, None),  # sniffed: the text starts with "{"
            ("notes.txt", "text/plain"),  # sniffed too
        ],
    )
    def test_json_detection(self, filename: str | None, content_type: str | None) -> None:
        content = ("\ufeff  \n" + json.dumps(STRUCTURED, indent=2)).encode("utf-8")
        draft = parse_assignment_document(content, filename=filename, content_type=content_type)
        assert draft == STRUCTURED_EXPECTED

    @pytest.mark.parametrize(
        ("filename", "content_type"),
        [("a.toml", None), ("A.TOML", "text/plain"), (None, "application/toml")],
    )
    def test_toml_detection(self, filename: str | None, content_type: str | None) -> None:
        content = b"\xef\xbb\xbf" + STRUCTURED_TOML.encode("utf-8")
        draft = parse_assignment_document(content, filename=filename, content_type=content_type)
        assert draft == STRUCTURED_EXPECTED

    def test_plain_text_is_the_fallback(self) -> None:
        draft = parse_assignment_document("Title\n\nQ?", filename="a.md", content_type="text/md")
        assert draft.title == "Title"
        assert draft.questions == (QuestionDraft("Q?"),)

    def test_invalid_utf8(self) -> None:
        content = b"Title\n\nQ1?\n\nCaf\xe9 au lait?"
        problem = only_problem(lambda: parse_assignment_document(content, filename="a.txt"))
        assert problem.line == 5
        assert "not valid UTF-8" in problem.message
        assert "0xe9" in problem.message

    def test_utf16_is_rejected_as_not_utf8(self) -> None:
        content = "Title\n\nQ?".encode("utf-16")
        problem = only_problem(lambda: parse_assignment_document(content))
        assert problem.line == 1
        assert "UTF-8" in problem.message

    def test_oversized_bytes_are_rejected_before_decoding(self) -> None:
        content = b"x" * (4 * MAX_DOCUMENT_CHARS + 1)
        problem = only_problem(lambda: parse_assignment_document(content))
        assert problem.line == 1
        assert "bytes long" in problem.message

    def test_oversized_json_is_rejected(self) -> None:
        content = json.dumps({"title": "T", "questions": ["q" * MAX_DOCUMENT_CHARS]})
        problem = only_problem(lambda: parse_assignment_document(content))
        assert f"{MAX_DOCUMENT_CHARS:,}" in problem.message
        assert problem.line == 1

    def test_malformed_json_names_the_line(self) -> None:
        content = '{\n  "title": "T",\n  "questions": ["a",]\n}'
        problem = only_problem(lambda: parse_assignment_document(content, filename="a.json"))
        assert problem.line == 3
        assert problem.message.startswith("this is not valid JSON: Expecting value")

    def test_malformed_json_with_crlf_names_the_line(self) -> None:
        content = b'{\r\n"title": "T",\r\n\r\n"questions": [1 2]}'
        problem = only_problem(lambda: parse_assignment_document(content, filename="a.json"))
        assert problem.line == 4

    def test_duplicate_json_key(self) -> None:
        content = '{"title": "A", "questions": ["q"], "title": "B"}'
        problem = only_problem(lambda: parse_assignment_document(content))
        assert problem.message == "the key 'title' appears more than once in the same JSON object"

    def test_deeply_nested_json_does_not_crash(self) -> None:
        content = '{"title": "T", "questions": ' + "[" * 20_000 + "]" * 20_000 + "}"
        problem = only_problem(lambda: parse_assignment_document(content))
        assert problem.message == "the JSON document is nested too deeply to be read"

    def test_very_deeply_nested_json_does_not_crash(self) -> None:
        content = "[" * 90_000 + "]" * 90_000
        problem = only_problem(lambda: parse_assignment_document(content, filename="deep.json"))
        assert "nested too deeply" in problem.message

    def test_huge_json_number(self) -> None:
        content = '{"title": "T", "questions": ["q"], "reviews_per_paper": ' + "9" * 5000 + "}"
        problem = only_problem(lambda: parse_assignment_document(content))
        assert "too many digits" in problem.message

    def test_malformed_toml_names_the_line(self) -> None:
        content = 'title = "T"\nquestions = [\n  "a",\n  b\n]\n'
        problem = only_problem(lambda: parse_assignment_document(content, filename="a.toml"))
        assert problem.line == 4
        assert problem.message.startswith("this is not valid TOML: ")

    def test_toml_duplicate_key_names_the_line(self) -> None:
        content = 'title = "A"\nquestions = ["q"]\ntitle = "B"\n'
        problem = only_problem(lambda: parse_assignment_document(content, filename="a.toml"))
        assert problem.line == 3

    def test_unterminated_toml(self) -> None:
        content = 'title = "T"\nquestions = ['
        problem = only_problem(lambda: parse_assignment_document(content, filename="a.toml"))
        assert problem.line == 2
        assert "end of the document" in problem.message


# ======================================================================================
# Structured format
# ======================================================================================


def structured(**changes: object) -> dict[str, object]:
    data: dict[str, object] = {"title": "T", "questions": ["Q?"]}
    data.update(changes)
    return {k: v for k, v in data.items() if v is not ...}


class TestStructured:
    def test_minimal_document_uses_defaults(self) -> None:
        assert parse_assignment_structured(structured()) == AssignmentDraft(
            title="T",
            instructions="",
            questions=(QuestionDraft("Q?"),),
            sample_paper=None,
            references=(),
        )

    def test_markdown_in_prompts_is_kept(self) -> None:
        prompt = "Consider:\n\n- safety\n- exploration\n\nWhy?"
        draft = parse_assignment_structured(structured(questions=[{"prompt": prompt}]))
        assert draft.questions == (QuestionDraft(prompt),)

    @pytest.mark.parametrize("paper", ["", "  \n ", None])
    def test_blank_sample_paper_is_none(self, paper: str | None) -> None:
        assert parse_assignment_structured(structured(sample_paper=paper)).sample_paper is None

    def test_rubric_without_source_or_components(self) -> None:
        draft = parse_assignment_structured(structured(rubric={}))
        assert draft.stance_source is None
        assert draft.rubric == ()

    def test_rubric_keys_are_derived_from_labels(self) -> None:
        rubric = {
            "components": [
                {"label": "  Théorie de l'attachement  "},
                {"label": "安全基地"},
                {"label": "Secure base (Bowlby, 1988)", "key": " bowlby "},
            ]
        }
        draft = parse_assignment_structured(structured(rubric=rubric))
        assert draft.rubric == (
            RubricComponentDraft(key="theorie-de-l-attachement", label="Théorie de l'attachement"),
            RubricComponentDraft(key="component-2", label="安全基地"),
            RubricComponentDraft(key="bowlby", label="Secure base (Bowlby, 1988)"),
        )

    def test_exact_limits_are_accepted(self) -> None:
        data = structured(
            title="T" * MAX_TITLE_CHARS,
            questions=["q" * MAX_QUESTION_CHARS] * MAX_QUESTIONS,
            references=["r"] * MAX_REFERENCES,
            rubric={"components": [{"label": f"C{i}"} for i in range(MAX_RUBRIC_COMPONENTS)]},
        )
        draft = parse_assignment_structured(data)
        assert len(draft.questions) == MAX_QUESTIONS
        assert len(draft.rubric) == MAX_RUBRIC_COMPONENTS

    @pytest.mark.parametrize(
        ("data", "field", "message"),
        [
            (structured(title=...), "title", "is required but missing"),
            (structured(title="   "), "title", "must not be empty"),
            (structured(title="A\nB"), "title", "must be a single line (it contains a line break)"),
            (structured(title=7), "title", "must be text, not a number"),
            (structured(questions=...), "questions", "is required but missing"),
            (structured(questions=[]), "questions", "must contain at least one question"),
            (structured(questions="Q?"), "questions", "must be a list, not text"),
            (structured(questions=["ok", " "]), "questions[1].prompt", "must not be empty"),
            (
                structured(questions=["a", "b", {"prompt": ""}]),
                "questions[2].prompt",
                "must not be empty",
            ),
            (structured(questions=[{}]), "questions[0].prompt", "is required but missing"),
            (
                structured(questions=[3]),
                "questions[0]",
                'each question must be text or an object with a "prompt", not a number',
            ),
            (
                structured(questions=[{"prompt": "a", "points": 2}]),
                "questions[0].points",
                "is not a recognised field; allowed fields here are: prompt",
            ),
            (
                structured(reviews_per_paper=0),
                "reviews_per_paper",
                "must be between 1 and 10 (got 0)",
            ),
            (
                structured(reviews_per_paper=11),
                "reviews_per_paper",
                "must be between 1 and 10 (got 11)",
            ),
            (
                structured(reviews_per_paper="3"),
                "reviews_per_paper",
                "must be a whole number, not text",
            ),
            (
                structured(reviews_per_paper=True),
                "reviews_per_paper",
                "must be a whole number, not true/false",
            ),
            (
                structured(reviews_per_paper=2.5),
                "reviews_per_paper",
                "must be a whole number, not a number",
            ),
            (
                structured(allow_anonymous_posts="yes"),
                "allow_anonymous_posts",
                "must be true or false, not text",
            ),
            (structured(references=["ok", ""]), "references[1]", "must not be empty"),
            (structured(rubric=[]), "rubric", "must be an object with named fields, not a list"),
            (
                structured(rubric={"components": [{"key": "x"}]}),
                "rubric.components[0].label",
                "is required but missing",
            ),
            (
                structured(rubric={"components": [{"label": "L", "key": "Secure Base"}]}),
                "rubric.components[0].key",
                "must be a slug of lowercase letters, digits and single hyphens, e.g. "
                "'secure-base' (got 'Secure Base')",
            ),
            (
                structured(rubric={"weight": 1}),
                "rubric.weight",
                "is not a recognised field; allowed fields here are: source, components",
            ),
        ],
    )
    def test_single_field_rejections(self, data: object, field: str, message: str) -> None:
        problem = only_problem(lambda: parse_assignment_structured(data))
        assert (problem.field, problem.message) == (field, message)
        assert problem.line is None

    def test_unknown_top_level_key(self) -> None:
        problem = only_problem(lambda: parse_assignment_structured(structured(due_date="soon")))
        assert problem.field == "due_date"
        assert problem.message.startswith(
            "is not a recognised field; allowed fields here are: title,"
        )

    @pytest.mark.parametrize("data", [[], "text", None, 3])
    def test_top_level_must_be_an_object(self, data: object) -> None:
        problem = only_problem(lambda: parse_assignment_structured(data))
        assert problem.field is None
        assert problem.message.startswith("the document must be an object")

    def test_duplicate_rubric_keys(self) -> None:
        rubric = {
            "components": [
                {"key": "secure-base", "label": "A"},
                {"key": "other", "label": "B"},
                {"key": "secure-base", "label": "C"},
            ]
        }
        problem = only_problem(lambda: parse_assignment_structured(structured(rubric=rubric)))
        assert problem.field == "rubric.components[2].key"
        assert problem.message == (
            "the key 'secure-base' (given) is already used by rubric.components[0]; "
            "rubric keys must be unique"
        )

    def test_duplicate_derived_rubric_keys(self) -> None:
        rubric = {"components": [{"label": "Secure base"}, {"label": "Secure  Base!"}]}
        problem = only_problem(lambda: parse_assignment_structured(structured(rubric=rubric)))
        assert problem.field == "rubric.components[1]"
        assert "derived from the label 'Secure  Base!'" in problem.message

    @pytest.mark.parametrize(
        ("data", "field"),
        [
            (structured(title="T" * (MAX_TITLE_CHARS + 1)), "title"),
            (structured(questions=["q" * (MAX_QUESTION_CHARS + 1)]), "questions[0].prompt"),
            (structured(questions=["q"] * (MAX_QUESTIONS + 1)), "questions"),
            (structured(references=["r"] * (MAX_REFERENCES + 1)), "references"),
            (
                structured(
                    rubric={
                        "components": [{"label": f"C{i}"} for i in range(MAX_RUBRIC_COMPONENTS + 1)]
                    }
                ),
                "rubric.components",
            ),
        ],
    )
    def test_limits(self, data: object, field: str) -> None:
        problem = only_problem(lambda: parse_assignment_structured(data))
        assert problem.field == field
        assert re.search(r"at most [\d,]+ (characters )?are allowed", problem.message)

    def test_control_characters_in_strings(self) -> None:
        problem = only_problem(
            lambda: parse_assignment_structured(structured(questions=["ok", "bad\x00"]))
        )
        assert problem.field == "questions[1].prompt"
        assert "U+0000 NUL at character 4" in problem.message

    def test_all_problems_are_reported_together(self) -> None:
        data = {"title": "", "questions": ["ok", ""], "reviews_per_paper": 11, "extra": 1}
        problems = rejection(lambda: parse_assignment_structured(data))
        assert sorted(p.field or "" for p in problems) == [
            "extra",
            "questions[1].prompt",
            "reviews_per_paper",
            "title",
        ]

    def test_deeply_nested_value_does_not_crash(self) -> None:
        nested: object = "q"
        for _ in range(100_000):
            nested = [nested]
        problem = only_problem(
            lambda: parse_assignment_structured({"title": "T", "questions": nested})
        )
        assert problem.field == "questions[0]"
        assert problem.message.endswith("not a list")


# ======================================================================================
# Property: generated question paragraphs survive a round trip
# ======================================================================================

_START_WORD = st.text(alphabet=string.ascii_letters + "éüçñß", min_size=2, max_size=10)
_WORD = st.text(alphabet=string.ascii_letters + "éü,;:'\"()&!-", min_size=1, max_size=10)
_MARKER_LIKE = re.compile(
    r"(references?|bibliography|works cited|paper for (the )?above instructions?)", re.I
)


@st.composite
def _line(draw: st.DrawFn) -> str:
    words = [draw(_START_WORD), *draw(st.lists(_WORD, max_size=8))]
    return " ".join(words)


@st.composite
def _paragraph(draw: st.DrawFn) -> list[str]:
    lines = draw(
        st.lists(_line().filter(lambda s: not _MARKER_LIKE.fullmatch(s)), min_size=1, max_size=4)
    )
    lines[-1] += draw(st.sampled_from(["?", "."]))
    return lines


@settings(deadline=None, database=None)
@given(
    paragraphs=st.lists(_paragraph(), min_size=1, max_size=8),
    newline=st.sampled_from(["\n", "\r\n", "\r"]),
)
def test_generated_question_paragraphs_round_trip(
    paragraphs: list[list[str]], newline: str
) -> None:
    blocks = [
        "Generated Assignment Title",
        *("\n".join(lines) for lines in paragraphs),
        MARKER,
        "The sample paper paragraph.",
        "References",
        "  • Author, A. (2020). A reference.",
    ]
    text = "\n\n".join(blocks).replace("\n", newline)
    draft = parse_assignment_text(text)
    assert draft.title == "Generated Assignment Title"
    assert [q.prompt for q in draft.questions] == [" ".join(lines) for lines in paragraphs]
    assert draft.sample_paper == "The sample paper paragraph."
    assert draft.references == ("Author, A. (2020). A reference.",)
