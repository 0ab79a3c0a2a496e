"""Is there a frontend that will draw widgets? Live explorers in JupyterLab, static figures everywhere else.

An explorer is live (ipywidgets) only when someone can see it: inside a Jupyter kernel whose current request
came from an interactive client. A notebook client such as JupyterLab, Notebook or VS Code sends its
``execute_request`` with ``allow_stdin=True`` (it can answer ``input()``); papermill and ``nbconvert --execute``
(nbclient) send ``allow_stdin=False``, and a plain Python process or a test has no kernel at all. In those
cases an explorer renders a static figure and its numbers instead.

The caller can force either mode: ``static=True`` / ``static=False`` on an explorer, or the environment
variable ``KIT_WIDGETS=static`` / ``KIT_WIDGETS=live`` (e.g. for Voila, which executes without stdin but does
draw widgets).
"""
from __future__ import annotations

import os

ENV = "KIT_WIDGETS"
LIVE_VALUES = ("live", "1", "true", "yes", "on")
STATIC_VALUES = ("static", "0", "false", "no", "off")


def _kernel():
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with ipykernel
        return None
    shell = get_ipython()
    return getattr(shell, "kernel", None) if shell is not None else None


def request_allows_stdin(kernel) -> bool:
    """Whether the kernel's current request came from a client that can answer ``input()``."""
    try:
        parent = kernel.get_parent()
    except Exception:  # noqa: BLE001 - older kernels have no get_parent
        parent = getattr(kernel, "_parent", None) or getattr(kernel, "_parent_header", None)
    content = (parent or {}).get("content") if isinstance(parent, dict) else None
    if isinstance(content, dict) and "allow_stdin" in content:
        return bool(content["allow_stdin"])
    return bool(getattr(kernel, "_allow_stdin", False))


def has_frontend(static: bool | None = None) -> bool:
    """``True`` when widgets will be drawn (live mode), ``False`` for the static fallback.

    ``static`` forces the answer (``static=True`` -> ``False``); then ``KIT_WIDGETS``; then the kernel check
    described in the module docstring.
    """
    if static is not None:
        return not static
    forced = os.environ.get(ENV, "").strip().lower()
    if forced in LIVE_VALUES:
        return True
    if forced in STATIC_VALUES:
        return False
    if forced:
        raise ValueError(f"{ENV}={forced!r}: use 'live' or 'static'")
    kernel = _kernel()
    if kernel is None:
        return False
    return request_allows_stdin(kernel)
