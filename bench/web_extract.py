"""Main-content extraction with images in place: fusionforge's Resiliparse pass against trafilatura.

Real pages available offline: the HTML documentation that packages install (Node.js API docs, the
Rust book as built by mdBook). Each site marks its main content with one element (``#apicontent``,
``<main>``), whose text (lxml ``text_content``, neither extractor's) is the reference: word-level
precision / recall / F1 against it (bags of lower-case words), image recall and precision against
the ``<img>`` sources inside it, and pages per second. trafilatura runs with ``include_images=True``
(XML output, ``<graphic src>`` where it keeps an image). Pass other page folders as
``SITE=GLOB=XPATH``. Run: ``.venv/bin/python bench/web_extract.py`` (``make bench`` installs trafilatura).
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import statistics
import sys
import time
from collections import Counter

from fusionforge.pipelines.readers.html_extract import ImagePart, extract_page

RUST = "/root/.rustup/toolchains/stable-x86_64-unknown-linux-gnu/share/doc/rust/html/book"
SITES = [
    "nodejs-api=/usr/share/doc/nodejs/api/*.html=//*[@id='apicontent']",
    f"rust-book={RUST}/ch*.html=//main",
]
MIN_BYTES, MAX_BYTES = 2_000, 1_000_000  # skip redirect stubs and the one-page-of-everything files
_WORD = re.compile(r"\w+", re.UNICODE)


def reference(data: bytes, selector: str) -> tuple[Counter, set[str]] | None:
    """The words and image sources of the page's marked main content (None if the page has none)."""
    import lxml.html

    found = lxml.html.fromstring(data).xpath(selector)
    if not found:
        return None
    node = found[0]
    for junk in node.xpath(".//script|.//style"):
        junk.drop_tree()
    images = {img.get("src") for img in node.iter("img") if img.get("src")}
    return Counter(w.lower() for w in _WORD.findall(node.text_content())), images


def ours(data: bytes) -> tuple[str, list[str]]:
    page = extract_page(data)
    text = "\n".join(p for p in page.parts if isinstance(p, str))
    return text, [p.src for p in page.parts if isinstance(p, ImagePart)]


def trafilatura_images(data: bytes) -> tuple[str, list[str]]:
    import lxml.etree
    import trafilatura

    out = trafilatura.extract(data, include_images=True, output_format="xml", favor_recall=False)
    if not out:
        return "", []
    root = lxml.etree.fromstring(out.encode())
    return " ".join(root.itertext()), [g.get("src") for g in root.iter("graphic") if g.get("src")]


def trafilatura_text(data: bytes) -> tuple[str, list[str]]:
    import trafilatura

    return trafilatura.extract(data) or "", []


def scores(text: str, images: list[str], words: Counter, gold_images: set[str]) -> dict[str, float]:
    got = Counter(w.lower() for w in _WORD.findall(text))
    common = sum((got & words).values())
    precision = common / max(1, sum(got.values()))
    recall = common / max(1, sum(words.values()))
    f1 = 2 * precision * recall / max(1e-9, precision + recall)
    kept = set(images)
    result = {"precision": precision, "recall": recall, "f1": f1}
    if gold_images:
        result["image_recall"] = len(kept & gold_images) / len(gold_images)
    if kept:
        result["image_precision"] = len(kept & gold_images) / len(kept)
    return result


def _mean(rows: list[dict[str, float]], key: str) -> str:
    """The mean of ``key`` over the pages that have it (image figures exist only where there are images)."""
    values = [row[key] for row in rows if key in row]
    return f"{statistics.mean(values):.2f}" if values else "  - "


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sites", nargs="*", default=SITES, help="SITE=GLOB=XPATH of the main content element")
    args = parser.parse_args()
    extractors = {"fusionforge (resiliparse)": ours, "trafilatura +images": trafilatura_images}
    extractors["trafilatura text only"] = trafilatura_text
    found_any = False
    for site in args.sites:
        name, pattern, selector = site.split("=", 2)
        pages = []
        for path in sorted(glob.glob(pattern)):
            if MIN_BYTES <= os.path.getsize(path) <= MAX_BYTES:
                with open(path, "rb") as handle:
                    data = handle.read()
                gold = reference(data, selector)
                if gold is not None and sum(gold[0].values()) >= 50:
                    pages.append((data, gold))
        if not pages:
            print(f"{name}: no pages found at {pattern} on this machine")
            continue
        found_any = True
        megabytes = sum(len(d) for d, _ in pages) / 1e6
        images = sum(len(gold[1]) for _, gold in pages)
        print(f"\n{name}: {len(pages)} pages, {megabytes:.1f} MB, {images} images in main content")
        for label, extract in extractors.items():
            start = time.perf_counter()
            outputs = [extract(data) for data, _ in pages]
            seconds = time.perf_counter() - start
            rows = [scores(text, imgs, *gold) for (text, imgs), (_, gold) in zip(outputs, pages)]
            mean = {k: statistics.mean(r[k] for r in rows) for k in ("precision", "recall", "f1")}
            print(
                f"  {label:28s} {len(pages) / seconds:7.1f} pages/s  {megabytes / seconds:5.2f} MB/s  "
                f"P {mean['precision']:.3f}  R {mean['recall']:.3f}  F1 {mean['f1']:.3f}  "
                f"images R {_mean(rows, 'image_recall')}  P {_mean(rows, 'image_precision')}"
            )
    if not found_any:
        print("no real pages are available offline on this machine: pass SITE=GLOB=XPATH", file=sys.stderr)


if __name__ == "__main__":
    main()
