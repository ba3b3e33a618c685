"""`python -m brainlab.bench <name> [options]`: run one benchmark (`loading`/`caching`, `backends`)."""

from __future__ import annotations

import importlib
import sys

BENCHES = {"loading": "caching", "caching": "caching", "backends": "backends"}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in BENCHES:
        print(f"usage: python -m brainlab.bench {{{'|'.join(BENCHES)}}} [options] (--help for a bench's options)",
              file=sys.stderr)
        return 2
    importlib.import_module(f"brainlab.bench.{BENCHES[argv[0]]}").main(argv[1:])
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
