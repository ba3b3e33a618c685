"""Plot helpers the benches share: heatmap cell labels that read on every colour, log axes labelled with the
measured values (1, 2, 4, 8 streams, not 2x10^0)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from brainlab.callbacks.snn_media import text_colour


def label_cells(ax: Any, image: Any, data: Sequence[Sequence[float]], fmt: Callable[[float], str],
                fontsize: int = 8) -> None:
    """Write each cell's value on an `imshow` heatmap, black on light cells and white on dark ones; empty (nan)
    cells get a grey dash."""
    for i, row in enumerate(data):
        for j, value in enumerate(row):
            if value != value:  # nan: not measured
                ax.text(j, i, "–", ha="center", va="center", color="0.5", fontsize=fontsize)
                continue
            colour = text_colour(image.cmap(image.norm(value)))
            ax.text(j, i, fmt(value), ha="center", va="center", color=colour, fontsize=fontsize)


def log_axis(ax: Any, axis: str, values: Iterable[float], base: float = 10) -> None:
    """A log-scaled `axis` ("x" or "y") ticked at the measured `values`, labelled as plain numbers, no minor labels."""
    from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator

    ticks = sorted({float(v) for v in values if v and v > 0})
    target = ax.xaxis if axis == "x" else ax.yaxis
    (ax.set_xscale if axis == "x" else ax.set_yscale)("log", base=base)
    target.set_major_locator(FixedLocator(ticks))
    target.set_major_formatter(plain_number)
    target.set_minor_locator(NullLocator())
    target.set_minor_formatter(NullFormatter())


def plain_number(value: float, _pos: Any = None) -> str:
    """1, 4, 512, 0.25, 1.5e+05: integers as integers, others with 3 significant digits."""
    return f"{value:.0f}" if float(value).is_integer() and abs(value) < 1e5 else f"{value:.3g}"


def log_value_axis(ax: Any, axis: str = "y") -> None:
    """A log-scaled value axis (speed-ups, rows/s, seconds) ticked at 1, 2, 5 x 10^n and labelled as plain numbers
    (0.5, 1, 2, 100), without minor labels."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    target = ax.xaxis if axis == "x" else ax.yaxis
    (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
    target.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    target.set_major_formatter(FuncFormatter(plain_number))
    target.set_minor_formatter(NullFormatter())
