"""Serve the simulator over real HTTP on 127.0.0.1 from a background thread."""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Self
from urllib.parse import parse_qs, urlsplit

import requests
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from .app import create_simulator_app
from .state import DEFAULT_CLIENT_SECRET, SimState


class _QuietHandler(WSGIRequestHandler):
    """Request handler that keeps werkzeug's per-request lines out of test output."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Say nothing."""


class Simulator(SimState):
    """A running Strava simulator: the state's methods plus start/stop and `url`."""

    def __init__(
        self,
        port: int = 0,
        *,
        client_id: int = 12345,
        client_secret: str = DEFAULT_CLIENT_SECRET,
        token_lifetime: int = 21600,
        quiet: bool = True,
    ) -> None:
        """Prepare the server; port 0 picks a free port when started."""
        super().__init__(client_id, client_secret, token_lifetime)
        self.port = port
        self.quiet = quiet
        self.app = create_simulator_app(self)
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def state(self) -> SimState:
        """The simulator is its own state; kept for callers that expect `sim.state`."""
        return self

    @property
    def url(self) -> str:
        """Base URL such as http://127.0.0.1:54321 (the server must be started)."""
        if self._server is None:
            raise RuntimeError("simulator is not running: call start() first")
        return f"http://127.0.0.1:{self._server.server_port}"

    def start(self) -> Self:
        """Bind and serve in a daemon thread; returns self for chaining."""
        if self._server is None:
            handler = _QuietHandler if self.quiet else WSGIRequestHandler
            self._server = make_server(
                "127.0.0.1", self.port, self.app, threaded=True, request_handler=handler
            )
            # A short poll interval keeps stop() quick; the default 0.5 s adds up in test suites.
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name="strava-simulator",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and free the port."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            if self._thread is not None:
                self._thread.join(timeout=5)
            self._server = self._thread = None

    def connect_via(
        self,
        service_url: str,
        athlete_id: int,
        granted: list[str] | None = None,
        next_path: str | None = None,
        start: str = "/connect",
        browser: requests.Session | None = None,
    ) -> tuple[requests.Session, requests.Response]:
        """Walk a service's connect flow as a runner would, approving on this simulator.

        Starts at `{service_url}{start}` (e.g. "/connect?clinic=x" from an invite page) in
        `browser` (a new session by default), answers the approval page for `athlete_id` with the
        `granted` scopes (default: all requested), and follows the redirect back. Returns the
        browser-like session (logged in to the service) and the service's final response.
        """
        browser = browser or requests.Session()
        params = {"next": next_path} if next_path is not None else None
        r = browser.get(service_url + start, params=params, allow_redirects=False, timeout=10)
        if r.status_code != 302:
            raise RuntimeError(f"{service_url}{start} answered {r.status_code}, not a redirect")
        query = parse_qs(urlsplit(r.headers["Location"]).query)
        scopes = query["scope"][0]
        form = {
            "client_id": query["client_id"][0],
            "redirect_uri": query["redirect_uri"][0],
            "state": query["state"][0],
            "scope": scopes,
            "athlete_id": str(athlete_id),
            "granted": granted if granted is not None else scopes.split(","),
            "decision": "authorize",
        }
        r = requests.post(
            self.url + "/oauth/authorize", data=form, allow_redirects=False, timeout=10
        )
        if r.status_code != 302:
            raise RuntimeError(f"approval page answered {r.status_code}: {r.text[:200]}")
        return browser, browser.get(r.headers["Location"], timeout=10)

    def __enter__(self) -> Self:
        """Start on entering a with block."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop on leaving it."""
        self.stop()
