import shutil
import warnings

import pytest
import torch

from avgen.models import KVCache
from avgen.models.compilation import eager_stages, is_compiled


def stream(model, video, audio, text, num_chunks: int) -> list[torch.Tensor]:
    """Each chunk denoised once at t = 0.7 against the cache, then refreshed into it: a stream's pattern."""
    cache = KVCache(sink=1, window=1)
    per_video, per_audio = model.config.chunk_frames, model.config.chunk_frames * model.config.audio_latents_per_frame
    outputs = []
    for c in range(num_chunks):
        v, a = video[:, :, c * per_video : (c + 1) * per_video], audio[:, :, c * per_audio : (c + 1) * per_audio]
        out = model.forward_chunks(cache, v, a, 0.7, 0.7, encoder_hidden_states=text)
        model.refresh(cache, v, a, encoder_hidden_states=text)
        outputs += [out.video, out.audio]
    return outputs


@pytest.mark.skipif(shutil.which("c++") is None and shutil.which("g++") is None, reason="the CPU backend of torch.compile needs a C++ compiler")
def test_compiled_stages_stream_as_eager_does(micro, make_latents):
    video, audio, text = make_latents(micro, 3, batch=1)
    with torch.no_grad():
        eager = stream(micro, video, audio, text, 3)
        micro.compile()
        with warnings.catch_warnings():
            warnings.simplefilter("error", UserWarning)  # no fallback warning: it really compiled
            compiled = stream(micro, video, audio, text, 3)
    assert is_compiled(micro)
    for a, b in zip(eager, compiled):
        assert (a - b).abs().max() <= 1e-5
    eager_stages(micro)
    assert not is_compiled(micro)


def test_a_model_that_cannot_compile_warns_once_and_runs_eager(micro, make_latents):
    def broken_backend(graph, example_inputs):
        raise RuntimeError("no compiler on this machine")

    video, audio, text = make_latents(micro, 2, batch=1)
    with torch.no_grad():
        eager = stream(micro, video, audio, text, 2)
        micro.compile(backend=broken_backend)
        with pytest.warns(UserWarning, match="torch.compile is unavailable here") as caught:
            fallen_back = stream(micro, video, audio, text, 2)
    assert len([w for w in caught if "torch.compile" in str(w.message)]) == 1
    assert not is_compiled(micro)
    for a, b in zip(eager, fallen_back):
        assert torch.equal(a, b)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA GPU; this machine has none")
def test_cuda_graph_stages_stream_as_eager_does(micro, make_latents):
    # One graph serves every layer, so a replay overwrote the outputs of the layer before while
    # they were still in use ("accessing tensor output of CUDAGraphs that has been overwritten").
    model = micro.to("cuda")
    video, audio, text = (x.to("cuda") for x in make_latents(model, 3, batch=1))
    with torch.no_grad():
        eager = stream(model, video, audio, text, 3)
        model.compile(mode="reduce-overhead")
        graphed = stream(model, video, audio, text, 3)
    assert is_compiled(model)
    for a, b in zip(eager, graphed):
        assert (a - b).abs().max() <= 1e-4
