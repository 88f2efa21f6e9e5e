"""Image filters: decode and size checks, CLIP image-text score."""
