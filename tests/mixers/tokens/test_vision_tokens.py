"""The presets against transformers' own Qwen2-VL and Kimi K2.5 processors: exact equality, same errors."""

import math

import pytest
import torch
from transformers.models.kimi_k25.image_processing_kimi_k25 import Kimi_K25ImageProcessor
from transformers.models.kimi_k25.video_processing_kimi_k25 import Kimi_K25VideoProcessor
from transformers.models.llava_onevision.processing_llava_onevision import LlavaOnevisionProcessor
from transformers.models.qwen2_vl.image_processing_qwen2_vl import Qwen2VLImageProcessor
from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

from fusionforge.mixers.tokens.vision import fit_image, get_preset, image_tokens, video_tokens
from fusionforge.pipelines.core.errors import ConfigError

# (width, height): tiny, odd, square, extreme aspect ratios on both sides of Qwen's 200 limit, 4K, 8K strips
SIZES = [
    (1, 1),
    (9, 9),
    (10, 10),
    (27, 29),
    (28, 28),
    (29, 57),
    (56, 1),
    (1, 150),
    (199, 1),
    (1, 200),
    (200, 1),
    (64, 64),
    (100, 20000),
    (333, 777),
    (640, 480),
    (1024, 768),
    (1920, 1080),
    (1080, 1920),
    (2048, 2048),
    (3840, 2160),
    (4000, 3000),
    (7000, 50),
    (7168, 7168),
    (8000, 8000),
    (12000, 100),
    (150, 12000),
    (5000, 37),
    (14, 7000),
    (223, 97),
]
FRAMES = [1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 16, 17, 31, 33]
VIDEO_SIZES = [(64, 48), (90, 60), (500, 30), (28, 28), (17, 300)]
PROCESSED_SIZES = [(1, 1), (27, 29), (199, 1), (1, 150), (333, 777), (1920, 1080), (4000, 3000), (7000, 50)]
ZERO_SIZES = [(0, 10), (10, 0), (0, 0)]  # the processors fail (ZeroDivisionError); we raise a ValueError that says why


@pytest.fixture(scope="module")
def qwen():
    return Qwen2VLImageProcessor(), Qwen2VLVideoProcessor()


@pytest.fixture(scope="module")
def kimi():
    return Kimi_K25ImageProcessor(), Kimi_K25VideoProcessor()


def _raises(fn):
    try:
        return False, fn()
    except (ValueError, ZeroDivisionError) as exc:
        return True, exc


def test_defaults_equal_the_processors(qwen, kimi):
    qi, qv = qwen
    ki, kv = kimi
    q, k = get_preset("qwen2-vl"), get_preset("kimi-k25")
    assert (q.min_pixels, q.max_pixels) == (qi.size["shortest_edge"], qi.size["longest_edge"])
    assert (q.video_min_pixels, q.video_max_pixels) == (qv.size["shortest_edge"], qv.size["longest_edge"])
    assert (q.patch_size, q.merge_size, q.temporal_patch_size) == (qi.patch_size, qi.merge_size, qv.temporal_patch_size)
    assert q.max_video_tokens == qv.max_video_tokens
    assert (k.patch_size, k.merge_size, k.temporal_patch_size) == (ki.patch_size, ki.merge_size, kv.temporal_patch_size)
    assert (k.max_patches, k.video_max_patches) == (ki.max_patches, kv.max_patches)
    assert k.max_patches_per_side == ki.size["max_height"] == kv.size["max_height"]


@pytest.mark.parametrize(("width", "height"), SIZES + ZERO_SIZES)
def test_image_tokens_match_processor_patch_counts(qwen, kimi, width, height):
    for preset, processor in (("qwen2-vl", qwen[0]), ("kimi-k25", kimi[0])):
        ref_raised, ref = _raises(lambda p=processor: p.get_number_of_image_patches(height, width))
        ours_raised, ours = _raises(lambda p=preset: image_tokens(width, height, p))
        assert ours_raised == ref_raised, (preset, width, height, ref, ours)
        if ours_raised:
            assert isinstance(ours, ValueError) and str(ours)
            if 0 in (width, height):
                assert "must be positive" in str(ours)
        else:
            assert ours.grid[1] * ours.grid[2] == ref
            assert ours.tokens == ref // 4


@pytest.mark.parametrize(("width", "height"), PROCESSED_SIZES + ZERO_SIZES)
def test_image_grid_matches_real_preprocessing(qwen, kimi, width, height):
    pixels = torch.zeros(3, height, width, dtype=torch.uint8)
    for preset, processor in (("qwen2-vl", qwen[0]), ("kimi-k25", kimi[0])):
        ref_raised, ref = _raises(lambda p=processor: p(images=[pixels], return_tensors="pt"))
        ours_raised, ours = _raises(lambda p=preset: image_tokens(width, height, p))
        assert ours_raised == ref_raised, (preset, width, height, ref, ours)
        if ours_raised:
            assert isinstance(ours, ValueError) and str(ours)
        else:
            grid = tuple(ref["image_grid_thw"][0].tolist())
            assert ours.grid == grid
            assert ours.tokens == math.prod(grid) // 4
            assert ours.resized_height * ours.resized_width * 3 == ref["pixel_values"].numel() // ours.grid[0] // (
                2 if preset == "qwen2-vl" else 1
            )


@pytest.mark.parametrize("frames", FRAMES)
@pytest.mark.parametrize(("width", "height"), VIDEO_SIZES)
def test_video_tokens_match_real_preprocessing(qwen, kimi, frames, width, height):
    video = torch.zeros(frames, 3, height, width, dtype=torch.uint8)
    out = qwen[1](videos=[video], return_tensors="pt", cap_pixels_per_frame=False)
    t, h, w = out["video_grid_thw"][0].tolist()
    ours = video_tokens(width, height, frames, "qwen2-vl")
    assert ours.grid == (t, h, w) and ours.tokens == t * h * w // 4 and ours.chunks == math.ceil(frames / 2)
    out = kimi[1](videos=[video], return_tensors="pt", do_sample_frames=False)
    grids = out["video_grid_thw"].tolist()
    ours = video_tokens(width, height, frames, "kimi-k25")
    assert ours.chunks == out["num_chunks_per_video"][0] == len(grids) == math.ceil(frames / 4)
    assert ours.tokens == sum(gh * gw // 4 for _, gh, gw in grids)
    assert all((gh, gw) == ours.grid[1:] for _, gh, gw in grids)


@pytest.mark.parametrize(("width", "height"), [(1920, 1080), (4000, 3000), (1, 150), (12000, 100)])
@pytest.mark.parametrize("frames", [1, 7, 64, 601])
def test_video_tokens_match_processor_counts_at_large_sizes(qwen, kimi, width, height, frames):
    ref = qwen[1].get_num_of_video_patches(frames, height, width, {})
    assert video_tokens(width, height, frames, "qwen2-vl").tokens == ref // 4
    per_frame = kimi[1].get_num_of_video_patches(frames, height, width) // frames
    assert video_tokens(width, height, frames, "kimi-k25").tokens == math.ceil(frames / 4) * per_frame // 4


def test_qwen_cap_pixels_per_frame_matches_processor():
    video = torch.zeros(40, 3, 480, 640, dtype=torch.uint8)
    processor = Qwen2VLVideoProcessor(max_video_tokens=5000)
    t, h, w = processor(videos=[video], return_tensors="pt", cap_pixels_per_frame=True)["video_grid_thw"][0].tolist()
    ours = video_tokens(640, 480, 40, "qwen2-vl", cap_pixels_per_frame=True, max_video_tokens=5000)
    assert ours.grid == (t, h, w)
    assert ours.tokens < video_tokens(640, 480, 40, "qwen2-vl").tokens  # the cap did bite


@pytest.mark.parametrize(
    ("width", "height", "frames"), [(0, 10, 4), (10, 0, 4), (0, 0, 1), (300, 1, 4), (1, 201, 2), (64, 48, 0)]
)
def test_invalid_videos_raise_where_the_reference_does(qwen, kimi, width, height, frames):
    video = torch.zeros(frames, 3, height, width, dtype=torch.uint8)
    cases = (
        ("qwen2-vl", lambda: qwen[1](videos=[video], return_tensors="pt", cap_pixels_per_frame=False)),
        ("kimi-k25", lambda: kimi[1](videos=[video], return_tensors="pt", do_sample_frames=False)),
    )
    for preset, reference in cases:
        try:
            reference()
            ref_raised = False
        except (ValueError, ZeroDivisionError, RuntimeError, IndexError):
            ref_raised = True
        ours_raised, ours = _raises(lambda p=preset: video_tokens(width, height, frames, p))
        assert ours_raised == ref_raised, (preset, width, height, frames, ours)
        if ours_raised:
            assert isinstance(ours, ValueError) and str(ours)


def test_llava_onevision_matches_processor_feature_count():
    processor = LlavaOnevisionProcessor.__new__(LlavaOnevisionProcessor)
    processor.num_image_tokens, processor.vision_aspect_ratio = 729, "anyres_max_9"
    processor.image_processor = type(
        "IP", (), {"image_grid_pinpoints": [[h, w] for h in range(384, 2305, 384) for w in range(384, 2305, 384)]}
    )()
    for width, height in SIZES:
        ref = processor._get_number_of_features(height, width, 384, 384)
        assert image_tokens(width, height, "llava-onevision").tokens == ref, (width, height)
    assert video_tokens(384, 384, 8, "llava-onevision").tokens == 8 * 196 + 1


def test_kimi_vl_crop_and_pad():
    crop = image_tokens(1000, 500, "kimi-vl")  # 71 x 35 patches = 2485 <= 4096: no rescale
    assert (crop.resized_width, crop.resized_height, crop.tokens) == (980, 476, 35 * 17)
    pad = image_tokens(1000, 500, "kimi-vl", fit="pad")
    assert (pad.resized_width, pad.resized_height, pad.tokens) == (1008, 504, 36 * 18)
    big = image_tokens(4000, 3000, "kimi-vl")
    assert big.grid[1] * big.grid[2] <= 4096 and big.tokens <= 1024
    with pytest.raises(ValueError, match="merge window"):
        image_tokens(20, 500, "kimi-vl")
    assert video_tokens(1000, 500, 3, "kimi-vl").tokens == 3 * crop.tokens


def test_wrappers_custom_overrides_and_errors():
    assert image_tokens(640, 480, "qwen2-vl").wrapper_tokens == 2
    assert image_tokens(640, 480, "kimi-k25").wrapper_tokens == 4
    assert video_tokens(640, 480, 9, "kimi-k25").wrapper_tokens == 3 * 11
    custom = image_tokens(640, 480, "custom", patch_size=16, merge_size=2, max_pixels=32 * 32 * 64)
    assert custom.tokens <= 64 and custom.resized_width % 32 == 0
    assert video_tokens(640, 480, 9, "custom", temporal_patch_size=3).chunks == 3
    with pytest.raises(ConfigError, match="unknown vision preset parameter"):
        get_preset("kimi-k25", max_pixel=5)
    with pytest.raises(ConfigError, match="unknown vision preset"):
        get_preset("gpt-vision")


def test_fit_image_shrinks_to_the_budget():
    preset = get_preset("kimi-k25")
    full = preset.image(4000, 3000)
    fitted = fit_image(preset, 4000, 3000, 500)
    assert full.tokens > 500 >= fitted.tokens
    assert fit_image(preset, 4000, 3000, full.tokens).tokens == full.tokens
    assert fitted.tokens > 400  # the largest fitting size, not any fitting size
    assert abs(fitted.width / fitted.height - 4 / 3) < 0.01
    assert fit_image(get_preset("qwen2-vl"), 4000, 3000, 2) is None
