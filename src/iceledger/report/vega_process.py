"""vl-convert's part of the report, done in a process beside the report's own: the Vega bundle
the HTML inlines, and the PDF's charts as PNG images.

Each takes about as long as computing a metric (the bundle, a second; a chart, Vega's layout and
rasterising) and holds the interpreter while it runs, so threads cannot overlap it with the
report's work. A second process can, on the other core: the bundle is asked for when the report
starts, and each chart as soon as its view is built. The worker is this module run on its own
(`python -m`), not a multiprocessing child, which would import the caller's main script again;
it imports nothing heavy, so it starts quickly. Whatever it cannot do (it failed to start, died,
or a job raised) is done here instead, so the report is the same either way and any error is
raised here, as without a worker.
"""

from __future__ import annotations

import itertools
import os
import pickle
import subprocess
import sys
import threading
from concurrent.futures import Future
from pathlib import Path

import vl_convert

CHART_PIXEL_WIDTH = 900


def chart_png(spec: dict) -> bytes:
    """The chart drawn CHART_PIXEL_WIDTH pixels wide."""
    return vl_convert.vegalite_to_png(_fixed_width(spec), scale=1)


def vega_bundle(_=None) -> str:
    """Vega, Vega-Lite and vega-embed as one script (as serving.charts.vega_bundle)."""
    return vl_convert.javascript_bundle()


def _fixed_width(spec: dict) -> dict:
    # "container" width needs a browser page to measure; a static render needs a number.
    return {**spec, "width": CHART_PIXEL_WIDTH - 120, "autosize": {"type": "fit-x"}}


TASKS = {"bundle": vega_bundle, "png": chart_png}


class _NotDone(Exception):
    """The worker did not do a job: it is gone, or the job raised there."""


class VegaProcess:
    """The Vega bundle, and PNGs of charts by view id, made in a worker process (or here, when
    `background` is false or a chart was not handed over with `draw`). Close it (or use it as
    a context manager) to stop the worker."""

    def __init__(self, background: bool = True):
        self._worker: subprocess.Popen | None = None
        self._pending: dict[int, Future] = {}
        self._lock = threading.Lock()
        self._jobs = itertools.count()
        if background:
            self._start()
        self._bundle = self._submit("bundle", None)
        self._drawn: dict[str, Future | None] = {}

    def vega_bundle(self) -> str:
        return _done_or_here(self._bundle, vega_bundle, None)

    def draw(self, view_id: str, spec: dict) -> None:
        """Start drawing the view's chart (the spec is not changed afterwards)."""
        self._drawn[view_id] = self._submit("png", spec)

    def png(self, view_id: str, spec: dict) -> bytes:
        return _done_or_here(self._drawn.pop(view_id, None), chart_png, spec)

    def close(self) -> None:
        if self._worker is None:
            return
        self._worker.stdin.close()
        with self._lock:
            unfinished = bool(self._pending)
        if unfinished:  # the report failed part way: its charts are no longer wanted
            self._worker.kill()
        self._worker.wait()

    def __enter__(self) -> VegaProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _start(self) -> None:
        # The worker imports this very module, wherever this process found it.
        source_root = str(Path(__file__).resolve().parents[2])
        env = {**os.environ,
               "PYTHONPATH": os.pathsep.join(p for p in (source_root, os.environ.get("PYTHONPATH"))
                                             if p)}
        try:
            self._worker = subprocess.Popen([sys.executable, "-m", __name__], env=env,
                                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        except OSError:
            return  # everything is done here
        threading.Thread(target=self._collect, daemon=True).start()

    def _submit(self, task: str, argument) -> Future | None:
        if self._worker is None:
            return None
        future: Future = Future()
        with self._lock:
            if self._worker.stdin.closed or self._worker.poll() is not None:
                return None
            job = next(self._jobs)
            self._pending[job] = future
        try:
            pickle.dump((job, task, argument), self._worker.stdin)
            self._worker.stdin.flush()
        except OSError:
            with self._lock:
                self._pending.pop(job, None)
            return None
        return future

    def _collect(self) -> None:
        """Hand each reply to the job waiting for it; when the worker is gone, fail the rest."""
        replies = self._worker.stdout
        while True:
            try:
                job, done, result = pickle.load(replies)
            except (EOFError, OSError, pickle.UnpicklingError):
                break
            with self._lock:
                future = self._pending.pop(job)
            if done:
                future.set_result(result)
            else:
                future.set_exception(_NotDone(result))
        with self._lock:
            unfinished, self._pending = self._pending, {}
        for future in unfinished.values():
            future.set_exception(_NotDone("the worker process ended"))


def _done_or_here(future: Future | None, work, argument):
    """The worker's result, or `work(argument)` done here when the worker did not do it."""
    if future is not None:
        try:
            return future.result()
        except _NotDone:
            pass
    return work(argument)


def _serve() -> None:
    """The worker: (job, task, argument) in on stdin, (job, done, result) out on stdout."""
    requests, replies = sys.stdin.buffer, os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything printed goes to stderr, not into the replies
    while True:
        try:
            job, task, argument = pickle.load(requests)
        except EOFError:
            return
        try:
            reply = (job, True, TASKS[task](argument))
        except Exception as exc:  # noqa: BLE001 - raised again where the report does the job
            reply = (job, False, f"{type(exc).__name__}: {exc}")
        pickle.dump(reply, replies)
        replies.flush()


if __name__ == "__main__":
    _serve()
