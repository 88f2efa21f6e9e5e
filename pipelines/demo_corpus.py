"""The bundled sample corpus: generated on the spot (nothing downloaded), deterministic under a seed.

It holds every input kind ``shard`` reads, in several languages, with planted exact and near
duplicates (for dedupe: texts in ``web``, a re-encoded picture shared by ``pairs`` and ``photos``)
and planted broken inputs (for the ledger): a malformed JSON line, a row without text, a missing
image, an undecodable image, a truncated video and a tar member that tries to escape its archive.
``crawl`` is a small web crawl (a gzip WARC written with FastWARC): pages of three sites with their
pictures, each page with its site's logo and newsletter paragraph (for the interleaved filters and
``dedupe --paragraphs``), a page copied under another URL, a page whose picture was not crawled, a
page that is nothing but boilerplate, and a 404.
"""

from __future__ import annotations

import gzip
import io
import json
import random
import subprocess
import tarfile
import uuid
from pathlib import Path
from typing import Any

import ffmpeg
import zstandard
from PIL import Image, ImageDraw

from fusionforge.pipelines.core.video import require_tool

WORDS = {
    "en": "the a river city morning light people market window street garden old new small bright quiet house "
    "children walk slowly under across between water bread music evening north bridge stone tree school "
    "train station letter friend story winter summer road field village book table coffee rain wind "
    "builds finds carries opens remembers watches paints writes sells repairs".split(),
    "de": "der die das ein eine Fluss Stadt Morgen Licht Menschen Markt Fenster Strasse Garten alt neu klein hell "
    "ruhig Haus Kinder gehen langsam unter über zwischen Wasser Brot Musik Abend Norden Brücke Stein Baum "
    "Schule Zug Bahnhof Brief Freund Geschichte Winter Sommer Weg Feld Dorf Buch Tisch Kaffee Regen Wind "
    "baut findet trägt öffnet erinnert beobachtet malt schreibt verkauft repariert".split(),
    "fr": "le la un une rivière ville matin lumière gens marché fenêtre rue jardin vieux nouveau petit clair "
    "calme maison enfants marchent lentement sous à travers entre eau pain musique soir nord pont pierre "
    "arbre école train gare lettre ami histoire hiver été route champ village livre table café pluie vent "
    "construit trouve porte ouvre rappelle regarde peint écrit vend répare".split(),
    "es": "el la un una río ciudad mañana luz gente mercado ventana calle jardín viejo nuevo pequeño claro "
    "tranquilo casa niños caminan despacio bajo través entre agua pan música tarde norte puente piedra "
    "árbol escuela tren estación carta amigo historia invierno verano camino campo pueblo libro mesa café "
    "lluvia viento construye encuentra lleva abre recuerda mira pinta escribe vende repara".split(),
}
SHAPES = ("circle", "square", "triangle")
COLORS = {"red": (220, 40, 40), "green": (40, 170, 60), "blue": (40, 80, 220), "yellow": (230, 200, 30)}


def sentence(rng: random.Random, lang: str) -> str:
    words = [rng.choice(WORDS[lang]) for _ in range(rng.randint(7, 16))]
    return " ".join(words).capitalize() + "."


def document(rng: random.Random, lang: str, n_sentences: int | None = None) -> str:
    count = n_sentences or rng.randint(6, 14)
    return " ".join(sentence(rng, lang) for _ in range(count))


def near_duplicate(rng: random.Random, text: str, lang: str, edit_rate: float) -> str:
    """``text`` with about ``edit_rate`` of its words replaced."""
    words = text.split()
    for i in range(len(words)):
        if rng.random() < edit_rate:
            words[i] = rng.choice(WORDS[lang])
    return " ".join(words)


def draw_shapes(rng: random.Random, size: tuple[int, int]) -> tuple[Image.Image, str, dict[str, Any]]:
    """An image of a few coloured shapes on a plain background, its caption and its known contents."""
    image = Image.new("RGB", size, (245, 245, 240))
    draw = ImageDraw.Draw(image)
    shape, color = rng.choice(SHAPES), rng.choice(sorted(COLORS))
    count = rng.randint(1, 5)
    w, h = size
    for _ in range(count):
        r = rng.randint(max(4, min(w, h) // 14), max(6, min(w, h) // 7))
        x, y = rng.randint(r, w - r), rng.randint(r, h - r)
        box = (x - r, y - r, x + r, y + r)
        if shape == "circle":
            draw.ellipse(box, fill=COLORS[color])
        elif shape == "square":
            draw.rectangle(box, fill=COLORS[color])
        else:
            draw.polygon([(x, y - r), (x - r, y + r), (x + r, y + r)], fill=COLORS[color])
    caption = f"{count} {color} {shape}{'s' if count > 1 else ''} on a light background"
    return image, caption, {"shape": shape, "color": color, "count": count}


def encode(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return buffer.getvalue()


def make_video(
    path: Path,
    source: str,
    seconds: float = 2.0,
    size: str = "160x120",
    rate: int = 10,
    faststart: bool = False,
    timeout_s: float = 60.0,
) -> None:
    """A short H.264 clip from one of ffmpeg's lavfi test sources (or several, concatenated)."""
    spec = f"duration={seconds}:size={size}:rate={rate}"
    parts = [ffmpeg.input(f"{name}={spec}", f="lavfi") for name in source.split("+")]
    stream = parts[0] if len(parts) == 1 else ffmpeg.concat(*parts, v=1, a=0)
    extra = {"movflags": "+faststart"} if faststart else {}
    args = (
        stream.output(str(path), vcodec="libx264", pix_fmt="yuv420p", g=rate, **extra)
        .global_args("-y", "-v", "error", "-threads", "1")
        .compile(cmd=require_tool("ffmpeg"))
    )
    subprocess.run(args, check=True, capture_output=True, timeout=timeout_s)


def write_jsonl(path: Path, rows: list[Any], compression: str | None = None) -> None:
    lines = "".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in rows).encode()
    if compression == "gzip":
        lines = gzip.compress(lines, mtime=0)
    elif compression == "zstd":
        lines = zstandard.ZstdCompressor().compress(lines)
    path.write_bytes(lines)


def make_corpus(root: str | Path, seed: int = 0, n_text: int = 300) -> dict[str, str]:
    """Write the sample corpus under ``root``; return ``{source name: path}`` for ``shard``."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    inputs = {
        "web": _text_source(root / "web.jsonl", rng, n_text),
        "news": _news_source(root / "news.jsonl.gz", rng),
        "forum": _forum_source(root / "forum.jsonl.zst", rng),
        "photos": _image_folder(root / "photos", rng),
        "pairs": _pairs(root / "pairs", rng),
        "docs": _interleaved(root / "docs", rng),
        "clips": _videos(root / "clips"),
        "legacy": _legacy_tar(root / "legacy.tar", rng),
        "crawl": make_crawl(root / "crawl.warc.gz", rng),
    }
    _plant_image_copy(root / "pairs" / "images" / "p000.jpg", root / "photos")
    return {name: str(path) for name, path in inputs.items()}


def _plant_image_copy(original: Path, photos: Path) -> None:
    """A larger, re-encoded copy of one pair's picture among the photos: a cross-source near duplicate."""
    with Image.open(original) as image:
        copy = image.convert("RGB").resize((image.width * 3 // 2, image.height * 3 // 2))
    (photos / "img_950.jpg").write_bytes(encode(copy, "JPEG"))
    (photos / "img_950.txt").write_text("the same picture as the first pair's, larger")


def _text_source(path: Path, rng: random.Random, n: int) -> Path:
    langs = ["en", "de", "fr", "es"]
    rows = []
    for i in range(n):
        lang = langs[i % len(langs)]
        rows.append(
            {"id": f"web-{i:05d}", "text": document(rng, lang), "lang": lang, "url": f"https://example.org/{i}"}
        )
    for j in range(12):  # exact duplicates under new ids
        rows.append({**rows[rng.randrange(n)], "id": f"web-exact-{j:03d}"})
    for j, rate in enumerate([0.01, 0.02, 0.03, 0.05] * 4):  # near duplicates at known word-edit rates
        original = rows[rng.randrange(n)]
        text = near_duplicate(rng, original["text"], original["lang"], rate)
        rows.append({**original, "id": f"web-near-{j:03d}", "text": text, "edit_rate": rate})
    write_jsonl(path, rows)
    return path


def _news_source(path: Path, rng: random.Random) -> Path:
    rows: list[Any] = [{"id": f"news-{i:04d}", "text": document(rng, "en", 5), "section": "city"} for i in range(40)]
    for i, row in enumerate(rows[:3]):  # personal data for the filter step to redact
        row["text"] += f" Reach the city desk at desk{i}@example.org or +44 20 7946 09{i:02d}."
    rows.insert(7, '{"id": "news-broken", "text": "an unterminated string}')  # malformed JSON line
    rows.insert(19, {"id": "news-notext", "headline": "a row without a text field"})
    rows.append({"id": "news-empty", "text": "   "})
    write_jsonl(path, rows, compression="gzip")
    return path


def _forum_source(path: Path, rng: random.Random) -> Path:
    rows = [{"id": f"forum-{i:04d}", "text": document(rng, rng.choice(["de", "fr"]), 4)} for i in range(30)]
    write_jsonl(path, rows, compression="zstd")
    return path


def _image_folder(folder: Path, rng: random.Random) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(30):
        size = rng.choice([(128, 96), (96, 128), (160, 160), (200, 120)])
        image, caption, facts = draw_shapes(rng, size)
        fmt, ext = ("PNG", "png") if i % 3 == 0 else ("JPEG", "jpg")
        (folder / f"img_{i:03d}.{ext}").write_bytes(encode(image, fmt))
        if i % 2:
            (folder / f"img_{i:03d}.json").write_text(json.dumps({"caption": caption, **facts}))
        else:
            (folder / f"img_{i:03d}.txt").write_text(caption)
    (folder / "img_900.jpg").write_bytes(bytes(rng.randrange(256) for _ in range(2048)))  # not an image
    (folder / "img_900.txt").write_text("an image file that holds random bytes")
    truncated = encode(draw_shapes(rng, (120, 120))[0], "PNG")
    (folder / "img_901.png").write_bytes(truncated[: len(truncated) // 2])
    (folder / "img_901.txt").write_text("a PNG cut in half")
    return folder


def _pairs(folder: Path, rng: random.Random) -> Path:
    images = folder / "images"
    images.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(16):
        image, caption, _ = draw_shapes(rng, (112, 112))
        (images / f"p{i:03d}.jpg").write_bytes(encode(image, "JPEG"))
        rows.append({"id": f"pair-{i:03d}", "image": f"images/p{i:03d}.jpg", "caption": caption})
    rows.append({"id": "pair-missing", "image": "images/does_not_exist.jpg", "caption": "a missing file"})
    write_jsonl(folder / "pairs.jsonl", rows)
    return folder / "pairs.jsonl"


def _interleaved(folder: Path, rng: random.Random) -> Path:
    images = folder / "images"
    images.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(20):
        # A closing sentence in plain English prose, as web pages have: the word-list sentences alone
        # hold too few stop words for Gopher's quality rule, and the demo should keep most documents.
        intro = document(rng, "en", 3) + " The pictures below belong to the story and show what the children drew."
        parts = [{"type": "text", "text": intro}]
        for j in range(rng.randint(1, 3)):
            image, caption, _ = draw_shapes(rng, (96, 96))
            name = f"d{i:03d}_{j}.png"
            (images / name).write_bytes(encode(image, "PNG"))
            parts += [
                {"type": "image", "image": f"images/{name}"},
                {"type": "text", "text": f"Figure {j + 1}: {caption}."},
            ]
        rows.append({"id": f"doc-{i:03d}", "parts": parts, "url": f"https://example.org/doc/{i}"})
    write_jsonl(folder / "docs.jsonl", rows)
    return folder / "docs.jsonl"


def _videos(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    clips = {
        "testsrc": "a test card with a moving counter",
        "smptebars": "colour bars",
        "rgbtestsrc": "red, green and blue stripes",
        "testsrc+smptebars+rgbtestsrc": "three scenes, cut hard",
    }
    for i, (source, caption) in enumerate(clips.items()):
        make_video(folder / f"clip_{i:02d}.mp4", source, seconds=2.0 if "+" not in source else 1.5)
        (folder / f"clip_{i:02d}.txt").write_text(caption)
    make_video(folder / "broken.mp4", "testsrc", seconds=3.0, faststart=True)
    data = (folder / "broken.mp4").read_bytes()
    (folder / "broken.mp4").write_bytes(data[: int(len(data) * 0.6)])  # cut: the header survives, frames do not
    (folder / "broken.txt").write_text("a clip whose last frames are missing")
    return folder


def _legacy_tar(path: Path, rng: random.Random) -> Path:
    """A WebDataset tar from "another tool", with one member that tries to escape the archive."""
    with tarfile.open(path, "w") as tar:

        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 0
            tar.addfile(info, io.BytesIO(data))

        for i in range(6):
            image, caption, _ = draw_shapes(rng, (80, 80))
            add(f"{i:06d}.jpg", encode(image, "JPEG"))
            add(f"{i:06d}.txt", caption.encode())
            add(f"{i:06d}.json", json.dumps({"shard": "legacy", "index": i}).encode())
        add("../escape.txt", b"this member's path leaves the archive")
    return path


SITES = {  # host -> the paragraph every page of the site repeats (boilerplate for dedupe --paragraphs)
    "news.example.org": "Subscribe to the Harbour Times newsletter to get the stories of the week in your inbox.",
    "blog.example.net": "Thanks for reading this blog; the comments are open to everyone who wants to share a story.",
    "shop.example.com": "Free delivery on every order over fifty euros, and returns are free for thirty days.",
}
WARC_DATE = "2026-01-15T12:00:00Z"


def make_crawl(path: Path, rng: random.Random, pages_per_site: int = 4, paragraphs: int = 2) -> Path:
    """A gzip WARC (one member per record) of pages of three sites, their pictures and logos, and planted cases.

    ``bench/web_ingest.py`` makes larger ones with ``pages_per_site`` and ``paragraphs`` (of the story, per page).
    """
    members: list[bytes] = []
    pages: dict[str, str] = {}

    def add(url: str, body: bytes, content_type: str, status: str = "200 OK") -> None:
        members.append(gzip.compress(_warc_response(url, body, content_type, status, len(members)), mtime=0))

    for host, boilerplate in SITES.items():
        logo = Image.new("RGB", (48, 24), COLORS[rng.choice(sorted(COLORS))])
        add(f"https://{host}/static/logo.png", encode(logo, "PNG"), "image/png")
        for n in range(pages_per_site):
            figures = []
            for j in range(rng.randint(1, 2)):
                image, caption, _ = draw_shapes(rng, (240, 180))
                name = f"/images/{n}-{j}.jpg"
                add(f"https://{host}{name}", encode(image, "JPEG"), "image/jpeg")
                figures.append(
                    f'<figure><img src="{name}" alt="{caption}"><figcaption>{caption}.</figcaption></figure>'
                )
            pages[f"https://{host}/{n}.html"] = _web_page(rng, host, boilerplate, figures, paragraphs)
            add(f"https://{host}/{n}.html", pages[f"https://{host}/{n}.html"].encode(), "text/html")
    news = "news.example.org"
    add(f"https://{news}/archive/0.html", pages[f"https://{news}/0.html"].encode(), "text/html")  # a copy
    lost = ['<figure><img src="/images/lost.jpg" alt="a picture the crawl missed"></figure>']
    add(f"https://{news}/lost.html", _web_page(rng, news, SITES[news], lost).encode(), "text/html")
    only = f"<html><body><article><p>{SITES[news]}</p></article></body></html>"
    add(f"https://{news}/subscribe.html", only.encode(), "text/html")  # nothing but the boilerplate
    add(f"https://{news}/gone.html", b"<html><body>Not found</body></html>", "text/html", "404 Not Found")
    path.write_bytes(b"".join(members))
    return path


def _web_page(rng: random.Random, host: str, boilerplate: str, figures: list[str], paragraphs: int = 2) -> str:
    """A page: navigation, then an article of English paragraphs with the site's logo, figures and boilerplate."""
    endings = ("The pictures on this page were taken by our readers.", "Write to us if you were there that day.")
    story = [f"<p>{document(rng, 'en', 3)} {endings[i % 2]}</p>" for i in range(paragraphs)]  # prose for Gopher
    nav = '<nav><a href="/">Home</a> <a href="/about">About</a></nav>'
    logo = '<img src="/static/logo.png" alt="site logo">'
    body = "".join([logo, story[0], *figures, *story[1:], f"<p>{boilerplate}</p>"])
    return f"<!doctype html><html><head><title>{host}</title></head><body>{nav}<article>{body}</article></body></html>"


def _warc_response(url: str, body: bytes, content_type: str, status: str, number: int) -> bytes:
    """One WARC response record (FastWARC's writer) with a fixed date and a record id from its position."""
    from fastwarc.warc import WarcRecord, WarcRecordType

    record = WarcRecord()
    record.init_headers(record_type=WarcRecordType.response, record_urn=f"uuid:{uuid.UUID(int=number + 1)}".encode())
    record.headers["WARC-Date"] = WARC_DATE
    record.headers["WARC-Target-URI"] = url
    record.headers["Content-Type"] = "application/http; msgtype=response"
    head = f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
    record.set_bytes_content(head.encode() + body)
    buffer = io.BytesIO()
    record.write(buffer, checksum_data=True)
    return buffer.getvalue()
