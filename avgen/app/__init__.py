"""The Gradio app: watch and hear a character while it is generated, and steer it live.

    python app.py [--model weights/avgen-tiny]      # serves http://127.0.0.1:7860
    python -m avgen.app.bench                       # time to first segment, playback rate

Modules: config (AppConfig), model (loading), inputs (checking what users give),
generation (one stream, Gradio-free), segments (chunk files for Gradio's streaming video),
ui (the page), server (checks and launch), bench (the benchmark).
"""
