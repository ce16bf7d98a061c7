"""The PDF's charts as PNG images, drawn by vl-convert in a process beside the report's own.

Drawing a chart (Vega's layout and rasterising, in vl-convert's JavaScript runtime) takes as long
as computing its metric, and holds the interpreter while it runs, so threads cannot overlap the
two. A second process can: each chart is handed to it as soon as its view is built, and is drawn
on the other core while the report computes the next metrics. This module imports nothing heavy,
so the process starts quickly.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import Future, ProcessPoolExecutor

CHART_PIXEL_WIDTH = 900


def chart_png(spec: dict) -> bytes:
    """The chart drawn CHART_PIXEL_WIDTH pixels wide."""
    import vl_convert

    return vl_convert.vegalite_to_png(_fixed_width(spec), scale=1)


def _fixed_width(spec: dict) -> dict:
    # "container" width needs a browser page to measure; a static render needs a number.
    return {**spec, "width": CHART_PIXEL_WIDTH - 120, "autosize": {"type": "fit-x"}}


class ChartImages:
    """PNGs of charts by view id: drawn in a worker process once `draw` is called, else here
    when asked for. Close it (or use it as a context manager) to stop the worker."""

    def __init__(self, background: bool = True):
        # Spawned, not forked: the report's process holds DuckDB's threads and their locks.
        self._pool = (ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
                      if background else None)
        self._drawn: dict[str, Future] = {}

    def draw(self, view_id: str, spec: dict) -> None:
        """Start drawing the view's chart (the spec is not changed afterwards)."""
        if self._pool is not None:
            self._drawn[view_id] = self._pool.submit(chart_png, spec)

    def png(self, view_id: str, spec: dict) -> bytes:
        drawn = self._drawn.pop(view_id, None)
        return drawn.result() if drawn is not None else chart_png(spec)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)

    def __enter__(self) -> ChartImages:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
