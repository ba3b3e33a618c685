"""brainlab: Hydra + PyTorch Lightning experiments for spiking and brain-inspired networks."""

__version__ = "0.1.0"
