"""Creating and deleting the one Strava webhook subscription, kept in the database."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import delete, select

from strava_massage.models import Subscription


def callback_url(app: Flask) -> str:
    """The URL Strava is given for the subscription: PUBLIC_URL, the webhook's path, the secret.

    The path is the one `webhooks/` serves; WEBHOOK_SECRET is settled by its init_app.
    """
    return f"{app.config['PUBLIC_URL']}/webhooks/strava/{app.config['WEBHOOK_SECRET']}"


def create_subscription(app: Flask, url: str | None = None) -> tuple[int, str]:
    """Ask Strava for the subscription (it calls our handshake) and store its id.

    The callback is `callback_url(app)` unless one is given.
    """
    svc = app.extensions["services"]
    url = url or callback_url(app)
    sub_id = svc.strava.create_subscription(url, app.config["STRAVA_VERIFY_TOKEN"])
    with svc.db.session() as session:
        # One subscription per application: a new one replaces whatever was stored.
        session.execute(delete(Subscription))
        session.add(Subscription(id=sub_id, callback_url=url))
        session.commit()
    return sub_id, url


def delete_subscription(app: Flask) -> int | None:
    """Delete the stored subscription at Strava, then here; its id, or None if there was none."""
    svc = app.extensions["services"]
    with svc.db.session() as session:
        sub_id = session.scalar(select(Subscription.id))
    if sub_id is None:
        remote = svc.strava.list_subscriptions()
        if not remote:
            return None
        sub_id = int(remote[0]["id"])
    svc.strava.delete_subscription(sub_id)
    with svc.db.session() as session:
        session.execute(delete(Subscription))
        session.commit()
    return int(sub_id)
