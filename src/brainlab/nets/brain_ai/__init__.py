"""The integrated Brain-Inspired model (issue 12): one module per part, composed in `model.py`."""
