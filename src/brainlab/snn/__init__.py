"""Spiking-layer backends behind one factory interface (see `factory.py`)."""

from brainlab.snn.factory import NeuronFactory, is_spiking, register_spiking_type, reset_states

__all__ = ["NeuronFactory", "is_spiking", "register_spiking_type", "reset_states"]
