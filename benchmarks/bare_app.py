"""The intake's baseline: a Flask endpoint that reads the JSON body and answers, nothing else."""

from __future__ import annotations

from flask import Flask, Response, jsonify, request


def create_app() -> Flask:
    """A bare app with the webhook's path and answer, and a health check to wait on."""
    app = Flask(__name__)

    @app.post("/webhooks/strava/<secret>")
    def receive(secret: str) -> tuple[Response, int]:
        request.get_json()
        return jsonify(status="received"), 200

    @app.get("/healthz")
    def healthz() -> tuple[str, int]:
        return "ok", 200

    return app
