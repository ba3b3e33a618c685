"""One LightningDataModule per dataset; `events.py` is the shared base for event data."""
