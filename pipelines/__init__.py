"""Diffusers-style pipelines, installed as ``avgen.pipelines``."""

from avgen.pipelines.loading import load_pipeline
from avgen.pipelines.mutual_forcing import MutualForcingPipeline
from avgen.pipelines.rolling_forcing import RollingForcingPipeline
from avgen.pipelines.streaming import AVChunk, AVPipelineOutput, AVStream

__all__ = ["AVChunk", "AVPipelineOutput", "AVStream", "MutualForcingPipeline", "RollingForcingPipeline", "load_pipeline"]
