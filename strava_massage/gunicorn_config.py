"""gunicorn settings for the web process, from the environment (Procfile: `-c python:...`).

Defaults suit a small container (1 CPU, 512 MB): two processes of eight threads. The webhook
intake and the pages wait on the database more than they compute, so threads go further than
processes; a bigger host raises WEB_CONCURRENCY first.
"""

import os

bind = f"0.0.0.0:{os.environ.get('PORT', '5000')}"
worker_class = os.environ.get("WEB_WORKER_CLASS", "gthread")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("WEB_THREADS", "8"))
# Strava wants the webhook answered within 2 s; a request stuck for 30 s is a hung process.
timeout = int(os.environ.get("WEB_TIMEOUT", "30"))
# SIGTERM (a deploy, a scale-down): stop accepting, let requests in flight finish.
graceful_timeout = int(os.environ.get("WEB_GRACEFUL_TIMEOUT", "25"))
keepalive = 5
# Recycle a process now and then, so slow growth in memory can never take the host down.
max_requests = int(os.environ.get("WEB_MAX_REQUESTS", "20000"))
max_requests_jitter = max_requests // 10
accesslog = "-" if os.environ.get("WEB_ACCESS_LOG") == "1" else None
