"""Video filters: probe facts, scene splitting, 4-frame chunks, motion, keyframe CLIP score."""
