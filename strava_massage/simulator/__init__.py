"""A local Strava simulator: OAuth, API v3, webhooks, rate limits and fault injection."""

from .app import create_simulator_app
from .server import Simulator
from .state import Call, FaultError, NoSubscriptionError, SimState

__all__ = [
    "Call",
    "FaultError",
    "NoSubscriptionError",
    "SimState",
    "Simulator",
    "create_simulator_app",
]
