"""avgen: streaming, synchronised audio-video generation.

Shape letters used throughout the package:
    B batch, C channels, F (latent) frames, H/W (latent) height/width,
    L video tokens, A audio tokens, Nh heads, Dh head size, S audio samples.
Pixel frames at the media boundary are uint8 (F, H, W, 3); audio is float32
(channels, S) in [-1, 1].
"""

__version__ = "0.1.0"
