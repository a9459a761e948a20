"""Reading paper files: the kind comes from the bytes, only the text comes out, and every
place a file names its author (properties, comments, tracked changes, PDF Info and XMP)
stays behind."""

from __future__ import annotations

import io
import zipfile

import mammoth
import pytest

from services import documents
from services.documents import DocumentKind
from services.errors import Invalid
from services.markdown import MAX_MARKDOWN_CHARS
from tests.document_support import (
    DELETED,
    INSERTED,
    make_docx,
    make_pdf,
    with_embedded_style_map,
)
from tests.web.canary_support import canary

PARAGRAPHS = [
    "A secure base is a reliable presence from which the client explores.",
    "Attunement means noticing when the client withdraws.",
]


def refusal(data: bytes) -> str:
    with pytest.raises(Invalid) as caught:
        documents.extract(data)
    [problem] = caught.value.problems
    assert problem.field == "file"
    return problem.message


def test_a_word_document_gives_its_text_with_tracked_changes_accepted_and_no_author() -> None:
    author = canary("author")
    data = make_docx(PARAGRAPHS, author=author, heading="On being a secure base")
    # The file does carry the name, in its properties, comments and tracked changes.
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        parts = {name: archive.read(name) for name in archive.namelist()}
    assert author.encode() in parts["docProps/core.xml"]
    assert author.encode() in parts["word/comments.xml"]
    assert author.encode() in parts["word/document.xml"]

    extracted = documents.extract(data)

    assert extracted.kind is DocumentKind.docx
    assert extracted.text == (
        f"# On being a secure base\n\n{PARAGRAPHS[0]}\n\n{PARAGRAPHS[1]}\n\nLast words. {INSERTED}"
    )
    assert author not in extracted.text
    assert DELETED not in extracted.text
    assert "A note from" not in extracted.text


def test_a_style_map_inside_the_file_cannot_switch_comments_on() -> None:
    author = canary("author")
    data = with_embedded_style_map(make_docx(PARAGRAPHS, author=author), "comment-reference => sup")
    # mammoth left to its defaults would honour the file's own map and print the comment.
    assert author in mammoth.convert_to_html(io.BytesIO(data)).value
    assert author not in documents.extract(data).text


def test_lists_keep_their_markers() -> None:
    from docx import Document

    document = Document()
    document.add_paragraph("first point", style="List Bullet")
    document.add_paragraph("second point", style="List Bullet")
    out = io.BytesIO()
    document.save(out)
    assert documents.extract(out.getvalue()).text == "- first point\n\n- second point"


def test_a_pdf_gives_its_page_text_and_not_its_info_or_xmp() -> None:
    author = canary("author")
    data = make_pdf(PARAGRAPHS, author=author)
    assert author.encode() in data  # Info and XMP hold it

    extracted = documents.extract(data)

    assert extracted.kind is DocumentKind.pdf
    assert extracted.text == "\n".join(PARAGRAPHS)
    assert author not in extracted.text


def test_markdown_and_text_files_are_taken_as_typed() -> None:
    data = "\ufeff# Title\r\n\r\n\r\n\r\nSome *markdown*.   \r\nCafe\u0301\r\n".encode()
    extracted = documents.extract(data)
    assert extracted.kind is DocumentKind.text
    assert extracted.text == "# Title\n\nSome *markdown*.\nCafé"


def test_the_name_and_declared_type_do_not_matter_only_the_bytes() -> None:
    # There is no name or type to pass: sniff reads bytes only.
    assert documents.sniff(make_docx(PARAGRAPHS)) is DocumentKind.docx
    assert documents.sniff(make_pdf(PARAGRAPHS)) is DocumentKind.pdf
    assert documents.sniff(b"plain words") is DocumentKind.text


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"", "is empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "is not a .docx, .pdf, .md or .txt file"),
        (b"caf\xe9 latin-1 text", "is not a .docx, .pdf, .md or .txt file"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 64, "older Word (.doc)"),
        (b"PK\x03\x04 not really a zip", "damaged"),
        (b"%PDF-1.7\nnot really a pdf", "could not be read as a PDF"),
    ],
)
def test_other_or_damaged_files_are_refused_with_a_reason(data: bytes, says: str) -> None:
    assert says in refusal(data)


def test_a_zip_that_is_not_a_word_document_is_refused() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("content.xml", "<office:document/>")  # an OpenDocument, say
    assert "is not a .docx, .pdf, .md or .txt file" in refusal(out.getvalue())


def test_a_damaged_word_document_is_refused() -> None:
    data = make_docx(PARAGRAPHS)
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(data)) as source,
        zipfile.ZipFile(out, "w") as target,
    ):
        for item in source.infolist():
            body = source.read(item.filename)
            if item.filename == "word/document.xml":
                body = body[: len(body) // 2]  # cut in the middle of the XML
            target.writestr(item, body)
    assert "could not be read as a Word document" in refusal(out.getvalue())


def test_a_word_document_that_unpacks_to_far_more_than_a_paper_is_refused() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("word/document.xml", b" " * (documents.MAX_DOCX_UNZIPPED_BYTES + 1))
    assert len(out.getvalue()) < 1024 * 1024
    assert "unpacks to far more" in refusal(out.getvalue())


def test_an_encrypted_pdf_is_refused_even_with_an_empty_password() -> None:
    assert "encrypted" in refusal(make_pdf(PARAGRAPHS, password="secret"))
    assert "encrypted" in refusal(make_pdf(PARAGRAPHS, password=""))


def test_a_pdf_without_text_is_refused() -> None:
    assert "no text that can be extracted" in refusal(make_pdf(PARAGRAPHS, text=False))


def test_a_word_document_without_text_is_refused() -> None:
    assert refusal(make_docx([])) == "has no text"


def test_a_file_with_more_text_than_a_paper_may_have_is_refused() -> None:
    data = ("word " * (MAX_MARKDOWN_CHARS // 5 + 10)).encode()
    assert "a paper may have at most" in refusal(data)


def test_normalize_gives_one_shape() -> None:
    assert documents.normalize("a\r\nb\rc\x0cd\u00ad\x07e  \n\n\n\n\nf\n") == "a\nb\nc\n\nde\n\nf"
