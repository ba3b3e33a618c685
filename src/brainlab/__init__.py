"""brainlab: Hydra + PyTorch Lightning experiments for spiking and brain-inspired networks."""

__version__ = "0.1.0"

from brainlab.core.jit import configure as _configure_numba
from brainlab.resolvers import register as _register_resolvers

_configure_numba()  # before anything imports numba: full-width vectors on AVX-512 CPUs (brainlab.core.jit)
_register_resolvers()
