"""Architectures (nn.Module), injected into phases by config (`model.net`)."""
