"""From a ``pack`` output to model-ready batches: a PyTorch dataset over ``plan.parquet`` and its collates.

``PackedDataset`` reads each planned sequence's records from the input shards (text from the
manifest, media by byte range), rebuilds the token ids exactly as ``pack`` counted them, runs the
model family's own transformers processors on the media and yields tensors a model trains on;
``collate_varlen`` and ``collate_padded`` batch them. See docs/training.md.
"""
