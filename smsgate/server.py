"""``smsgate serve``: gunicorn running the app factory, one app (and engine) per worker."""

from __future__ import annotations

import gc
import os
import tempfile
from pathlib import Path
from typing import Any

from gunicorn.app.base import BaseApplication

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: Request threads per worker process (``smsgate serve --threads`` overrides it): while one
#: thread waits for the database another uses the CPU.
DEFAULT_THREADS = 4
#: Seconds gunicorn keeps an idle connection open. A proxy in front must close its idle
#: connections to ``serve`` sooner (deploy/Caddyfile: 1 s), or a request it sends on one just
#: as gunicorn closes it fails.
KEEPALIVE_SECONDS = 2


class _Server(BaseApplication):
    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from .app import create_app

        return create_app()


def default_workers(database_url: str) -> int:
    """One process on SQLite (measured: 2 processes fight over the write lock, p99 1.8 s vs
    0.19 s at saturation, bench/simulate.py); two per core on PostgreSQL."""
    return 1 if database_url.startswith("sqlite") else 2 * (os.cpu_count() or 1)


def prepare_metrics_dir() -> str:
    """A clean directory where every gunicorn process writes its Prometheus counters.

    prometheus_client's multiprocess mode is chosen from ``PROMETHEUS_MULTIPROC_DIR`` when it is
    first imported, so this runs before the app is loaded; the directory is emptied because a
    previous run's files would add a dead run's counts. The variable's own directory is used
    when set (deploy/smsgate-serve.service), else a new temporary one.
    """
    folder = os.environ.get(MULTIPROCESS_ENV, "").strip()
    if folder:
        path = Path(folder)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()
    else:
        folder = tempfile.mkdtemp(prefix="smsgate-metrics-")
    os.environ[MULTIPROCESS_ENV] = folder
    return folder


def _child_exit(_server: object, worker: Any) -> None:
    """gunicorn's hook when a worker process ends: drop its live gauges from the sums."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def _freeze_loaded_app(_worker: object) -> None:
    """gunicorn's hook once a worker has loaded the app: collect what loading left unreachable,
    then move every object still alive (modules, the app, its engine, the grammar: about 190,000
    the collector tracks) to its permanent generation. They live as long as the process; left
    where they are, every full collection walks them all again holding the interpreter lock
    (measured under bench/webhook.py: about 150 ms a pass, every request of the process waiting
    behind it; about 5 ms frozen)."""
    gc.collect()
    gc.freeze()


def gunicorn_options(host: str, port: int, workers: int, threads: int = DEFAULT_THREADS) -> dict[str, Any]:
    """The gunicorn settings of ``smsgate serve``; ``bench/webhook.py`` runs its bare baseline
    endpoint under the very same ones, so the comparison measures the app, not the server."""
    return {
        "bind": f"{host}:{port}",
        "workers": workers,
        "threads": threads,
        "worker_class": "gthread",
        "timeout": 30,
        # Seconds an idle kept-alive connection stays open (gunicorn's default, stated because
        # deploy/Caddyfile closes its idle connections to us sooner, and must keep doing so).
        "keepalive": KEEPALIVE_SECONDS,
        "accesslog": None,
    }


def serve_options(host: str, port: int, workers: int, threads: int = DEFAULT_THREADS) -> dict[str, Any]:
    """``gunicorn_options`` plus the hooks only ``smsgate serve`` runs."""
    hooks = {"child_exit": _child_exit, "post_worker_init": _freeze_loaded_app}
    return gunicorn_options(host, port, workers, threads) | hooks


def run(host: str, port: int, workers: int, threads: int = DEFAULT_THREADS) -> None:
    prepare_metrics_dir()
    _Server(serve_options(host, port, workers, threads)).run()
