"""Token accounting, mixtures, early-fusion packing, zero-vision SFT sets and audits."""
