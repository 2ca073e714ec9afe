"""Stage 2: coupling, both towers + fusion on paired clips, optionally one modality given clean.

    python train/couple.py --config train/configs/couple.yaml
"""

from avgen.training.entry import main

if __name__ == "__main__":
    main("couple", __doc__)
