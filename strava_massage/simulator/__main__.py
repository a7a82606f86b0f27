"""Run the Strava simulator until Ctrl-C: python -m strava_massage.simulator [--port P]."""

from __future__ import annotations

import argparse
import logging
import threading

from .server import Simulator
from .state import DEFAULT_CLIENT_SECRET


def main(argv: list[str] | None = None) -> None:
    """Parse options, serve, and wait for Ctrl-C."""
    parser = argparse.ArgumentParser(description="Local stand-in for Strava's API and OAuth.")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (0: any free)")
    parser.add_argument("--client-id", type=int, default=12345, help="application client id")
    parser.add_argument("--client-secret", default=DEFAULT_CLIENT_SECRET, help="application secret")
    parser.add_argument(
        "--athlete-limit",
        type=int,
        default=None,
        help="connected athletes allowed (default: no cap)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    sim = Simulator(args.port, client_id=args.client_id, client_secret=args.client_secret)
    sim.athlete_limit = args.athlete_limit
    with sim:
        print(f"Strava simulator listening on {sim.url} (client id {sim.client_id})", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            print("stopping")


if __name__ == "__main__":
    main()
