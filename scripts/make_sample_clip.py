#!/usr/bin/env python3
"""Makes media/sample_1280x720.mp4 for `installation rehearse` on machines without a camera."""

from installation.sample import SAMPLE_CLIP, make_sample_clip

if __name__ == "__main__":
    if SAMPLE_CLIP.is_file():
        print(f"sample clip: {SAMPLE_CLIP} (already there)")
    else:
        print(f"sample clip: {make_sample_clip()}")
