"""brainlab: Hydra + PyTorch Lightning experiments for spiking and brain-inspired networks."""

__version__ = "0.1.0"

from brainlab.resolvers import register as _register_resolvers

_register_resolvers()
