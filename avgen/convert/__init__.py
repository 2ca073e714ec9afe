"""Importers of the field's checkpoints: Self-Forcing-family generators and Wan2.1 base folders into avgen pipeline folders."""
