"""One LightningModule per phase; `base.py` holds what they share."""
