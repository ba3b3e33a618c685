"""`python -m brainlab.export ckpt_path=<ckpt> [format=nir] [output=<file>]`."""

from brainlab.export import main

raise SystemExit(main())
