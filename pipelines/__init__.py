"""Diffusers-style pipelines, installed as ``avgen.pipelines``.

RollingForcingPipeline and MutualForcingPipeline land here with the model and codecs.
"""
