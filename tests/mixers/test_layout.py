from fusionforge.mixers.layout import LayoutOptions, Wrappers, record_layout
from fusionforge.mixers.vision_tokens import get_preset, video_tokens
from fusionforge.pipelines.core import schema as S


def _video_record(extra_media=()):
    video = {"kind": "video", "width": 320, "height": 240, "n_frames": 30, "fps": 10.0}
    return {S.MODALITY: "video", S.SEGMENTS: None, S.MEDIA: [video, *extra_media],
            "video_frames_v1__n_frames": 9, "video_frames_v1__fps": 2.0}


def test_video_tokens_come_from_the_sampled_frames_and_stored_frames_are_not_counted_again():
    preset = get_preset("kimi-k25")
    opts = LayoutOptions(preset, seq_len=32768, eos=False)
    plain = record_layout(_video_record(), [5], opts, Wrappers(preset))
    frames = [{"kind": "frame", "width": 320, "height": 240, "n_frames": None, "fps": None}] * 9
    with_frames = record_layout(_video_record(frames), [5], opts, Wrappers(preset))
    assert plain.vision == video_tokens(320, 240, 9, "kimi-k25").tokens  # ceil(9 / 4) = 3 chunks, not 30 frames
    assert with_frames.vision == plain.vision
    assert [b.kind for b in with_frames.blocks] == [b.kind for b in plain.blocks]
