"""One LightningDataModule per dataset over shared machinery: `base` (the DataModule bases and the interface
phases read), `loaders` (loader settings), `splits` (seeded splits), `caching` (cache strategies), `events` (the
event path) and `images` (the image path). Imports only `brainlab.core`."""
