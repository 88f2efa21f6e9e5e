import pytest

from fusionforge.mixers.packing.layout import LayoutOptions, Wrappers, pieces, record_layout
from fusionforge.mixers.packing.packer import LONG, TEXT, VISION
from fusionforge.mixers.tokens.vision import get_preset, video_tokens
from fusionforge.pipelines.core import schema as S


def _video_record(extra_media=()):
    video = {"kind": "video", "width": 320, "height": 240, "n_frames": 30, "fps": 10.0}
    return {
        S.MODALITY: "video",
        S.SEGMENTS: None,
        S.MEDIA: [video, *extra_media],
        "video_frames_v1__n_frames": 9,
        "video_frames_v1__fps": 2.0,
    }


def test_video_tokens_come_from_the_sampled_frames_and_stored_frames_are_not_counted_again():
    preset = get_preset("kimi-k25")
    opts = LayoutOptions(preset, seq_len=32768, eos=False)
    plain = record_layout(_video_record(), [5], opts, Wrappers(preset))
    frames = [{"kind": "frame", "width": 320, "height": 240, "n_frames": None, "fps": None}] * 9
    with_frames = record_layout(_video_record(frames), [5], opts, Wrappers(preset))
    assert plain.vision == video_tokens(320, 240, 9, "kimi-k25").tokens  # ceil(9 / 4) = 3 chunks, not 30 frames
    assert with_frames.vision == plain.vision
    assert [b.kind for b in with_frames.blocks] == [b.kind for b in plain.blocks]


# ---------------------------------------------------------------- pieces(): how a record is cut for the packer
KIMI = get_preset("kimi-k25")
IMAGE = {"kind": "image", "width": 640, "height": 480, "n_frames": None, "fps": None}  # 414 + 4 wrapper tokens
IMAGE_COST = 418
CHUNK_COST = 108 + 11  # one 320x240 frame's tokens + the timestamped chunk wrapper


def _text(n):
    return {"type": "text", "media_index": None, "n": n}


def _image(index):
    return {"type": "image", "media_index": index}


def _interleaved(segments):
    """A document from text lengths and images; returns the record and its text parts' token counts."""
    media = [IMAGE] * sum(1 for s in segments if s["type"] == "image")
    record = {
        S.MODALITY: "interleaved",
        S.MEDIA: media,
        S.SEGMENTS: [{k: v for k, v in s.items() if k != "n"} for s in segments],
    }
    return record, [s["n"] for s in segments if s["type"] == "text"]


def _spans(layout):
    out, offset = [], 0
    for block in layout.blocks:
        out.append((offset, offset + block.tokens, block))
        offset += block.tokens
    return out


def _check_cut(layout, opts, cut):
    """Invariants of any cut: a contiguous cover, every piece <= L and <= the vision cap, media whole."""
    spans = _spans(layout)
    media = [(s, e, b) for s, e, b in spans if b.kind in ("image", "video")]
    assert cut[0].start == 0 and cut[-1].start + cut[-1].length == layout.tokens
    for before, after in zip(cut, cut[1:]):
        assert after.start == before.start + before.length
        inside = [(s, e, b) for s, e, b in spans if s < after.start < e]
        assert not inside or inside[0][2].kind in ("text", "eos"), "a cut inside an image or a chunk group"
        if inside:  # a cut inside text only happens when the piece before it is full
            assert before.length == opts.seq_len
    for piece in cut:
        assert 0 < piece.length <= opts.seq_len and piece.vision <= opts.vision_limit
        assert piece.kind == (VISION if piece.vision else TEXT)
        assert piece.vision == sum(b.vision for _, b in piece.blocks)
        assert all(offset >= 0 and offset + b.tokens <= piece.length for offset, b in piece.blocks)
    placed = [(piece.start + offset, b) for piece in cut for offset, b in piece.blocks]
    assert placed == [(s, b) for s, _, b in media]  # every image / group exactly once, at its own place
    assert sum(p.vision for p in cut) == layout.vision


def test_a_record_that_fits_is_one_atomic_piece_and_long_text_one_splittable_piece():
    opts = LayoutOptions(KIMI, seq_len=2048)
    record, parts = _interleaved([_text(300), _image(0), _text(200)])
    layout = record_layout(record, parts, opts, Wrappers(KIMI))
    assert [b.kind for b in layout.blocks] == ["text", "image", "text", "eos"]
    (piece,) = pieces(layout, opts)
    assert (piece.kind, piece.start, piece.length, piece.vision) == (VISION, 0, 300 + IMAGE_COST + 200 + 1, 414)
    assert [(offset, b.kind) for offset, b in piece.blocks] == [(300, "image")]
    text = {S.MODALITY: "text", S.MEDIA: [], S.SEGMENTS: None}
    layout = record_layout(text, [5000], opts, Wrappers(KIMI))
    assert [(p.kind, p.start, p.length) for p in pieces(layout, opts)] == [(LONG, 0, 5001)]


def test_a_long_interleaved_document_is_cut_only_in_text_or_between_images():
    opts = LayoutOptions(KIMI, seq_len=2048)
    record, parts = _interleaved(
        [_text(1500), _image(0), _text(700), _image(1), _image(2), _text(2500), _image(3), _text(100)]
    )
    layout = record_layout(record, parts, opts, Wrappers(KIMI))
    assert layout.tokens == 4800 + 4 * IMAGE_COST + 1 > 2 * opts.seq_len
    cut = pieces(layout, opts)
    _check_cut(layout, opts, cut)
    # text fills a piece to L and goes on in the next; the last image does not fit behind the 1858 tokens of text
    # left over, so that piece closes before the image (1858 tokens), never inside it
    assert [p.length for p in cut] == [2048, 2048, 1858, IMAGE_COST + 100 + 1]
    assert [len(p.blocks) for p in cut] == [1, 2, 0, 1]
    assert [p.kind for p in cut] == [VISION, VISION, TEXT, VISION]


def test_the_vision_cap_cuts_a_document_that_fits_in_length():
    opts = LayoutOptions(KIMI, seq_len=8192, vision_cap=900)
    record, parts = _interleaved([_text(50), _image(0), _image(1), _image(2), _text(50), _image(3), _image(4)])
    layout = record_layout(record, parts, opts, Wrappers(KIMI))
    assert layout.tokens <= opts.seq_len and layout.vision > opts.vision_cap
    cut = pieces(layout, opts)
    _check_cut(layout, opts, cut)
    assert [p.vision for p in cut] == [2 * 414, 2 * 414, 414]


@pytest.mark.parametrize(("group_tokens", "chunks_per_group"), [(None, 8), (500, 4), (119, 1)])
def test_video_chunk_groups_are_atomic_and_respect_video_group_tokens(group_tokens, chunks_per_group):
    opts = LayoutOptions(KIMI, seq_len=1024, video_group_tokens=group_tokens)
    video = {"kind": "video", "width": 320, "height": 240, "n_frames": 200, "fps": 4.0}
    record = {S.MODALITY: "video", S.SEGMENTS: None, S.MEDIA: [video]}
    layout = record_layout(record, [300], opts, Wrappers(KIMI))
    groups = [b for b in layout.blocks if b.kind == "video"]
    cap = group_tokens or opts.seq_len
    assert [(g.chunk_start, g.chunk_end) for g in groups] == [
        (k, min(k + chunks_per_group, 50)) for k in range(0, 50, chunks_per_group)
    ]
    assert all(g.tokens == (g.chunk_end - g.chunk_start) * CHUNK_COST <= cap for g in groups)
    assert all(g.tokens + CHUNK_COST > cap for g in groups[:-1])  # a group takes every chunk that fits
    assert sum(g.vision for g in groups) == video_tokens(320, 240, 200, "kimi-k25").tokens
    assert layout.tokens == 50 * CHUNK_COST + 300 + 1 > opts.seq_len
    cut = pieces(layout, opts)
    _check_cut(layout, opts, cut)
    assert sum(len(p.blocks) for p in cut) == len(groups)


def test_a_frame_too_large_for_the_group_is_shrunk_and_an_image_too_large_for_the_sequence_is_resized():
    opts = LayoutOptions(KIMI, seq_len=256, video_group_tokens=100)
    video = {"kind": "video", "width": 320, "height": 240, "n_frames": 8, "fps": 4.0}
    layout = record_layout({S.MODALITY: "video", S.SEGMENTS: None, S.MEDIA: [video]}, [10], opts, Wrappers(KIMI))
    groups = [b for b in layout.blocks if b.kind == "video"]
    assert (
        layout.resized == 1
        and all(g.tokens <= 100 for g in groups)
        and (groups[0].width, groups[0].height) < (320, 240)
    )
    record, parts = _interleaved([_text(10), _image(0)])
    layout = record_layout(record, parts, opts, Wrappers(KIMI))
    image = next(b for b in layout.blocks if b.kind == "image")
    assert layout.resized == 1 and image.tokens <= opts.seq_len and image.width < 640
    _check_cut(layout, opts, pieces(layout, opts))
