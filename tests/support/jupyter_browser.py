"""A real JupyterLab server and a headless Debian Chromium driven by Playwright, for the browser test.

Nothing here downloads or installs a browser: Playwright gets ``executable_path`` (the system
``/usr/bin/chromium``, which ``make browser-deps`` installs with ``apt-get install -y chromium`` when missing,
as root; ``.ci/run`` calls it) and ``PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1`` is set; ``playwright install`` is
never called. Without the browser (or Playwright) the test skips, or fails when ``CI`` is set. Every process started
here is stopped by id on exit (the server's process group, then any kernel or browser process whose command
line names this run's private folders).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
# As root Chromium needs --no-sandbox; the background-networking flags stop it from opening connections the
# closed network refuses (many at a time, slowing everything down).
CHROMIUM_FLAGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage"]


class Unavailable(RuntimeError):
    """What the browser test needs is missing (the test skips saying why, or fails when CI is set)."""


def ci() -> bool:
    """Whether the environment variable ``CI`` is set (to anything but empty, ``0`` or ``false``)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false")


def chromium() -> Path:
    """The system Chromium (``/usr/bin/chromium``, or ``chromium`` on the PATH); else :class:`Unavailable`.

    Nothing is installed here: ``make browser-deps`` (which ``.ci/run`` calls) installs it as root.
    """
    found = CHROMIUM if CHROMIUM.exists() else (Path(p) if (p := shutil.which("chromium")) else None)
    if found is None:
        raise Unavailable("Debian's chromium is not installed: run `make browser-deps` as root "
                          "(apt-get install -y chromium)")
    return found


def missing(reason: str):
    """Skip the browser test for ``reason``; fail it instead when CI is set (there it must run)."""
    import pytest

    if ci():
        pytest.fail(f"CI is set and the browser test cannot run: {reason}", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pids_naming(marker: str) -> list[int]:
    """Processes whose command line contains ``marker`` (a private temporary path of this run)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        if marker in cmdline:
            out.append(int(entry.name))
    return out


def _kill(pids, sig=signal.SIGKILL) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def leftovers(*markers: str) -> list[int]:
    return sorted({pid for m in markers for pid in _pids_naming(m)})


def sweep(*markers: str, wait: float = 5.0) -> list[int]:
    """Terminate, then kill, every process naming one of ``markers``; returns those still alive (none)."""
    pids = leftovers(*markers)
    _kill(pids, signal.SIGTERM)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and leftovers(*markers):
        time.sleep(0.1)
    _kill(leftovers(*markers))
    time.sleep(0.2)
    return leftovers(*markers)


@contextmanager
def jupyter_lab(root_dir: Path, work: Path, env_extra: dict | None = None, start_timeout: float = 120.0):
    """Run ``jupyter lab`` on a free loopback port serving ``root_dir``; yields ``(base_url, token, proc)``.

    Config, data, runtime, settings and workspace folders live under ``work`` (fresh for each run), so no
    user setting leaks in and every kernel's connection file names ``work`` (which is how :func:`sweep`
    finds them). The app is exposed in the browser (``window.jupyterapp``) so the test can run commands.
    """
    port, token = free_port(), os.urandom(12).hex()
    for sub in ("config", "runtime", "workspaces", "ipython"):
        (work / sub).mkdir(parents=True, exist_ok=True)
    settings = {
        # no news / update pop-ups over the page
        "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
        # render every cell (no windowing or content-visibility), so outputs below the fold are in the DOM
        "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
    }
    for name, values in settings.items():
        path = work / "settings" / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(work / "config"), "JUPYTER_RUNTIME_DIR": str(work / "runtime"),
           "JUPYTERLAB_SETTINGS_DIR": str(work / "settings"), "JUPYTERLAB_WORKSPACES_DIR": str(work / "workspaces"),
           "IPYTHONDIR": str(work / "ipython"), "JUPYTER_PLATFORM_DIRS": "1", **(env_extra or {})}
    env.pop("KIT_WIDGETS", None)
    cmd = [sys.executable, "-m", "jupyterlab", "--allow-root", "--no-browser", f"--port={port}",
           "--ServerApp.ip=127.0.0.1", "--ServerApp.port_retries=0", f"--ServerApp.token={token}",
           f"--ServerApp.root_dir={root_dir}", "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=None",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
           "--KernelManager.shutdown_wait_time=2"]
    log = open(work / "jupyter.log", "w")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True, cwd=str(root_dir))
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with {proc.returncode}: "
                                   f"{(work / 'jupyter.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"jupyter lab did not answer in {start_timeout:.0f} s: "
                                   f"{(work / 'jupyter.log').read_text()[-2000:]}")
            time.sleep(0.3)
        yield base, token, proc
    finally:
        _shutdown_kernels(base, token)
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(timeout=10)
        log.close()
        sweep(str(work) + os.sep)


def _shutdown_kernels(base: str, token: str) -> None:
    """Ask the server to shut its kernels down (they run in their own sessions, outside its process group)."""
    try:
        with urllib.request.urlopen(f"{base}/api/kernels?token={token}", timeout=5) as r:
            kernels = json.loads(r.read())
        for k in kernels:
            req = urllib.request.Request(f"{base}/api/kernels/{k['id']}?token={token}", method="DELETE")
            urllib.request.urlopen(req, timeout=15).close()
    except OSError:
        pass


def launch_chromium(playwright, executable: Path, user_data_dir: Path):
    """A persistent headless Chromium context on a fresh profile folder (Playwright never downloads one)."""
    return playwright.chromium.launch_persistent_context(
        str(user_data_dir), executable_path=str(executable), headless=True, args=CHROMIUM_FLAGS,
        chromium_sandbox=False, viewport={"width": 1400, "height": 1000}, timeout=120_000)
