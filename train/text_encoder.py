"""Another text encoder for a trained model: the sentence encoder learns to prompt it as the world encoder did.

    python train/text_encoder.py --config train/configs/text_encoder.yaml
"""

from avgen.training.entry import main

if __name__ == "__main__":
    main("text_encoder", __doc__)
