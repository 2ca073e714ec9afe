import numpy as np
import pytest
import torch

from avgen.codecs.av import AVDecoder, encode_clip
from avgen.codecs.presets import tiny_audio_codec, tiny_video_codec


def test_every_latent_frame_gets_its_own_audio_and_chunk_zero_is_one_frame():
    torch.manual_seed(0)
    video_codec, audio_codec = tiny_video_codec().eval(), tiny_audio_codec().eval()
    video = torch.rand(1, 3, 9, 64, 64) * 2 - 1
    audio = torch.rand(1, 1, 9000) * 2 - 1
    video_latents, audio_latents = encode_clip(video_codec, audio_codec, video, audio, fps=16, sample_rate=16000)
    assert video_latents.shape == (1, 8, 3, 8, 8) and audio_latents.shape == (1, 8, 24)  # 8 audio latents per frame

    decoder = AVDecoder(video_codec, audio_codec, fps=16, sample_rate=16000)
    sizes = []
    for k in range(3):
        frames, samples = decoder.decode(video_latents[:, :, k : k + 1], audio_latents[..., 8 * k : 8 * (k + 1)])
        assert frames.dtype == np.uint8 and samples.shape[-1] == frames.shape[1] * 1000
        sizes.append(frames.shape[1])
    assert sizes == [1, 4, 4]  # the lead-in is dropped: picture and sound stay in step


def test_audio_of_the_wrong_length_is_refused():
    with pytest.raises(ValueError, match="audio must have 9000 samples for 9 frames"):
        encode_clip(tiny_video_codec(), tiny_audio_codec(), torch.zeros(1, 3, 9, 64, 64), torch.zeros(1, 1, 8000), 16, 16000)
