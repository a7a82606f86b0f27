"""The worker: the queue, the jobs that turn events into notes, periodic turns."""
