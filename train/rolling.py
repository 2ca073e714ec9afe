"""Stage 4: rolling-window training, the self-distillation over rolling windows of mixed noise levels.

    python train/rolling.py --config train/configs/rolling.yaml
"""

from avgen.training.entry import main

if __name__ == "__main__":
    main("rolling", __doc__)
