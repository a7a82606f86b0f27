"""Serving the app with gunicorn from our own command, optionally with the worker inside."""

from __future__ import annotations

from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    """gunicorn driven from code with an already-built app.

    Overrides only gunicorn's documented custom-application hooks, load_config() and load().
    """

    def __init__(self, app: Flask, options: dict[str, Any]) -> None:
        self.application = app
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        """Apply our options to gunicorn's config (those this gunicorn version knows)."""
        for key, value in self.options.items():
            if key in self.cfg.settings:
                self.cfg.set(key, value)

    def load(self) -> Flask:
        """The WSGI app."""
        return self.application


def run_server(
    app: Flask, *, host: str, port: int, threads: int = 8, embedded_worker: bool = False
) -> None:
    """Serve `app` with one gthread gunicorn worker; the queue consumer can run inside it."""
    from strava_massage.worker.queue import make_consumer, start_worker

    consumers: dict[int, Any] = {}

    def post_fork(_server: Any, _worker: Any) -> None:
        # Connections opened by the parent (migrations) must not be shared with the child.
        app.extensions["db"].engine.dispose(close=False)

    def post_worker_init(worker: Any) -> None:
        if embedded_worker:
            consumer = make_consumer(app, workers=app.config["WORKER_THREADS"], embedded=True)
            start_worker(app, consumer)
            consumers[worker.pid] = consumer

    def worker_exit(_server: Any, worker: Any) -> None:
        consumer = consumers.pop(worker.pid, None)
        if consumer is not None:
            consumer.stop(graceful=True)  # running jobs finish; the sweep covers the rest

    options = {
        "bind": f"{host}:{port}",
        "workers": 1,
        "worker_class": "gthread",
        "threads": threads,
        "timeout": 30,
        "graceful_timeout": 30,
        "post_fork": post_fork,
        "post_worker_init": post_worker_init,
        "worker_exit": worker_exit,
        # gunicorn 25.1+ opens a control socket, by default in ~/.gunicorn: nothing here uses it.
        "control_socket_disable": True,
    }
    _Gunicorn(app, options).run()
