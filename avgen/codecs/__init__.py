"""Streaming codecs: the causal Wan video VAE and a causal waveform audio codec."""

from avgen.codecs.audio import AudioCodec, AudioStream
from avgen.codecs.video import VideoCodec, VideoStream

__all__ = ["AudioCodec", "AudioStream", "VideoCodec", "VideoStream"]
