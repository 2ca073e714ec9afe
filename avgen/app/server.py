"""Start the app's server: check the tools streaming needs, load the model, build the page, launch."""

from __future__ import annotations

import os
import shutil

# Nothing reaches a model hub or an analytics server; set before gradio is imported.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"

from avgen.app.config import AppConfig


def check_tools() -> None:
    """Gradio's streaming video muxes every segment with the system's ffmpeg and ffprobe."""
    missing = [tool for tool in ("ffmpeg", "ffprobe") if shutil.which(tool) is None]
    if missing:
        raise ValueError(f"{' and '.join(missing)} not found on PATH: run `make app` (installs Debian's ffmpeg) or apt-get install ffmpeg")


def start(config: AppConfig, block: bool = True):
    """Serve the app on `config.host:config.port`; with block=False return the running Blocks at once."""
    check_tools()
    import warnings

    import torch

    from avgen.app.model import load_model
    from avgen.app.ui import build_app, launch_options

    # diffusers' Oobleck codec still uses the old weight_norm; nothing for app users to act on.
    warnings.filterwarnings("ignore", message=".*torch.nn.utils.weight_norm.*is deprecated", category=FutureWarning)
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    model = load_model(config.model, config.device, config.dtype, untrained=config.untrained, compile=config.compile, vae_dtype=config.vae_dtype)
    app = build_app(model, config)
    app.launch(prevent_thread_lock=not block, **launch_options(config))
    return app
