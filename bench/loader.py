"""The training loader against a plain webdataset pipeline over the same records, in the same run.

Two corpora, sharded by ``fusionforge shard`` and packed by ``fusionforge pack`` (qwen2-vl, L=2048,
a BPE tokenizer trained on the corpus on the spot):

- text: ``PackedDataset`` (one process, samples) against ``webdataset.WebDataset`` over the same input
  shards, decoding each record's text and tokenizing it with the same tokenizer (no packing, no
  tensors): tokens/s of each and their ratio (target: at least 1x). A third row tokenizes the same
  records 16 a call with ``encode_batch_fast`` (the call the loader makes): how much of the loader's
  lead is the tokenizer call alone;
- images: the loader's images/s on an image-caption pack against the Qwen2-VL image processor's own
  speed on the same images (those the plan holds, decoded from the same bytes, one call per image,
  as the loader makes): target within 0.8x.

Times are CPU seconds of this process, best of ``--repeat`` interleaved runs, with one torch and one
tokenizer thread as in a DataLoader worker (the issue's "per worker"; on a loaded machine an idle
intra-op thread's spinning would otherwise be counted, several times the work itself).

    python bench/loader.py --docs 3000 --images 400"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq
import torch
from PIL import Image

from fusionforge.mixers.packing.job import PackConfig, run_pack
from fusionforge.pipelines.core.settings import build_config
from fusionforge.pipelines.demo_corpus import document, draw_shapes, encode, write_jsonl
from fusionforge.pipelines.shard import ShardConfig, run_shard

SPECIALS = ["<|endoftext|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"]


def make_inputs(root: Path, docs: int, images: int, seed: int = 0) -> tuple[Path, Path]:
    rng = random.Random(seed)
    write_jsonl(root / "web.jsonl", [{"id": f"web-{i}", "text": document(rng, "en")} for i in range(docs)])
    photos = root / "photos"
    photos.mkdir()
    for i in range(images):
        image, caption, _ = draw_shapes(rng, rng.choice([(320, 240), (240, 320), (448, 448), (640, 360)]))
        (photos / f"img_{i:05d}.jpg").write_bytes(encode(image, "JPEG"))
        (photos / f"img_{i:05d}.txt").write_text(caption)
    return root / "web.jsonl", photos


def train_tokenizer(folder: Path, texts: list[str]) -> Path:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=4000, special_tokens=SPECIALS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tokenizer.train_from_iterator(texts, trainer)
    folder.mkdir()
    tokenizer.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps({"eos_token": "<|endoftext|>"}))
    return folder


def shard_and_pack(root: Path, name: str, source: str, tokenizer: Path) -> tuple[Path, Path]:
    shards = root / f"{name}-shards"
    run_shard(
        build_config(
            ShardConfig, {"inputs": (f"{name}={source}",), "output": str(shards), "shard_count": 4, "executor": "local"}
        )
    )
    packed = root / f"{name}-packed"
    settings = {"seq_len": 2048, "window": 8, "executor": "local", "vision_preset": "qwen2-vl"}
    run_pack(
        build_config(PackConfig, {"input": str(shards), "output": str(packed), "tokenizer": str(tokenizer), **settings})
    )
    return shards, packed


def planned_ids(packed: Path) -> set[str]:
    plan = pq.read_table(packed / "plan.parquet", columns=["segments"]).column("segments").to_pylist()
    return {segment["sample_id"] for segments in plan for segment in segments}


def cpu_seconds(fn) -> tuple[float, object]:
    start = time.process_time()
    out = fn()
    return time.process_time() - start, out


def loader_pass(packed: Path, tokenizer: Path) -> tuple[int, int, int]:
    from fusionforge.mixers.training.dataset import PackedDataset

    sequences = tokens = images = 0
    for sample in PackedDataset(packed, tokenizer):
        sequences += 1
        tokens += len(sample["input_ids"])
        images += 0 if sample["image_grid_thw"] is None else len(sample["image_grid_thw"])
    return sequences, tokens, images


def webdataset_text_pass(shards: Path, tokenizer: Path) -> tuple[int, int]:
    import webdataset as wds
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer / "tokenizer.json"))
    records = tokens = 0
    for sample in wds.WebDataset(sorted(str(p) for p in shards.glob("**/*.tar")), shardshuffle=False):
        if "txt" in sample:
            records += 1
            tokens += len(tok.encode(sample["txt"].decode(), add_special_tokens=False).ids) + 1  # + EOS
    return records, tokens


def webdataset_batched_text_pass(shards: Path, tokenizer: Path, batch: int = 16) -> tuple[int, int]:
    """The same pipeline tokenizing 16 records a call without character offsets, as the loader does (for reference)."""
    import webdataset as wds
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer / "tokenizer.json"))
    texts = [
        sample["txt"].decode()
        for sample in wds.WebDataset(sorted(str(p) for p in shards.glob("**/*.tar")), shardshuffle=False)
        if "txt" in sample
    ]
    tokens = sum(
        len(e.ids) + 1  # + EOS
        for i in range(0, len(texts), batch)
        for e in tok.encode_batch_fast(texts[i : i + batch], add_special_tokens=False)
    )
    return len(texts), tokens


def processor_pass(shards: Path, planned: set[str]) -> int:
    """The processor on the images the plan holds (the pack leaves a surplus), each decoded from its bytes."""
    import webdataset as wds
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import Qwen2VLImageProcessor

    processor = Qwen2VLImageProcessor()
    count = 0
    for sample in wds.WebDataset(sorted(str(p) for p in shards.glob("**/*.tar")), shardshuffle=False):
        if "jpg" in sample and json.loads(sample["json"])["id"] in planned:
            processor(images=[Image.open(io.BytesIO(sample["jpg"])).convert("RGB")], return_tensors="pt")
            count += 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=3000)
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    os.environ["TOKENIZERS_PARALLELISM"] = "false"  # one thread per worker, as a DataLoader worker runs
    torch.set_num_threads(1)
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="ff-bench-loader-") as folder:
        root = Path(folder)
        web, photos = make_inputs(root, args.docs, args.images)
        texts = [json.loads(line)["text"] for line in web.read_text().splitlines()]
        tokenizer = train_tokenizer(root / "tokenizer", texts)
        text_shards, text_packed = shard_and_pack(root, "web", str(web), tokenizer)
        image_shards, image_packed = shard_and_pack(root, "photos", str(photos), tokenizer)
        best: dict[str, tuple[float, object]] = {}
        runs = {
            "loader text": lambda: loader_pass(text_packed, tokenizer),
            "webdataset text": lambda: webdataset_text_pass(text_shards, tokenizer),
            "webdataset batched text": lambda: webdataset_batched_text_pass(text_shards, tokenizer),
            "loader images": lambda: loader_pass(image_packed, tokenizer),
            "processor images": lambda: processor_pass(image_shards, planned_ids(image_packed)),
        }
        for _ in range(args.repeat):
            for name, run in runs.items():
                seconds, out = cpu_seconds(run)
                if name not in best or seconds < best[name][0]:
                    best[name] = (seconds, out)
    print(f"load average (1 min) {load:.1f} before, {os.getloadavg()[0]:.1f} after; 1 torch and tokenizer thread")
    (lt, (seqs, ltokens, _)), (wt, (records, wtokens)) = best["loader text"], best["webdataset text"]
    bt, (_, btokens) = best["webdataset batched text"]
    (li, (_, _, limages)), (pi, pimages) = best["loader images"], best["processor images"]
    print("| pipeline | CPU s | items | tokens | tokens/s | images/s | ratio |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    print(
        f"| webdataset + tokenizer (text) | {wt:.2f} | {records} records | {wtokens} | {wtokens / wt:,.0f} | | 1.00 |"
    )
    ratio = (ltokens / lt) / (wtokens / wt)
    print(f"| PackedDataset (text) | {lt:.2f} | {seqs} sequences | {ltokens} | {ltokens / lt:,.0f} | | {ratio:.2f} |")
    ratio = (btokens / bt) / (wtokens / wt)
    print(
        f"| webdataset + batched tokenizer (text) | {bt:.2f} | {records} records | {btokens} | {btokens / bt:,.0f} "
        f"| | {ratio:.2f} |"
    )
    print(f"| Qwen2-VL image processor | {pi:.2f} | {pimages} images | | | {pimages / pi:.1f} | 1.00 |")
    ratio = (limages / li) / (pimages / pi)
    print(f"| PackedDataset (image pack) | {li:.2f} | {limages} images | | | {limages / li:.1f} | {ratio:.2f} |")


if __name__ == "__main__":
    main()
