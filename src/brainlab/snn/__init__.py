"""Spiking-layer backends behind one factory interface (`factory.py`), each a plug (`plug.py`) found from its yaml."""

from brainlab.snn.factory import NeuronFactory, is_spiking, register_spiking_type, reset_states

__all__ = ["NeuronFactory", "is_spiking", "register_spiking_type", "reset_states"]
