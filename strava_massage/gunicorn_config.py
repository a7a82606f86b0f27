"""gunicorn settings for the web process, from the environment (Procfile: `-c python:...`).

Defaults suit a small container (1 CPU, 512 MB): two processes of eight threads. The webhook
intake and the pages wait on the database more than they compute, so threads go further than
processes; a bigger host raises WEB_CONCURRENCY first.
"""

import os
import sys


def _whole(name: str, default: int) -> int:
    """A whole-number setting; a wrong one stops gunicorn with one line naming it."""
    value = os.environ.get(name) or str(default)
    try:
        return int(value)
    except ValueError:
        print(f"error: {name} must be a whole number, not {value!r}", file=sys.stderr)
        # SystemExit ends gunicorn quietly; any other exception here shows a traceback.
        raise SystemExit(2) from None


bind = f"0.0.0.0:{_whole('PORT', 5000)}"
worker_class = os.environ.get("WEB_WORKER_CLASS", "gthread")
workers = _whole("WEB_CONCURRENCY", 2)
threads = _whole("WEB_THREADS", 8)
# Strava wants the webhook answered within 2 s; a request stuck for 30 s is a hung process.
timeout = _whole("WEB_TIMEOUT", 30)
# SIGTERM (a deploy, a scale-down): stop accepting, let requests in flight finish.
graceful_timeout = _whole("WEB_GRACEFUL_TIMEOUT", 25)
keepalive = 5
# Recycle a process now and then, so slow growth in memory can never take the host down.
max_requests = _whole("WEB_MAX_REQUESTS", 20000)
max_requests_jitter = max_requests // 10
accesslog = "-" if os.environ.get("WEB_ACCESS_LOG") == "1" else None
# gunicorn 25.1+ opens a control socket, by default in ~/.gunicorn: nothing here uses it (older
# versions ignore the name).
control_socket_disable = True


def on_starting(_server: object) -> None:
    """Check the settings once, before any worker starts: a mistake is one line (exit 2), not
    a traceback from every worker."""
    from strava_massage.config import ConfigError, data_dir, load_config

    try:
        load_config(str(data_dir()))
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
