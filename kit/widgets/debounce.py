"""Run a callback once a burst of calls has gone quiet (a slider dragged across many values updates once)."""
from __future__ import annotations

import asyncio
from typing import Callable


class Debouncer:
    """``trigger()`` schedules ``fn`` to run ``wait`` seconds after the last trigger.

    It uses the running event loop (a Jupyter kernel has one while it handles widget messages); without a
    running loop, or with ``wait <= 0``, ``fn`` runs at once, so scripts and tests stay synchronous.
    ``flush()`` runs a pending call now.
    """

    def __init__(self, fn: Callable[[], None], wait: float = 0.25):
        self.fn = fn
        self.wait = float(wait)
        self._handle = None

    @property
    def pending(self) -> bool:
        return self._handle is not None

    def trigger(self) -> None:
        self.cancel()
        if self.wait <= 0:
            self.fn()
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.fn()
            return
        self._handle = loop.call_later(self.wait, self._fire)

    def _fire(self) -> None:
        self._handle = None
        self.fn()

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def flush(self) -> None:
        if self._handle is not None:
            self.cancel()
            self.fn()
