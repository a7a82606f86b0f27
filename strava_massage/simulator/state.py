"""In-memory state of the Strava simulator: athletes, activities, tokens, webhooks, limits."""

from __future__ import annotations

import copy
import http
import logging
import random
import re
import secrets
import threading
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import requests

log = logging.getLogger(__name__)

JSON = dict[str, Any]

#: Every scope Strava knows, in the order the approval page lists them.
SCOPES: dict[str, str] = {
    "read": "See your public profile and segments (always granted)",
    "read_all": "See your private routes, segments and events",
    "profile:read_all": "See your whole profile, including private details",
    "profile:write": "Change your profile, weight and FTP",
    "activity:read": "See your activities that are visible to everyone or followers",
    "activity:read_all": "See all your activities, private ones included",
    "activity:write": "Change your activities: title, description, type and other details",
}

# Legacy `type` for the sport types whose type is a different word; the rest are identical.
_TYPE_OF_SPORT = {
    "TrailRun": "Run",
    "MountainBikeRide": "Ride",
    "GravelRide": "Ride",
    "EMountainBikeRide": "EBikeRide",
}

# SummaryActivity drops these DetailedActivity fields (compare the swagger examples).
_DETAIL_ONLY = frozenset(
    {
        "description", "private_note", "calories", "segment_efforts", "splits_metric", "laps",
        "gear", "partner_brand_tag", "photos", "highlighted_kudosers", "hide_from_home",
        "embed_token", "segment_leaderboard_opt_out", "leaderboard_opt_out",
    }
)  # fmt: skip

_SUMMARY_ATHLETE = (
    "id", "username", "resource_state", "firstname", "lastname", "bio", "city", "state",
    "country", "sex", "premium", "summit", "created_at", "updated_at", "badge_type_id",
    "weight", "profile_medium", "profile", "friend", "follower",
)  # fmt: skip

# Not a secret: the simulator's application credentials are meant to be known by tests.
DEFAULT_CLIENT_SECRET = "sim-secret"  # noqa: S105

_TZ_LABEL = re.compile(r"\(GMT([+-])(\d\d):(\d\d)\)\s*(\S*)")


class FaultError(Exception):
    """An error answered as a Strava Fault body: {"message", "errors": [...]}."""

    def __init__(self, status: int, message: str, resource: str, field: str, code: str) -> None:
        super().__init__(f"{status} {message}: {resource}.{field} {code}")
        self.status = status
        self.body: JSON = {
            "message": message,
            "errors": [{"resource": resource, "field": field, "code": code}],
        }


class NoSubscriptionError(RuntimeError):
    """Raised by fire_event when no push subscription exists to deliver to."""


def auth_error(field: str = "access_token", code: str = "invalid") -> FaultError:
    """Strava's 401 for a bad token or a missing permission."""
    resource = "Athlete" if field == "access_token" else "AccessToken"
    return FaultError(401, "Authorization Error", resource, field, code)


def not_found(resource: str) -> FaultError:
    """Strava's 404 for a record that does not exist or is not visible to the caller."""
    return FaultError(404, "Record Not Found", resource, "id", "not found")


def iso_z(moment: datetime) -> str:
    """Format like Strava: seconds precision with a trailing Z (also used for local times)."""
    return moment.replace(tzinfo=None, microsecond=0).isoformat() + "Z"


def _zone(label: str) -> tzinfo:
    """The zone named in a Strava label, falling back to the label's fixed GMT offset."""
    match = _TZ_LABEL.match(label)
    if not match:
        return UTC
    sign, hours, minutes, name = match.groups()
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        offset = timedelta(hours=int(hours), minutes=int(minutes))
        return timezone(-offset if sign == "-" else offset)


def _start_times(start_local: datetime | str | None, label: str) -> tuple[datetime, datetime]:
    """Return (local wall time, UTC instant); naive input is local wall time, as on Strava."""
    zone = _zone(label)
    if start_local is None:
        moment = datetime.now(UTC).astimezone(zone)
    else:
        if isinstance(start_local, str):
            # A trailing Z on start_date_local means local time, not UTC (Strava's convention).
            start_local = datetime.fromisoformat(start_local.removesuffix("Z"))
        if start_local.tzinfo is None:
            moment = start_local.replace(tzinfo=zone)
        else:
            moment = start_local.astimezone(zone)
    moment = moment.replace(microsecond=0)
    return moment, moment.astimezone(UTC)


def _as_bool(value: Any) -> bool:
    """Accept JSON booleans and the "true"/"false" strings that form bodies carry."""
    return value.lower() in ("true", "1", "yes") if isinstance(value, str) else bool(value)


@dataclass(frozen=True)
class Call:
    """One request the simulator answered."""

    method: str
    path: str
    status: int
    athlete_id: int | None
    time: float

    def to_json(self) -> JSON:
        """Plain dict for the control API."""
        return asdict(self)


@dataclass
class _Grant:
    """What a code, refresh token or access token stands for."""

    athlete_id: int
    scopes: frozenset[str]
    expires_at: float = 0.0
    revoked: bool = False


class SimState:
    """Everything the simulator knows, in memory and guarded by one re-entrant lock."""

    def __init__(
        self,
        client_id: int = 12345,
        client_secret: str = DEFAULT_CLIENT_SECRET,
        token_lifetime: int = 21600,
    ) -> None:
        """Start empty, with Strava's default rate limits and no faults."""
        self.client_id = client_id
        self.client_secret = client_secret
        self.token_lifetime = token_lifetime
        self.reject_private_note = False
        # Answer 200 to a PUT of `private_note` but keep nothing, as Strava may for a field
        # it does not document.
        self.ignore_private_note = False
        # Standard tier: at most this many connected athletes (None: no cap). The next new
        # one is refused at the token exchange with Strava's 403.
        self.athlete_limit: int | None = None
        # The app's registered "Authorization Callback Domain": redirect_uri must be on it
        # (the domain itself or a subdomain).
        self.callback_domains: tuple[str, ...] = ("127.0.0.1", "localhost")
        # A refresh while the access token has longer than this left returns the same pair.
        self.refresh_same_within = 3600
        # Seconds between Strava's attempts at an event the callback did not take (about two
        # minutes on Strava; tests set it short).
        self.event_retry_delay = 120.0
        self.timeout_delay = 3.0
        self.latency = 0.0  # seconds every /api/v3 answer waits before it is handled
        self.oauth_down = False  # when True, token exchange, refresh and deauthorize answer 503
        self.lock = threading.RLock()
        self._athletes: dict[int, JSON] = {}
        self._activities: dict[int, JSON] = {}
        self._start_ts: dict[int, float] = {}
        self._next_athlete = 1001
        self._next_activity = 10_000_000_001
        self._codes: dict[str, _Grant] = {}
        self._access: dict[str, _Grant] = {}
        self._refresh: dict[str, _Grant] = {}
        self._refresh_counts: dict[int, int] = {}
        self._pairs: dict[str, str] = {}  # refresh token -> the access token issued with it
        self._issued: list[str] = []
        self._subscriptions: dict[int, JSON] = {}
        self._next_subscription = 1
        self._calls: list[Call] = []
        self._limits = {"overall": [200, 2000], "read": [100, 1000]}
        self._usage = {"overall": [0, 0], "read": [0, 0]}
        self.window_seconds = 900
        self._windows = (-1, -1)
        self.clear_faults()

    # -- athletes ---------------------------------------------------------------------------

    def create_athlete(
        self,
        firstname: str = "Ada",
        lastname: str = "Runner",
        measurement_preference: Literal["feet", "meters"] = "feet",
        athlete_id: int | None = None,
        country: str | None = None,
    ) -> JSON:
        """Add an athlete (DetailedAthlete fields) and return a copy of it.

        The country, unless given, agrees with the preference (a summary athlete shows only
        the country): the United Kingdom for feet, Ireland for meters.
        """
        place = ("London", "England", "United Kingdom")
        if measurement_preference == "meters":
            place = ("Dublin", "Leinster", "Ireland")
        if country is not None:
            place = (place[0], place[1], country)
        with self.lock:
            if athlete_id is None:
                athlete_id = self._next_athlete
            if athlete_id in self._athletes:
                raise ValueError(f"athlete {athlete_id} already exists")
            self._next_athlete = max(self._next_athlete, athlete_id + 1)
            now = iso_z(datetime.now(UTC))
            self._athletes[athlete_id] = {
                "id": athlete_id, "username": f"{firstname}_{lastname}_{athlete_id}".lower(),
                "resource_state": 3, "firstname": firstname, "lastname": lastname, "bio": "",
                "city": place[0], "state": place[1], "country": place[2], "sex": None,
                "premium": False, "summit": False, "created_at": now, "updated_at": now,
                "badge_type_id": 0, "weight": None,
                "profile_medium": "avatar/athlete/medium.png",
                "profile": "avatar/athlete/large.png",
                "friend": None, "follower": None, "follower_count": 0, "friend_count": 0,
                "mutual_friend_count": 0, "athlete_type": 1, "date_preference": "%m/%d/%Y",
                "measurement_preference": measurement_preference, "clubs": [], "ftp": None,
                "bikes": [],
                "shoes": [{"id": f"g{athlete_id}1", "primary": True, "name": "Road shoes",
                           "resource_state": 2, "distance": 0}],
            }  # fmt: skip
            return copy.deepcopy(self._athletes[athlete_id])

    def athlete(self, athlete_id: int) -> JSON:
        """DetailedAthlete of one athlete; KeyError if unknown."""
        with self.lock:
            return copy.deepcopy(self._athletes[athlete_id])

    def summary_athlete(self, athlete_id: int) -> JSON:
        """SummaryAthlete (resource_state 2), as the token endpoint returns it."""
        with self.lock:
            full = self._athletes[athlete_id]
            return {key: full[key] for key in _SUMMARY_ATHLETE} | {"resource_state": 2}

    def athlete_for(self, athlete_id: int, scopes: frozenset[str]) -> JSON:
        """GET /athlete: the detailed athlete only to a profile:read_all token, else the summary."""
        if "profile:read_all" in scopes:
            return self.athlete(athlete_id)
        return self.summary_athlete(athlete_id)

    def connected_athletes(self) -> set[int]:
        """Athletes who authorized the app and have not revoked it (a live refresh token)."""
        with self.lock:
            return {grant.athlete_id for grant in self._refresh.values() if not grant.revoked}

    def athletes(self) -> list[JSON]:
        """All athletes, oldest first."""
        with self.lock:
            return [copy.deepcopy(a) for a in self._athletes.values()]

    # -- activities -------------------------------------------------------------------------

    def create_activity(
        self,
        athlete_id: int,
        *,
        sport_type: str = "Run",
        distance: float = 10000.0,
        moving_time: int = 3000,
        start_date_local: datetime | str | None = None,
        timezone: str = "(GMT+00:00) Europe/London",
        workout_type: int | None = None,
        name: str = "Morning Run",
        description: str = "",
        private: bool = False,
        fire: bool = True,
        activity_id: int | None = None,
        **extra: Any,
    ) -> JSON:
        """Store an activity (DetailedActivity fields; `extra` overrides any) and announce it."""
        local, utc = _start_times(start_date_local, timezone)
        with self.lock:
            if athlete_id not in self._athletes:
                raise KeyError(f"unknown athlete {athlete_id}")
            if activity_id is None:
                activity_id = self._next_activity
            if activity_id in self._activities:
                raise ValueError(f"activity {activity_id} already exists")
            self._next_activity = max(self._next_activity, activity_id + 1)
            speed = round(distance / moving_time, 3) if moving_time else 0.0
            activity: JSON = {
                "id": activity_id, "resource_state": 3, "external_id": f"sim-{activity_id}.fit",
                "upload_id": activity_id + 5_000_000_000,
                "athlete": {"id": athlete_id, "resource_state": 1},
                "name": name, "distance": float(distance), "moving_time": moving_time,
                "elapsed_time": moving_time + moving_time // 20, "total_elevation_gain": 12.0,
                "type": _TYPE_OF_SPORT.get(sport_type, sport_type), "sport_type": sport_type,
                "workout_type": workout_type, "start_date": iso_z(utc),
                "start_date_local": iso_z(local), "timezone": timezone,
                "utc_offset": int((local.utcoffset() or timedelta()).total_seconds()),
                "start_latlng": [], "end_latlng": [], "location_city": None,
                "location_state": None, "location_country": "United Kingdom",
                "achievement_count": 0, "kudos_count": 0, "comment_count": 0,
                "athlete_count": 1, "photo_count": 0,
                "map": {"id": f"a{activity_id}", "polyline": "", "summary_polyline": "",
                        "resource_state": 3},
                "trainer": False, "commute": False, "manual": False, "private": private,
                "visibility": "only_me" if private else "everyone", "flagged": False,
                "gear_id": None, "from_accepted_tag": False, "average_speed": speed,
                "max_speed": round(speed * 1.4, 3), "average_cadence": 84.0,
                "has_heartrate": False, "elev_high": 30.0, "elev_low": 18.0, "pr_count": 0,
                "total_photo_count": 0, "has_kudoed": False, "suffer_score": None,
                "description": description, "private_note": "",
                "calories": round(distance / 1000 * 65, 1), "segment_efforts": [],
                "splits_metric": [], "laps": [], "gear": None, "partner_brand_tag": None,
                "photos": {"primary": None, "count": 0}, "highlighted_kudosers": [],
                "hide_from_home": False, "device_name": "Strava Simulator",
                "embed_token": secrets.token_hex(20), "segment_leaderboard_opt_out": False,
                "leaderboard_opt_out": False,
            }  # fmt: skip
            activity.update(extra)
            self._activities[activity_id] = activity
            self._start_ts[activity_id] = utc.timestamp()
            result = copy.deepcopy(activity)
        if fire:
            self._announce("activity", activity_id, "create", athlete_id, {})
        return result

    def activity(self, activity_id: int) -> JSON:
        """The stored activity (DetailedActivity); KeyError if unknown."""
        with self.lock:
            return copy.deepcopy(self._activities[activity_id])

    def update_activity(self, activity_id: int, fire: bool = True, **fields: Any) -> JSON:
        """Change stored fields as the runner would on strava.com; fire title/type/private news."""
        with self.lock:
            activity = self._activities[activity_id]
            updates = self._apply(activity, fields)
            owner = int(activity["athlete"]["id"])
            result = copy.deepcopy(activity)
        if fire and updates:
            self._announce("activity", activity_id, "update", owner, updates)
        return result

    def delete_activity(self, activity_id: int, fire: bool = True) -> None:
        """Remove an activity and announce the deletion."""
        with self.lock:
            owner = int(self._activities.pop(activity_id)["athlete"]["id"])
            self._start_ts.pop(activity_id, None)
        if fire:
            self._announce("activity", activity_id, "delete", owner, {})

    @staticmethod
    def _apply(activity: JSON, fields: JSON) -> dict[str, str]:
        """Write fields into an activity and return the changes Strava would put in `updates`."""
        if "type" in fields and "sport_type" not in fields:
            fields = fields | {"sport_type": fields["type"]}
        before = (activity["name"], activity["type"], activity["private"])
        for key, value in fields.items():
            if key == "id":
                continue
            activity[key] = value
        if "sport_type" in fields:
            activity["type"] = _TYPE_OF_SPORT.get(activity["sport_type"], activity["sport_type"])
        if "private" in fields:
            activity["visibility"] = "only_me" if activity["private"] else "everyone"
        updates: dict[str, str] = {}
        if activity["name"] != before[0]:
            updates["title"] = activity["name"]
        if activity["type"] != before[1]:
            updates["type"] = activity["type"]
        if activity["private"] != before[2]:
            updates["private"] = "true" if activity["private"] else "false"
        return updates

    def _visible(self, athlete_id: int, scopes: frozenset[str], activity_id: int) -> JSON:
        """The activity if this token may see it, else Strava's 404."""
        activity = self._activities.get(activity_id)
        if activity is None or activity["athlete"]["id"] != athlete_id:
            raise not_found("Activity")
        if activity["private"] and "activity:read_all" not in scopes:
            raise not_found("Activity")
        return activity

    @staticmethod
    def _need_read(scopes: frozenset[str]) -> None:
        """Reading activities needs activity:read or activity:read_all, as on Strava."""
        if not scopes & {"activity:read", "activity:read_all"}:
            raise auth_error("activity:read_permission", "missing")

    def get_activity_for(self, athlete_id: int, scopes: frozenset[str], activity_id: int) -> JSON:
        """GET /activities/{id} on behalf of a token."""
        with self.lock:
            self._need_read(scopes)
            return copy.deepcopy(self._visible(athlete_id, scopes, activity_id))

    def put_activity_for(
        self, athlete_id: int, scopes: frozenset[str], activity_id: int, body: JSON
    ) -> tuple[JSON, dict[str, str]]:
        """PUT /activities/{id}: returns the activity and the updates an event should carry."""
        with self.lock:
            activity = self._activities.get(activity_id)
            if activity is None or activity["athlete"]["id"] != athlete_id:
                raise not_found("Activity")
            if "activity:write" not in scopes:
                raise auth_error("activity:write_permission", "missing")
            if "private_note" in body and self.reject_private_note:
                raise FaultError(400, "Bad Request", "Activity", "private_note", "invalid")
            if self.ignore_private_note:
                body = {k: v for k, v in body.items() if k != "private_note"}
            fields: JSON = {}
            for key in ("name", "description", "private_note", "sport_type", "type", "gear_id"):
                if key in body:
                    fields[key] = None if body[key] is None else str(body[key])
            for key in ("commute", "trainer", "hide_from_home"):
                if key in body:
                    fields[key] = _as_bool(body[key])
            if fields.get("gear_id") == "none":  # Strava's way of saying "no gear"
                fields["gear_id"] = None
            updates = self._apply(activity, fields)
            return copy.deepcopy(activity), updates

    def list_activities_for(
        self,
        athlete_id: int,
        scopes: frozenset[str],
        before: int | None,
        after: int | None,
        page: int,
        per_page: int,
    ) -> list[JSON]:
        """GET /athlete/activities: SummaryActivity list, newest first.

        Like Strava, a query with `after` but no `before` comes back oldest first.
        """
        with self.lock:
            self._need_read(scopes)
            chosen = [
                aid
                for aid, act in self._activities.items()
                if act["athlete"]["id"] == athlete_id
                and (not act["private"] or "activity:read_all" in scopes)
                and (before is None or self._start_ts[aid] < before)
                and (after is None or self._start_ts[aid] > after)
            ]
            ascending = after is not None and before is None
            chosen.sort(key=lambda aid: (self._start_ts[aid], aid), reverse=not ascending)
            window = chosen[(page - 1) * per_page : page * per_page]
            return [self._summary(self._activities[aid]) for aid in window]

    @staticmethod
    def _summary(activity: JSON) -> JSON:
        """SummaryActivity view of a stored activity."""
        summary = {k: copy.deepcopy(v) for k, v in activity.items() if k not in _DETAIL_ONLY}
        summary["resource_state"] = 2
        summary["map"] = {
            "id": activity["map"]["id"],
            "summary_polyline": activity["map"]["summary_polyline"],
            "resource_state": 2,
        }
        return summary

    # -- OAuth ------------------------------------------------------------------------------

    def check_client(self, client_id: Any, client_secret: Any) -> None:
        """401 unless these are the application's credentials."""
        if str(client_id) != str(self.client_id):
            raise FaultError(401, "Authorization Error", "Application", "client_id", "invalid")
        if not secrets.compare_digest(str(client_secret), self.client_secret):
            raise FaultError(401, "Authorization Error", "Application", "client_secret", "invalid")

    def issue_code(self, athlete_id: int, scopes: frozenset[str]) -> str:
        """A single-use authorization code, valid for ten minutes."""
        code = secrets.token_hex(20)
        with self.lock:
            self._codes[code] = _Grant(athlete_id, scopes, time.time() + 600)
        return code

    def _tokens(self, grant: _Grant) -> JSON:
        """Issue a fresh access/refresh token pair for a grant."""
        access, refresh = secrets.token_hex(20), secrets.token_hex(20)
        self._issued += [access, refresh]
        expires_at = int(time.time()) + self.token_lifetime
        self._access[access] = _Grant(grant.athlete_id, grant.scopes, expires_at)
        self._refresh[refresh] = _Grant(grant.athlete_id, grant.scopes)
        self._pairs[refresh] = access
        return {
            "token_type": "Bearer",
            "expires_at": expires_at,
            "expires_in": self.token_lifetime,
            "refresh_token": refresh,
            "access_token": access,
        }

    def exchange_code(self, client_id: Any, client_secret: Any, code: str) -> JSON:
        """grant_type=authorization_code: tokens plus the SummaryAthlete; codes work once."""
        self.check_client(client_id, client_secret)
        with self.lock:
            grant = self._codes.pop(code, None)
            if grant is None or grant.expires_at < time.time() or grant.revoked:
                raise FaultError(400, "Bad Request", "AuthorizationCode", "code", "invalid")
            connected = self.connected_athletes()
            limit = self.athlete_limit
            if limit is not None and grant.athlete_id not in connected and len(connected) >= limit:
                raise FaultError(403, "Forbidden", "Application", "athlete_limit", "exceeded")
            return self._tokens(grant) | {"athlete": self.summary_athlete(grant.athlete_id)}

    def refresh(self, client_id: Any, client_secret: Any, refresh_token: str) -> JSON:
        """grant_type=refresh_token: rotates the refresh token, so the old one dies here."""
        self.check_client(client_id, client_secret)
        with self.lock:
            grant = self._refresh.get(refresh_token)
            if grant is None or grant.revoked:
                raise FaultError(400, "Bad Request", "RefreshToken", "refresh_token", "invalid")
            self._refresh_counts[grant.athlete_id] = self.refresh_count(grant.athlete_id) + 1
            # Like Strava: while the access token has long to live, the same pair comes back.
            access = self._pairs.get(refresh_token, "")
            current = self._access.get(access)
            left = current.expires_at - time.time() if current and not current.revoked else 0
            if left > self.refresh_same_within:
                assert current is not None
                return {
                    "token_type": "Bearer",
                    "expires_at": int(current.expires_at),
                    "expires_in": int(left),
                    "refresh_token": refresh_token,
                    "access_token": access,
                }
            del self._refresh[refresh_token]
            self._pairs.pop(refresh_token, None)
            return self._tokens(grant)

    def issued_secrets(self) -> list[str]:
        """Every access and refresh token handed out so far (tests search logs for them)."""
        with self.lock:
            return list(self._issued)

    def refresh_count(self, athlete_id: int) -> int:
        """How many refreshes this athlete's tokens went through."""
        with self.lock:
            return self._refresh_counts.get(athlete_id, 0)

    def athlete_of_token(self, token: str) -> int | None:
        """The athlete of a live access token or refresh token, if it is one (for revoke)."""
        with self.lock:
            grant = self._access.get(token) or self._refresh.get(token)
            if grant is None or grant.revoked:
                return None
            if token in self._access and grant.expires_at <= time.time():
                return None
            return grant.athlete_id

    def check_redirect_uri(self, redirect_uri: str | None) -> str:
        """The redirect URI if its host is on the app's callback domain, else Strava's 400."""
        host = (urlsplit(redirect_uri or "").hostname or "").lower()
        if not host or not any(
            host == domain or host.endswith("." + domain) for domain in self.callback_domains
        ):
            raise FaultError(400, "Bad Request", "Application", "redirect_uri", "invalid")
        return str(redirect_uri)

    def check_access_token(self, token: str | None) -> tuple[int, frozenset[str]]:
        """(athlete_id, scopes) of a live access token, else Strava's 401."""
        with self.lock:
            grant = self._access.get(token or "")
            if grant is None or grant.revoked or grant.expires_at <= time.time():
                raise auth_error()
            return grant.athlete_id, grant.scopes

    def expire_tokens(self, athlete_id: int) -> int:
        """Make this athlete's access tokens expired now; returns how many there were."""
        with self.lock:
            mine = [g for g in self._access.values() if g.athlete_id == athlete_id]
            for grant in mine:
                grant.expires_at = min(grant.expires_at, time.time() - 1)
            return len(mine)

    def revoke_athlete(self, athlete_id: int) -> None:
        """Kill every code and token of an athlete (no event)."""
        with self.lock:
            for store in (self._codes, self._access):
                for grant in store.values():
                    if grant.athlete_id == athlete_id:
                        grant.revoked = True
            self._refresh = {t: g for t, g in self._refresh.items() if g.athlete_id != athlete_id}
            self._pairs = {r: a for r, a in self._pairs.items() if r in self._refresh}

    def deauthorize_athlete(self, athlete_id: int, fire: bool = True) -> None:
        """The runner revokes access on strava.com: tokens die, then the event is delivered."""
        self.revoke_athlete(athlete_id)
        if fire:
            self._announce("athlete", athlete_id, "update", athlete_id, {"authorized": "false"})

    # -- push subscriptions and events ------------------------------------------------------

    def create_subscription(
        self, client_id: Any, client_secret: Any, callback_url: str, verify_token: str
    ) -> JSON:
        """Validate the callback with Strava's GET handshake, then store the subscription."""
        self.check_client(client_id, client_secret)
        exists = FaultError(400, "Bad Request", "PushSubscription", "", "already exists")
        with self.lock:
            if self._subscriptions:
                raise exists
        # The handshake runs outside the lock: the callback may be slow or call us back.
        challenge = secrets.token_urlsafe(16)
        params = {
            "hub.mode": "subscribe",
            "hub.challenge": challenge,
            "hub.verify_token": verify_token,
        }
        try:
            answer = requests.get(callback_url, params=params, timeout=2)
            echoed = answer.json() if answer.status_code == 200 else None
        except (requests.RequestException, ValueError):
            echoed = None
        if not isinstance(echoed, dict) or echoed.get("hub.challenge") != challenge:
            raise FaultError(
                400, "Bad Request", "PushSubscription", "callback url",
                "GET to callback URL does not return 200",
            )  # fmt: skip
        with self.lock:
            if self._subscriptions:
                raise exists
            now = iso_z(datetime.now(UTC))
            sub_id = self._next_subscription
            self._next_subscription += 1
            self._subscriptions[sub_id] = {
                "id": sub_id, "resource_state": 2, "application_id": self.client_id,
                "callback_url": callback_url, "created_at": now, "updated_at": now,
            }  # fmt: skip
            return dict(self._subscriptions[sub_id])

    def list_subscriptions(self, client_id: Any, client_secret: Any) -> list[JSON]:
        """The application's subscriptions (zero or one)."""
        self.check_client(client_id, client_secret)
        with self.lock:
            return [dict(s) for s in self._subscriptions.values()]

    def delete_subscription(self, sub_id: int, client_id: Any, client_secret: Any) -> None:
        """Drop a subscription; 404 if there is no such id."""
        self.check_client(client_id, client_secret)
        with self.lock:
            if self._subscriptions.pop(sub_id, None) is None:
                raise not_found("PushSubscription")

    @property
    def subscription(self) -> JSON | None:
        """The current subscription, if any."""
        with self.lock:
            return next((dict(s) for s in self._subscriptions.values()), None)

    def fire_event(
        self,
        object_type: str,
        object_id: int,
        aspect_type: str,
        owner_id: int,
        updates: dict[str, str] | None = None,
        event_time: int | None = None,
        subscription_id: int | None = None,
        retries: bool = False,
    ) -> list[int]:
        """POST one event to the callback; returns each attempt's status (0 = no answer)."""
        sub = self.subscription
        if sub is None:
            raise NoSubscriptionError("no push subscription exists: create one first")
        body = {
            "aspect_type": aspect_type,
            "event_time": int(time.time()) if event_time is None else event_time,
            "object_id": object_id,
            "object_type": object_type,
            "owner_id": owner_id,
            "subscription_id": sub["id"] if subscription_id is None else subscription_id,
            "updates": updates or {},
        }
        statuses: list[int] = []
        # Strava makes three attempts in total when the callback does not answer 200 in time,
        # about two minutes apart (event_retry_delay).
        for attempt in range(3 if retries else 1):
            if attempt:
                time.sleep(self.event_retry_delay)
            try:
                statuses.append(
                    requests.post(sub["callback_url"], json=body, timeout=2).status_code
                )
            except requests.RequestException:
                statuses.append(0)
            if statuses[-1] == 200:
                break
        return statuses

    def post_raw(self, body: bytes, headers: dict[str, str]) -> requests.Response:
        """Send arbitrary bytes to the callback URL, for tests of malformed events."""
        sub = self.subscription
        if sub is None:
            raise NoSubscriptionError("no push subscription exists: create one first")
        return requests.post(sub["callback_url"], data=body, headers=headers, timeout=2)

    def _announce(
        self, object_type: str, object_id: int, aspect: str, owner: int, updates: dict[str, str]
    ) -> None:
        """Deliver an event if someone subscribed; with no subscription it is only logged.

        As on Strava, an attempt the callback does not answer 200 is made again, twice, about
        two minutes apart (event_retry_delay), with the same body; those wait in a thread.
        """
        event_time = int(time.time())
        args = (object_type, object_id, aspect, owner, updates, event_time)
        try:
            statuses = self.fire_event(*args)
        except NoSubscriptionError:
            log.info("no subscription, %s %s %s not delivered", object_type, object_id, aspect)
            return
        log.info("event %s %s %s delivered: %s", object_type, object_id, aspect, statuses)
        if statuses != [200]:
            threading.Thread(target=self._redeliver, args=args, daemon=True).start()

    def _redeliver(self, *args: Any) -> None:
        """The two later attempts of an event whose first delivery failed."""
        for _ in range(2):
            time.sleep(self.event_retry_delay)
            try:
                statuses = self.fire_event(*args)
            except NoSubscriptionError:
                return
            log.info("event %s %s %s delivered again: %s", *args[:3], statuses)
            if statuses == [200]:
                return

    def announce_later(
        self, object_type: str, object_id: int, aspect: str, owner: int, updates: dict[str, str]
    ) -> None:
        """Deliver an event from a background thread, as Strava does after an API change."""
        args = (object_type, object_id, aspect, owner, updates)
        threading.Thread(target=self._announce, args=args, daemon=True).start()

    # -- rate limits ------------------------------------------------------------------------

    def set_rate_limits(
        self,
        short: int | None = None,
        daily: int | None = None,
        read_short: int | None = None,
        read_daily: int | None = None,
        window_seconds: int | None = None,
    ) -> None:
        """Change limits (only those given); a new window_seconds starts a fresh short window."""
        with self.lock:
            for bucket, index, value in (
                ("overall", 0, short), ("overall", 1, daily),
                ("read", 0, read_short), ("read", 1, read_daily),
            ):  # fmt: skip
                if value is not None:
                    self._limits[bucket][index] = value
            if window_seconds is not None:
                self.window_seconds = window_seconds

    def count_api_request(self) -> tuple[dict[str, str], bool]:
        """Count one /api/v3 request; returns the rate headers and whether a limit is exceeded."""
        with self.lock:
            now = time.time()
            windows = (int(now // self.window_seconds), int(now // 86400))
            for index in (0, 1):
                if windows[index] != self._windows[index]:
                    for usage in self._usage.values():
                        usage[index] = 0
            self._windows = windows
            for usage in self._usage.values():
                usage[0] += 1
                usage[1] += 1
            exceeded = any(
                self._usage[b][i] > self._limits[b][i] for b in self._usage for i in (0, 1)
            )
            pair = "{0[0]},{0[1]}".format
            headers = {
                "X-RateLimit-Limit": pair(self._limits["overall"]),
                "X-RateLimit-Usage": pair(self._usage["overall"]),
                "X-ReadRateLimit-Limit": pair(self._limits["read"]),
                "X-ReadRateLimit-Usage": pair(self._usage["read"]),
            }
            return headers, exceeded

    # -- fault injection --------------------------------------------------------------------

    def fail_next(self, n: int, status: int = 500, method: str | None = None) -> None:
        """Make the next n /api/v3 requests (of `method`, if given) answer `status`."""
        with self.lock:
            self._fail_next, self._fail_status = n, status
            self._fail_method: str | None = method

    def fail_fraction(
        self, p: float, mode: Literal["500", "timeout"] = "500", seed: int = 0
    ) -> None:
        """Fail a seeded random fraction p of /api/v3 requests, quickly or after timeout_delay."""
        with self.lock:
            self._fail_p, self._fail_mode, self._rng = p, mode, random.Random(seed)

    def clear_faults(self) -> None:
        """Stop injecting failures."""
        with self.lock:
            self._fail_next, self._fail_status = 0, 500
            self._fail_method = None
            self._fail_p, self._fail_mode, self._rng = 0.0, "500", random.Random(0)

    def take_fault(self, method: str = "GET") -> tuple[int, bool] | None:
        """Decide whether this request fails: (status, sleep first) or None."""
        with self.lock:
            wanted = self._fail_method in (None, method)
            if self._fail_next > 0 and wanted:
                self._fail_next -= 1
                return self._fail_status, False
            if self._fail_p > 0 and self._rng.random() < self._fail_p:
                return 500, self._fail_mode == "timeout"
            return None

    @staticmethod
    def injected(status: int) -> FaultError:
        """The Fault answered for an injected failure."""
        try:
            phrase = http.HTTPStatus(status).phrase
        except ValueError:
            phrase = "Error"
        return FaultError(status, phrase, "Simulator", "", "injected failure")

    # -- call log ---------------------------------------------------------------------------

    def record_call(self, method: str, path: str, status: int, athlete_id: int | None) -> None:
        """Append one answered request to the log."""
        with self.lock:
            self._calls.append(Call(method, path, status, athlete_id, time.time()))

    def calls(self, method: str | None = None, path_prefix: str | None = None) -> list[Call]:
        """Logged calls, filtered by method and by whole path segments.

        "/api/v3/activities" matches "/api/v3/activities/42" but "/api/v3/activities/4" does not.
        """
        prefix = path_prefix.rstrip("/") if path_prefix else None
        with self.lock:
            return [
                c
                for c in self._calls
                if (method is None or c.method == method.upper())
                and (prefix is None or c.path == prefix or c.path.startswith(prefix + "/"))
            ]

    def count(self, method: str | None = None, path_prefix: str | None = None) -> int:
        """How many logged calls match (see calls)."""
        return len(self.calls(method, path_prefix))

    def reset_calls(self) -> None:
        """Forget the call log."""
        with self.lock:
            self._calls.clear()
