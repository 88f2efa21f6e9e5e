"""Benchmark decontamination: n-gram overlap with evaluation texts, perceptual-hash matches with evaluation images."""
