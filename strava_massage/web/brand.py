"""Strava's official brand assets: served from the instance folder when the operator put them there.

Strava's brand guidelines ask for its "Connect with Strava" button and "Powered by Strava" logo
unmodified, from its own files; the project does not ship them (they are Strava's). An operator
saves them in `<instance>/brand/` or BRAND_DIR (docs/deploy.md says where to get them); until
then the pages show plain text links, never a drawn imitation.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Flask, abort, current_app, send_from_directory, url_for
from werkzeug.wrappers import Response

from strava_massage.config import DEFAULT_STRAVA_BASE_URL

bp = Blueprint("brand", __name__)

# What the pages use, and the file names (SVG or PNG) an operator saves Strava's assets under.
ASSETS = {"connect": "connect-with-strava", "powered": "powered-by-strava"}
FORMATS = (".svg", ".png")


def brand_dir(app: Flask) -> Path:
    """The documented folder for Strava's official assets: BRAND_DIR, else <instance>/brand."""
    return Path(app.config["BRAND_DIR"])


def asset_file(app: Flask, kind: str) -> str | None:
    """The file name of an official asset that is present, or None."""
    folder = brand_dir(app)
    stem = ASSETS.get(kind)
    if stem is None:
        return None
    return next((stem + ext for ext in FORMATS if (folder / (stem + ext)).is_file()), None)


def brand_asset(kind: str) -> str | None:
    """The URL of an official asset for a template, or None when the operator has not added it."""
    name = asset_file(current_app, kind)
    return url_for("brand.asset", kind=kind) if name else None


def activity_url(activity_id: int) -> str:
    """A run's page on Strava, for the "View on Strava" links the brand guidelines ask for.

    Built from STRAVA_BASE_URL: www.strava.com in production, the simulator in the demo and the
    tests, whose activity ids exist only there.
    """
    base = str(current_app.config.get("STRAVA_BASE_URL") or DEFAULT_STRAVA_BASE_URL)
    return f"{base.rstrip('/')}/activities/{int(activity_id)}"


@bp.get("/brand/<kind>")
def asset(kind: str) -> Response:
    """Serve one of the official assets (only those two names, only from the brand folder)."""
    name = asset_file(current_app, kind)
    if name is None:
        abort(404)
    return send_from_directory(brand_dir(current_app), name, max_age=86400)


def init_app(app: Flask) -> None:
    """Register the asset route and the template helper."""
    app.register_blueprint(bp)
    app.jinja_env.globals["brand_asset"] = brand_asset
    app.jinja_env.globals["strava_activity_url"] = activity_url
