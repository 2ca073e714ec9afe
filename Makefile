# avgen: `make demo` and `make test` set everything up on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip install --constraint constraints.txt
STAMP := $(VENV)/.installed

# Nothing reaches a model hub or an analytics server at run time.
export HF_HUB_OFFLINE := 1
export GRADIO_ANALYTICS_ENABLED := False

# apt-get needs root; sudo when make runs as a user.
AS_ROOT := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: install system-deps demo test app clean

install: $(STAMP)

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 10))' || \
		{ echo "avgen needs Python >= 3.10; run make with PYTHON=python3.X"; exit 1; }
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { \
		echo "python3 -m venv failed; installing Debian's python3-venv"; \
		apt-get update -qq && apt-get install -y -qq python3-venv && $(PYTHON) -m venv $(VENV); }

$(STAMP): $(BIN)/python pyproject.toml constraints.txt
	$(PIP) --quiet --upgrade pip
	$(PIP) --quiet --editable '.[dev]'
	@touch $@

# Debian packages: ffmpeg (ffmpeg + ffprobe, which the app's streaming video runs) and
# chromium (the browser test); installed only when missing.
system-deps:
	@if ! command -v ffprobe >/dev/null || ! command -v chromium >/dev/null; then \
		echo "installing Debian's ffmpeg and chromium (the app's streaming video, the browser test)"; \
		$(AS_ROOT) apt-get update -qq && \
		$(AS_ROOT) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg chromium; \
	fi

# A held-out character (never seen in training), 30 s with sound, from the shipped weights on CPU.
DEMO_PROMPT := A blue diamond face with dot eyes talks in a squeaky voice on a sky-blue background; now and then a chime rings and sparkles appear.

demo: $(STAMP)
	@mkdir -p outputs
	$(BIN)/avgen generate "$(DEMO_PROMPT)" --seconds 30 --model weights/avgen-tiny -o outputs/demo.mp4
	$(BIN)/avgen eval-media outputs/demo.mp4

test: $(STAMP) system-deps
	$(BIN)/python -m pytest -q

app: $(STAMP) system-deps
	$(BIN)/python app.py

clean:
	rm -rf $(VENV) outputs .pytest_cache
