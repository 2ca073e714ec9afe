"""Stage 1: uni-modal pretraining of each tower (flow matching, noise per chunk, teacher forcing).

    python train/pretrain.py --config train/configs/pretrain.yaml
    torchrun --nproc_per_node 2 train/pretrain.py --config train/configs/pretrain.yaml
    python train/pretrain.py --config train/configs/pretrain.yaml --set steps=100 --resume
"""

from avgen.training.entry import main

if __name__ == "__main__":
    main("pretrain", __doc__)
