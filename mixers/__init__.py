"""Domain workflows over records: token accounting, mixtures, packing, zero-vision SFT sets and the audit.

One sub-package per concern (``tokens``, ``packing``, ``sft``, ``audit``); ``mixture`` stays here because
packing, SFT and the audit all read the same mixture file.
"""
