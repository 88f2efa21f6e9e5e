import random

import numpy as np
import pytest
from media_fixtures import crop_fraction, encoded, picture

from fusionforge.filters.dedup.hamming import (
    HAMMING_RECALL,
    MAX_HAMMING_BANDS,
    band_masks,
    band_recall,
    hamming64,
    hamming_band_params,
    hamming_keys,
    hamming_matches,
    hash_band_rows,
)
from fusionforge.filters.dedup.image_hash import image_hashes
from fusionforge.filters.dedup.union_find import connected_components
from fusionforge.pipelines.core.images import decode_image
from fusionforge.pipelines.demo_corpus import draw_shapes

D = 8


def _flip(hashes: np.ndarray, bits: int, rng: np.random.Generator) -> np.ndarray:
    """Each hash with exactly ``bits`` random bits flipped."""
    out = hashes.copy()
    for i in range(len(out)):
        for bit in rng.choice(64, size=bits, replace=False):
            out[i] ^= np.uint64(1) << np.uint64(bit)
    return out


def _rows(hashes: np.ndarray, max_distance: int = D, exact: np.ndarray | None = None) -> dict[str, np.ndarray]:
    n = len(hashes)
    if exact is None:
        exact = np.stack([np.arange(n, dtype=np.uint64), np.zeros(n, np.uint64)], axis=1)
    masks = band_masks(*hamming_band_params(max_distance))
    return hash_band_rows(1, np.arange(n), exact, hashes, masks, np.ones(n, bool))


def _all_pairs(hashes: np.ndarray, max_distance: int = D) -> set[tuple[int, int]]:
    """The reference: every pair whose own hash is within the distance of the other's own hash or crops."""
    own_vs_all = np.concatenate(
        [
            np.bitwise_count(hashes[lo : lo + 128, 0][:, None, None] ^ hashes[None]).min(axis=2)
            for lo in range(0, len(hashes), 128)
        ]
    )  # [i, j]: own hash of i, any hash of j
    distance = np.minimum(own_vs_all, own_vs_all.T)
    a, b = np.nonzero(np.triu(distance <= max_distance, 1))
    return set(zip(a.tolist(), b.tolist()))


@pytest.fixture(scope="module")
def structured():
    """Real pHashes (own + 9 crops) of busy photos, flat drawings (strongly correlated bits) and their copies."""
    rng = random.Random(0)
    images = [picture(seed, 96) for seed in range(700)]
    images += [draw_shapes(rng, rng.choice([(96, 72), (72, 96), (96, 96)]))[0] for _ in range(700)]
    copies = []
    for k, image in enumerate(images[::9]):
        w, h = image.size
        copies.append(
            [
                image.resize((w * 2, h * 2)),
                decode_image(encoded(image, "JPEG", quality=60)),
                crop_fraction(image, left=0.04),
                crop_fraction(image, 0.02, 0.02, 0.02, 0.02),
            ][k % 4]
        )
    return np.stack([image_hashes(image) for image in images + copies])


def test_band_parameters_reach_the_recall_at_the_threshold():
    rng = np.random.default_rng(0)
    base = rng.integers(0, 2**63, 3000, dtype=np.int64).astype(np.uint64) * np.uint64(2)
    for distance in (1, 3, 4, 6, 8, 10):
        width, bands = hamming_band_params(distance)
        assert bands <= MAX_HAMMING_BANDS and band_recall(distance, width, bands) >= HAMMING_RECALL
        masks = band_masks(width, bands)
        assert all(bin(int(m)).count("1") == width for m in masks)
        near = _flip(base, distance, rng)
        assert (hamming64(base, near) == distance).all()
        shared = (hamming_keys(base, masks) == hamming_keys(near, masks)).any(axis=1).mean()
        if distance <= 3:
            assert shared == 1.0  # disjoint bands: pigeonhole
        else:
            assert shared >= HAMMING_RECALL - 0.01, (distance, shared)
    assert hamming_band_params(8) == (16, 44)
    assert hamming_band_params(0) == (64, 1)


def test_structured_hashes_match_all_pairs_at_a_small_fraction_of_the_comparisons(structured):
    n = len(structured)
    reference = _all_pairs(structured)
    found = hamming_matches(_rows(structured), D)
    pairs = set(zip(found.a.tolist(), found.b.tolist()))
    assert len(reference) > 500  # copies, and flat drawings that pHash cannot tell apart
    assert pairs <= reference
    assert len(pairs) / len(reference) >= 0.99
    assert found.skipped == 0 and found.capped_buckets == 0
    fraction = found.comparisons / (n * (n - 1) / 2)
    assert fraction < 0.08, fraction  # measured 0.068 (the old 9 chunk buckets: 2.05)
    own = structured[:, 0]
    assert (
        found.distance
        == np.minimum(
            hamming64(own[found.a][:, None], structured[found.b]).min(axis=1),
            hamming64(structured[found.a], own[found.b][:, None]).min(axis=1),
        )
    ).all()


def test_uniform_hashes_cost_about_one_percent_of_all_pairs():
    rng = np.random.default_rng(1)
    hashes = rng.integers(0, 2**63, (3000, 10), dtype=np.int64).astype(np.uint64) * np.uint64(2)
    hashes[:300, 1:] = _flip(np.repeat(hashes[:300, :1], 9, axis=1).ravel(), 3, rng).reshape(300, 9)
    hashes[300:600, 0] = _flip(hashes[:300, 4], 5, rng)  # copies near a crop of the first 300
    found = hamming_matches(_rows(hashes), D)
    assert set(zip(found.a.tolist(), found.b.tolist())) == _all_pairs(hashes)
    assert found.comparisons / (3000 * 2999 / 2) < 0.02


def test_crops_probe_own_hashes_only():
    rng = np.random.default_rng(2)
    a_own, b_own, far = rng.integers(0, 2**63, 3, dtype=np.int64).astype(np.uint64)
    crop = _flip(np.array([b_own]), 2, rng)[0]
    hashes = np.array(
        [
            [a_own] + [crop] * 9,  # a crop of 0 is near 1's own hash
            [b_own] * 10,
            [far] + [crop] * 9,
        ],
        np.uint64,
    )  # 2's crops equal 0's crops: crops never meet crops
    found = hamming_matches(_rows(hashes), D)
    assert list(zip(found.a, found.b, found.distance)) == [(0, 1, 2), (1, 2, 2)]
    assert found.comparisons > 0


def test_an_over_full_bucket_is_capped_and_reported_and_exact_copies_count_once():
    n, fanout = 300, 50
    flat = np.full((n, 10), 0x8000_0000_0000_0000, np.uint64)  # flat colours: one pHash, different pixels
    rows = _rows(flat)
    bands = hamming_band_params(D)[1]
    capped = hamming_matches(rows, D, fanout=fanout)
    assert capped.capped_buckets == bands
    assert capped.comparisons == bands * sum(n - 1 - r for r in range(fanout))
    assert capped.comparisons + capped.skipped == bands * n * (n - 1) // 2
    nodes, roots = connected_components(capped.a, capped.b)
    assert len(nodes) == n and len(set(roots.tolist())) == 1  # still one cluster, through the first members
    full = hamming_matches(rows, D, fanout=n)
    assert full.skipped == 0 and len(full.a) == n * (n - 1) // 2
    same_pixels = np.tile(np.array([[7, 7]], np.uint64), (n, 1))  # one picture n times: its exact key
    copies = hamming_matches(_rows(flat, exact=same_pixels), D, fanout=fanout)
    assert copies.comparisons == 0 and len(copies.a) == 0 and copies.capped_buckets == 0


def test_results_do_not_depend_on_block_size_or_row_order(structured):
    rows = _rows(structured[:600])
    whole = hamming_matches(rows, D)
    order = np.random.default_rng(3).permutation(len(rows["item"]))
    small = hamming_matches({k: v[order] for k, v in rows.items()}, D, block=97)
    for field in ("a", "b", "distance"):
        assert np.array_equal(getattr(whole, field), getattr(small, field))
    assert whole.comparisons == small.comparisons
