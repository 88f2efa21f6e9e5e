"""An HTML page's main content as ordered text and image parts, with each image's source and alt text.

Main-content extractors return text and drop images, so their place in the text is lost. Here
Resiliparse parses the page into a DOM, every ``<img>`` gets a marker as its alt text (its real alt
text and source are kept aside), and Resiliparse's main-content extraction runs on that DOM with alt
texts on: a marker comes out exactly where its image stands in the extracted text, and only for the
images the extractor kept as main content (navigation logos and footer trackers go with their
boilerplate). Splitting the text at the markers gives the interleaved parts. Why Resiliparse over
trafilatura, with figures: docs/architecture.md ("Web documents") and ``bench/web_extract.py``.

The text is decoded with the charset the server declared, else the page's ``<meta charset>``,
else a detected one (uchardet, through Resiliparse). A page whose main content comes out empty
(a short page the heuristics take for boilerplate) is extracted again as a whole.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_MARK = "\ue000ffimg{}\ue001"
_MARK_RE = re.compile("\ue000ffimg(\\d+)\ue001")
_LAZY_SOURCES = ("data-src", "data-lazy-src", "data-original")  # lazy loading keeps the real image here
HTML_TYPES = ("text/html", "application/xhtml+xml")


@dataclass(frozen=True)
class ImagePart:
    """An image of the page: its source as written (relative or absolute) and its alt text."""

    src: str
    alt: str | None


@dataclass
class Page:
    """What a page holds, in reading order: text strings and ``ImagePart`` s."""

    parts: list[str | ImagePart] = field(default_factory=list)
    title: str | None = None
    base: str | None = None  # the page's <base href>, when it has one
    encoding: str = "utf-8"


def decode_html(data: bytes, declared: str | None = None) -> tuple[str, str]:
    """(text, encoding): the declared charset first, then the page's meta charset, then detection."""
    from resiliparse.parse.encoding import bytes_to_str, detect_encoding

    encoding = _codec(declared) or detect_encoding(data, from_html_meta=True)
    return bytes_to_str(data, encoding, errors="replace"), encoding


def _codec(name: str | None) -> str | None:
    import codecs

    if not name:
        return None
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def extract_page(data: bytes, declared_charset: str | None = None) -> Page:
    """The main content of an HTML page as text and image parts in reading order."""
    from resiliparse.parse.html import HTMLTree

    text, encoding = decode_html(data, declared_charset)
    tree = HTMLTree.parse(text)
    page = Page(title=_title(tree), base=_base(tree), encoding=encoding)
    images = _mark_images(tree)
    extracted = _extract(tree, main_content=True)
    if not _MARK_RE.sub("", extracted).strip():
        extracted = _extract(tree, main_content=False)
    page.parts = _split(extracted, images)
    return page


def _extract(tree, main_content: bool) -> str:
    from resiliparse.extract.html2text import extract_plain_text

    return extract_plain_text(
        tree, preserve_formatting=True, main_content=main_content, alt_texts=True, list_bullets=True, links=False
    )


def _title(tree) -> str | None:
    title = (tree.title or "").strip()
    return title or None


def _base(tree) -> str | None:
    head = tree.head
    node = head.query_selector("base[href]") if head is not None else None
    href = node.getattr("href") if node is not None else None
    return href.strip() if href and href.strip() else None


def _mark_images(tree) -> list[ImagePart]:
    """Give every image with a source a marker alt text; return the images, by marker number."""
    images: list[ImagePart] = []
    body = tree.body
    if body is None:
        return images
    for node in body.query_selector_all("img"):
        src = image_source(node)
        if src is None:
            node.setattr("alt", "")
            continue
        images.append(ImagePart(src, (node.getattr("alt") or "").strip() or None))
        node.setattr("alt", _MARK.format(len(images) - 1))
    return images


def image_source(node) -> str | None:
    """The image an ``<img>`` shows: a lazy-loading attribute, else ``src``, else the widest ``srcset`` entry."""
    for name in (*_LAZY_SOURCES, "src"):
        value = (node.getattr(name) or "").strip()
        if value:
            return value
    return _widest(node.getattr("srcset") or "")


def _widest(srcset: str) -> str | None:
    best, best_width = None, -1.0
    for candidate in srcset.split(","):
        fields = candidate.split()
        if not fields:
            continue
        width = fields[1][:-1] if len(fields) > 1 and fields[1][-1:] in ("w", "x") else "0"
        try:
            size = float(width)
        except ValueError:
            size = 0.0
        if size > best_width:
            best, best_width = fields[0], size
    return best


def _split(text: str, images: list[ImagePart]) -> list[str | ImagePart]:
    """The extracted text cut at the image markers: text strings and images, in order, no blank text."""
    parts: list[str | ImagePart] = []
    pieces = _MARK_RE.split(text)
    for index, piece in enumerate(pieces):
        if index % 2:
            number = int(piece)
            if number < len(images):
                parts.append(images[number])
        elif piece.strip():
            parts.append(piece.strip())
    return parts
