"""Duplicate detection maths: text normalisation, MinHash, LSH banding, union-find, perceptual hashes.

Pure functions over numpy / pyarrow arrays, with no Ray in sight: the distributed pipeline
(``pipelines/dedupe.py``) and the small in-process helpers (``api.py``) call the same code.
"""
