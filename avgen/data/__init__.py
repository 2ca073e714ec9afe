"""Training data from real files: footage folders in the clip format the training stages take (avgen/data/sample.py)."""
