"""Interleaved-document filters on documents built in the test: node removal, document bounds, block lists."""

import json

import pytest

from fusionforge.filters.interleaved.blocklist import WebBlocklist
from fusionforge.filters.interleaved.documents import InterleavedDocument
from fusionforge.filters.interleaved.nodes import InterleavedNodes
from fusionforge.pipelines.core import schema as S

STAGE = "interleaved_nodes_v1"


def _image(name: str, width: int, height: int, fmt: str = "jpeg") -> dict:
    return {"kind": "image", "uri": f"/media/{name}", "size": 100, "sha256": name * 4, "format": fmt,
            "width": width, "height": height}  # fmt: skip


def _document(make_record, rid: str, parts: list, url: str = "http://site.example/page.html") -> dict:
    """An interleaved record as the WARC reader makes it: parts are text, (name, w, h, alt) images, or URL strings."""
    segments, media, images, names = [], [], [], {}
    for part in parts:
        if isinstance(part, str) and part.startswith("http"):
            segments.append({"type": "image_url", "text": part, "media_index": None})
            images.append({"src": part, "url": part, "alt": "", "media_index": None, "unresolved": "not_in_warc"})
        elif isinstance(part, str):
            segments.append({"type": "text", "text": part, "media_index": None})
        else:
            name, width, height, alt = part
            if name not in names:
                names[name] = len(media)
                media.append(_image(name, width, height))
            index = names[name]
            segments.append({"type": "image", "text": None, "media_index": index})
            images.append({"src": name, "url": f"http://site.example/{name}", "alt": alt, "media_index": index})
    text = "\n\n".join(s["text"] for s in segments if s["type"] == "text")
    row = make_record(rid, text, modality="interleaved", media=media)
    hashes = [m["sha256"] for m in media]
    row.update(
        {
            S.SEGMENTS: segments,
            S.META: json.dumps({"url": url, "images": images}),
            S.CONTENT_HASH: S.content_hash("interleaved", text, hashes, segments),
        }  # fmt: skip
    )
    return row


def _rows(table):
    return {r[S.ID]: r for r in table.to_pylist()}


def test_logo_icon_and_banner_images_leave_the_document_which_stays(make_batch, make_record):
    parts = [
        "A long story about a trip.",
        ("site-logo.png", 400, 300, "Site"),  # url_pattern
        ("photo.jpg", 800, 600, "a photo of the harbour"),
        ("thumb.jpg", 90, 90, "harbour"),  # too_small: icon-sized
        ("panorama.jpg", 2000, 500, "the coast"),  # aspect_ratio 4 > 2
        "More text after the pictures.",
        ("photo.jpg", 800, 600, "a photo of the harbour"),  # the same image shown again: kept twice
        ("corp.jpg", 400, 300, "Company Logo"),  # alt_pattern
        "http://ads.example/pixel.gif",  # an image_url part whose URL names a tracking pixel
    ]
    original = _document(make_record, "web/1", parts)
    out = InterleavedNodes()(make_batch([original]))
    row = _rows(out)["web/1"]
    assert row[S.DROP_REASON] is None
    removed = {rule: row[f"{STAGE}__removed_{rule}"] for rule in ("url_pattern", "alt_pattern", "too_small")}
    assert removed == {"url_pattern": 2, "alt_pattern": 1, "too_small": 1}
    assert (row[f"{STAGE}__removed_aspect_ratio"], row[f"{STAGE}__removed"], row[f"{STAGE}__images"]) == (1, 5, 2)
    assert [s["type"] for s in row[S.SEGMENTS]] == ["text", "image", "text", "image"]
    assert [m["uri"] for m in row[S.MEDIA]] == ["/media/photo.jpg"]
    assert {s["media_index"] for s in row[S.SEGMENTS] if s["type"] == "image"} == {0}
    assert row[S.TEXT] == original[S.TEXT]
    hashes = [m["sha256"] for m in row[S.MEDIA]]
    assert row[S.CONTENT_HASH] == S.content_hash("interleaved", row[S.TEXT], hashes, row[S.SEGMENTS])
    assert row[S.CONTENT_HASH] != original[S.CONTENT_HASH]
    meta = json.loads(row[S.META])
    assert meta["removed_images"] == 5
    noted = {(i["src"], i.get("removed"), i["media_index"]) for i in meta["images"]}
    assert ("photo.jpg", None, 0) in noted and ("thumb.jpg", "too_small", None) in noted
    assert ("http://ads.example/pixel.gif", "url_pattern", None) in noted


def test_a_document_left_with_nothing_is_dropped_and_rules_can_be_turned_off(make_batch, make_record):
    only_logo = _document(make_record, "web/2", [("logo.png", 300, 300, "")])
    small = _document(make_record, "web/3", ["Text.", ("tiny.jpg", 20, 20, "a dot")])
    text_doc = make_record("web/4", "plain text", modality="text")
    out = _rows(InterleavedNodes()(make_batch([only_logo, small, text_doc])))
    assert out["web/2"][S.DROP_REASON] == f"{STAGE}:empty_document"
    assert out["web/2"][S.SEGMENTS] == only_logo[S.SEGMENTS]  # a rejected row keeps its parts, for inspection
    assert out["web/3"][S.DROP_REASON] is None and [s["type"] for s in out["web/3"][S.SEGMENTS]] == ["text"]
    assert out["web/3"][S.MEDIA] == []
    assert out["web/4"][f"{STAGE}__removed"] is None  # not an interleaved document: not judged
    off = _rows(InterleavedNodes(url_substrings=None, min_side=None)(make_batch([only_logo, small])))
    assert off["web/2"][f"{STAGE}__removed"] == 0 and off["web/3"][f"{STAGE}__images"] == 1


def test_other_formats_and_missing_alt_text_are_node_rules_too(make_batch, make_record):
    doc = _document(make_record, "web/5", ["Words.", ("anim.jpg", 300, 300, ""), ("ok.jpg", 300, 300, "a cat")])
    row = make_batch([doc]).to_pylist()[0]
    row[S.MEDIA][0]["format"] = "gif"
    out = _rows(InterleavedNodes(require_alt=True)(make_batch([row])))["web/5"]
    assert (out[f"{STAGE}__removed_format"], out[f"{STAGE}__removed_no_alt"], out[f"{STAGE}__images"]) == (0, 1, 1)
    out = _rows(InterleavedNodes()(make_batch([row])))["web/5"]
    assert (out[f"{STAGE}__removed_format"], out[f"{STAGE}__images"]) == (1, 1)


def test_document_rules_bound_image_count_and_words_per_image(make_batch, make_record):
    words = " ".join(["word"] * 40)
    docs = [
        _document(make_record, "web/none", [words]),
        _document(make_record, "web/one", [words, ("a.jpg", 300, 300, "")]),
        _document(make_record, "web/many", [words] + [(f"{i}.jpg", 300, 300, "") for i in range(31)]),
        _document(make_record, "web/twice", ["few words", ("a.jpg", 300, 300, ""), ("a.jpg", 300, 300, "")]),
    ]
    out = _rows(InterleavedDocument()(make_batch(docs)))
    stage = "interleaved_doc_v1"
    reasons = {rid: row[S.DROP_REASON] for rid, row in out.items()}
    assert reasons == {
        "web/none": f"{stage}:too_few_images",
        "web/one": None,
        "web/many": f"{stage}:too_many_images",
        "web/twice": None,
    }
    assert (out["web/twice"][f"{stage}__images"], out["web/twice"][f"{stage}__words_per_image"]) == (2, 1.0)
    assert out["web/none"][f"{stage}__words_per_image"] is None
    ratio = _rows(InterleavedDocument(min_words_per_image=5, max_words_per_image=30)(make_batch(docs)))
    assert ratio["web/twice"][S.DROP_REASON] == f"{stage}:too_few_words_per_image"
    assert ratio["web/one"][S.DROP_REASON] == f"{stage}:too_many_words_per_image"
    with pytest.raises(ValueError, match="limits must be >= 0"):
        InterleavedDocument(max_images=-1)


def test_block_lists_match_domains_below_a_listed_one_urls_and_image_urls(make_batch, make_record, tmp_path):
    listing = tmp_path / "domains.txt"
    listing.write_text("# adult and spam hosts\nbad.example\n\nSpam.Example.\n")
    docs = [
        _document(make_record, "w/sub", ["t"], url="https://www.bad.example/x"),
        _document(make_record, "w/lookalike", ["t"], url="https://notbad.example/x"),
        _document(make_record, "w/case", ["t"], url="http://SPAM.example:8080/"),
        _document(make_record, "w/path", ["t"], url="https://ok.example/casino/win"),
        _document(make_record, "w/image", ["t", ("xxx-1.jpg", 300, 300, "")], url="https://ok.example/a"),
        make_record("w/nourl", "no url here"),
    ]
    stage = WebBlocklist(domains_file=str(listing), url_substrings=["/casino/"], image_url_substrings=["xxx"])
    out = _rows(stage(make_batch(docs)))
    reasons = {rid: row[S.DROP_REASON] for rid, row in out.items()}
    assert reasons == {
        "w/sub": "web_blocklist_v1:blocked_domain",
        "w/lookalike": None,
        "w/case": "web_blocklist_v1:blocked_domain",
        "w/path": "web_blocklist_v1:blocked_url",
        "w/image": "web_blocklist_v1:blocked_image_url",
        "w/nourl": None,
    }
    assert out["w/sub"]["web_blocklist_v1__blocked_by"] == "bad.example"
    assert out["w/case"]["web_blocklist_v1__blocked_by"] == "spam.example"
    with pytest.raises(ValueError, match="block lists are empty"):
        WebBlocklist(domains=[" "])
    with pytest.raises(ValueError, match="cannot read the block list"):
        WebBlocklist(domains_file=str(tmp_path / "missing.txt"))
