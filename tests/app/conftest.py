import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROMPT = "A red round face with glasses talks in a deep voice on a navy background."
MAX_SECONDS = 60


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """`python app.py` with untrained tiny components on a free loopback port; its URL.

    The port comes from GRADIO_SERVER_PORT, as for any Gradio app, so every test of the served
    page also checks that the app honours it."""
    httpx = pytest.importorskip("httpx")
    pytest.importorskip("gradio")
    port = free_port()
    command = [sys.executable, "app.py", "--untrained", "--threads", "1", "--max-seconds", str(MAX_SECONDS)]
    environment = {**os.environ, "GRADIO_SERVER_PORT": str(port)}
    log_path = tmp_path_factory.mktemp("server") / "app.log"
    with open(log_path, "w") as log:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, text=True, env=environment)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 120
    while True:
        if process.poll() is not None:
            pytest.fail(f"app.py exited with {process.returncode}: {log_path.read_text().strip()[-500:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail("app.py did not answer within 120 s")
        time.sleep(0.5)
    yield url
    process.terminate()
    process.wait(timeout=30)


@pytest.fixture
def client(server):
    from gradio_client import Client

    return Client(server, verbose=False)
