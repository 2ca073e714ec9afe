"""`avgen bench stream`: the figures account for every chunk, and decoding time is told apart."""

import time

import pytest

from avgen.codecs.av import AVDecoder
from avgen.pipelines.benchmark import benchmark_stream


def test_stream_benchmark_counts_every_chunk(rolling):
    figures = benchmark_stream(rolling, minutes=0.05)  # 3 s
    assert figures["chunks"] == rolling.num_chunks_for(3.0)
    assert 0 < figures["decode_share"] < 1 and figures["av_seconds_per_wall_second"] > 0
    assert set(figures["marks"]) == {"0.05min"}


@pytest.mark.parametrize("ahead", [False, True], ids=["in-turn", "ahead"])
def test_stream_benchmark_charges_decoding_to_the_decode_share(rolling, monkeypatch, ahead):
    frames = AVDecoder._frames

    def slow_frames(self, video):
        time.sleep(0.05)  # far longer than the 1-layer test transformer's chunk
        return frames(self, video)

    monkeypatch.setattr(AVDecoder, "_frames", slow_frames)
    if ahead:
        rolling.enable_decode_ahead()
    figures = benchmark_stream(rolling, minutes=0.05)
    assert figures["decode_ahead"] == ahead and figures["decode_share"] > 0.6  # waiting for frames decoded ahead counts


def test_the_wan_size_benchmark_runs_its_path_at_a_cpu_size(capsys):
    import json

    from avgen.pipelines.wan_benchmark import main

    tiny = ["--size", "tiny", "--device", "cpu", "--dtype", "fp32", "--chunks", "7"]
    assert main([*tiny, "--backends", "sdpa,flash", "--modes", "eager", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert rows[0]["fps_steady"] > 0 and rows[0]["time_to_first_frame_s"] > 0 and rows[0]["mode"] == "eager"
    assert "runs only on CUDA" in rows[1]["error"]  # a missing kernel is reported, the run goes on
    assert main([*tiny, "--modes", "eager,graphs"]) == 2
    assert "unknown mode 'graphs'" in capsys.readouterr().err


def test_the_wan_size_benchmark_compares_each_way_with_eager_on_the_same_prompt_and_seed(capsys):
    import json

    from avgen.pipelines.wan_benchmark import main

    tiny = ["--size", "tiny", "--device", "cpu", "--dtype", "fp32", "--chunks", "5", "--json"]
    for output in ([], ["--latent"]):
        assert main([*tiny, *output, "--modes", "eager,eager"]) == 0
        figures = json.loads(capsys.readouterr().out)
        assert figures["output"] == ("latent" if output else "np")
        assert [row["max_abs_diff_vs_eager"] for row in figures["rows"]] == [0.0, 0.0]


@pytest.mark.parametrize(
    "argv, ahead, torch_threads",
    [([], True, 1), (["--threads", "1"], False, 1), (["--threads", "4"], True, 2), (["--threads", "4", "--no-decode-ahead"], False, 4)],
)
def test_stream_commands_split_the_cores_between_denoising_and_decoding(rolling, argv, ahead, torch_threads):
    import torch

    from avgen.cli import _prepare, build_parser

    args = build_parser().parse_args(["bench", "stream", "--vae-dtype", "fp32", *argv])  # the codec is shared by other tests
    before = torch.get_num_threads()
    try:
        _prepare(rolling, args)
        assert rolling.decodes_ahead == ahead and torch.get_num_threads() == torch_threads
    finally:
        torch.set_num_threads(before)


def test_stream_bench_measures_the_guidance_it_is_asked_for(capsys):
    import json

    import torch

    from avgen.cli import main

    before = torch.get_num_threads()
    try:
        assert main(["bench", "stream", "--minutes", "0.02", "--threads", "1", "--audio-guidance", "1.5", "--guidance", "2", "--json"]) == 0
    finally:
        torch.set_num_threads(before)
    figures = json.loads(capsys.readouterr().out)
    assert (figures["audio_guidance_scale"], figures["guidance_scale"]) == (1.5, 2.0) and figures["chunks"] > 0
