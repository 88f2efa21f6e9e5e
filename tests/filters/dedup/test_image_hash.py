import random

import imagehash
import numpy as np
import pytest
from media_fixtures import crop_fraction, encoded, picture

from fusionforge.filters.dedup.hamming import hamming64
from fusionforge.filters.dedup.image_hash import (
    DEFAULT_MAX_COLOR_DISTANCE,
    DEFAULT_MAX_DISTANCE,
    color_distance,
    color_thumbnails,
    image_hashes,
    pixel_key,
)
from fusionforge.pipelines.core.errors import BadMedia
from fusionforge.pipelines.core.images import decode_image
from fusionforge.pipelines.demo_corpus import draw_shapes


def _distance(a, b):
    """The distance dedup uses: each image's own hash against the other's hash and crops."""
    return int(min(hamming64(a[0], b).min(), hamming64(a, b[0]).min()))


@pytest.mark.parametrize("kind", ["phash", "dhash"])
def test_own_hash_equals_imagehash(kind):
    for seed in range(8):
        image = picture(seed)
        reference = (imagehash.phash if kind == "phash" else imagehash.dhash)(image)
        assert int(str(reference), 16) == int(image_hashes(image, kind)[0])


def test_pixel_key_survives_lossless_reencoding_but_not_changes():
    image = picture(1)
    png = decode_image(encoded(image, "PNG", compress_level=1))
    png9 = decode_image(encoded(image, "PNG", compress_level=9))
    webp = decode_image(encoded(image, "WEBP", lossless=True))
    rgba = decode_image(encoded(image.convert("RGBA"), "PNG"))
    assert pixel_key(png) == pixel_key(png9) == pixel_key(webp) == pixel_key(rgba)
    changed = image.copy()
    changed.putpixel((3, 3), (0, 0, 0))
    assert pixel_key(decode_image(encoded(changed, "PNG"))) != pixel_key(png)
    assert pixel_key(decode_image(encoded(image, "JPEG", quality=90))) != pixel_key(png)


def test_resized_reencoded_and_slightly_cropped_copies_are_near_and_distinct_pictures_are_not():
    originals = [picture(seed) for seed in range(60)]
    hashes = [image_hashes(image) for image in originals]
    for image, own in zip(originals[:15], hashes[:15]):
        copies = [
            image.resize((128, 128)),
            image.resize((400, 400)),
            decode_image(encoded(image.resize((180, 180)), "JPEG", quality=60)),
            crop_fraction(image, 0.02, 0.02, 0.02, 0.02),
            crop_fraction(image, left=0.05),
            crop_fraction(image, left=0.03, top=0.03),
            crop_fraction(image, right=0.02, bottom=0.04),
        ]
        assert max(_distance(own, image_hashes(copy)) for copy in copies) <= DEFAULT_MAX_DISTANCE
    distinct = [_distance(hashes[i], hashes[j]) for i in range(60) for j in range(i + 1, 60)]
    assert min(distinct) > DEFAULT_MAX_DISTANCE


def test_undecodable_and_oversized_images_raise_bad_image():
    with pytest.raises(BadMedia, match="undecodable_image"):
        decode_image(b"not an image at all")
    with pytest.raises(BadMedia, match="too_many_pixels"):
        decode_image(encoded(picture(0, 64), "PNG"), max_pixels=100)
    tiny = image_hashes(picture(0).resize((8, 8)))
    assert len(tiny) == 10 and (tiny == tiny[0]).all()
    with pytest.raises(ValueError, match="unknown image hash"):
        image_hashes(picture(0), "ahash")
    assert np.asarray(image_hashes(picture(0), crop_fraction=0)).shape == (1,)


def test_colour_check_separates_flat_drawings_that_phash_confuses():
    rng = random.Random(0)
    drawings = [draw_shapes(rng, rng.choice([(128, 96), (96, 128), (160, 160), (200, 120)]))[0] for _ in range(150)]
    hashes = [image_hashes(d) for d in drawings]
    thumbs = [color_thumbnails(d) for d in drawings]
    confused = [
        (i, j) for i in range(150) for j in range(i + 1, 150) if _distance(hashes[i], hashes[j]) <= DEFAULT_MAX_DISTANCE
    ]
    assert len(confused) >= 10  # one blob at the same place: pHash cannot tell colour or shape
    assert all(color_distance(thumbs[i], thumbs[j]) > DEFAULT_MAX_COLOR_DISTANCE for i, j in confused)
    for drawing, own, own_thumbs in zip(drawings[:20], hashes[:20], thumbs[:20]):
        w, h = drawing.size
        for copy in (
            drawing.resize((w * 2, h * 2)),
            decode_image(encoded(drawing, "JPEG", quality=60)),
            crop_fraction(drawing, left=0.05),
            crop_fraction(drawing, 0.02, 0.02, 0.02, 0.02),
        ):
            assert _distance(own, image_hashes(copy)) <= DEFAULT_MAX_DISTANCE
            assert color_distance(own_thumbs, color_thumbnails(copy)) <= DEFAULT_MAX_COLOR_DISTANCE
