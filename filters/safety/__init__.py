"""Safety and content signals of images and video keyframes: NSFW score, faces, text share, aesthetic score."""
