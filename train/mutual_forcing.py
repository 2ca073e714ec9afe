"""Stage 3: Mutual Forcing, self-generated few-step history, multi-step loss on the next real chunk, self-distillation.

    python train/mutual_forcing.py --config train/configs/mutual_forcing.yaml
"""

from avgen.training.entry import main

if __name__ == "__main__":
    main("mutual_forcing", __doc__)
