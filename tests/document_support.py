"""Paper files for the upload tests, built here: Word documents (python-docx, with tracked
changes and comments added to the XML the way Word writes them) and PDFs (pypdf's writer
with a hand-written text content stream), each able to carry a canary in every place a
file names its author."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import mammoth
from docx import Document
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from pypdf import PdfWriter
from pypdf.generic import (
    DecodedStreamObject,
    DictionaryObject,
    NameObject,
)

DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"

INSERTED = "Inserted while tracking changes."
DELETED = "Deleted while tracking changes."


def _tracked(kind: str, author: str, text: str, ident: int) -> OxmlElement:
    change = OxmlElement(f"w:{kind}")
    change.set(qn("w:id"), str(ident))
    change.set(qn("w:author"), author)
    change.set(qn("w:date"), "2026-11-01T10:00:00Z")
    run = OxmlElement("w:r")
    t = OxmlElement("w:delText" if kind == "del" else "w:t")
    t.set(qn("xml:space"), "preserve")
    t.text = text
    run.append(t)
    change.append(run)
    return change


def make_docx(paragraphs: list[str], *, author: str = "", heading: str | None = None) -> bytes:
    """A .docx whose body is `paragraphs` (plus `heading`), and, when `author` is given, that
    name in the core properties, a comment, a tracked insertion (its text: INSERTED) and a
    tracked deletion (its text: DELETED)."""
    document = Document()
    if heading:
        document.add_heading(heading, level=1)
    for text in paragraphs:
        document.add_paragraph(text)
    if author:
        props = document.core_properties
        props.author = author
        props.last_modified_by = author
        props.title = f"Paper by {author}"
        props.comments = f"Written by {author}"
        props.created = datetime(2026, 11, 1, tzinfo=UTC)
        para = document.add_paragraph("Last words. ")
        para._p.append(_tracked("ins", author, INSERTED, 901))
        para._p.append(_tracked("del", author, DELETED, 902))
        document.add_comment(
            para.runs[0], text=f"A note from {author}", author=author, initials="XX"
        )
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def with_embedded_style_map(docx: bytes, style_map: str) -> bytes:
    """The document with a mammoth style map embedded in it, as a hostile file could carry
    one that asks for comments to be shown."""
    buffer = io.BytesIO(docx)
    mammoth.embed_style_map(buffer, style_map)
    return buffer.getvalue()


def make_pdf(
    lines: list[str],
    *,
    author: str = "",
    password: str | None = None,
    text: bool = True,
) -> bytes:
    """A one-page PDF showing `lines` (Helvetica), with `author` in the Info dictionary
    (Author, Creator, Producer, Title) and in XMP metadata; encrypted with `password`."""
    writer = PdfWriter()
    page = writer.add_blank_page(width=612, height=792)
    font = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Font"),
            NameObject("/Subtype"): NameObject("/Type1"),
            NameObject("/BaseFont"): NameObject("/Helvetica"),
            NameObject("/Encoding"): NameObject("/WinAnsiEncoding"),
        }
    )
    page[NameObject("/Resources")] = DictionaryObject(
        {NameObject("/Font"): DictionaryObject({NameObject("/F1"): writer._add_object(font)})}
    )
    ops = ["BT", "/F1 11 Tf", "14 TL", "72 740 Td"]
    for line in lines if text else []:
        escaped = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        ops.append(f"({escaped}) Tj T* T*")
    ops.append("ET")
    if not text:  # a "scan": a filled rectangle and no text at all
        ops = ["0.5 g", "72 72 468 648 re f"]
    content = DecodedStreamObject()
    content.set_data("\n".join(ops).encode("cp1252"))
    page[NameObject("/Contents")] = writer._add_object(content)
    if author:
        writer.add_metadata(
            {"/Author": author, "/Creator": author, "/Producer": author, "/Title": author}
        )
        xmp = DecodedStreamObject()
        xmp.set_data(
            (
                '<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?>'
                '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
                'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
                '<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/">'
                f"<dc:creator><rdf:Seq><rdf:li>{author}</rdf:li></rdf:Seq></dc:creator>"
                '</rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="w"?>'
            ).encode()
        )
        xmp[NameObject("/Type")] = NameObject("/Metadata")
        xmp[NameObject("/Subtype")] = NameObject("/XML")
        writer._root_object[NameObject("/Metadata")] = writer._add_object(xmp)
    if password is not None:
        writer.encrypt(password, algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()
