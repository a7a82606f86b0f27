"""The one module that talks to Strava: stravalib behind a small, typed, testable surface.

Every call goes through `StravaAPI`. It sends stravalib's requests to the configured hosts
(stravalib has `https://www.strava.com` built into its URLs: OAuth stays there, the API moves
to its own host), reads the rate-limit headers of every response, and turns Strava's errors
into a few domain exceptions the worker knows how to handle. Only stravalib's public API is
used: a `requests.Session` with a transport adapter is how it is pointed elsewhere.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests
from requests.adapters import HTTPAdapter

from strava_massage.domain.activity import ActivityInfo

# stravalib resets the global warnings filter when imported; keep the application's own.
_saved_filters = list(warnings.filters)
from stravalib import Client, exc  # noqa: E402

warnings.filters[:] = _saved_filters  # type: ignore[index]

log = logging.getLogger(__name__)

STRAVA_HOST = "https://www.strava.com"  # stravalib's host for everything; OAuth stays here
# The API's own host from 4 January 2027 (stravalib issue 737): its base has no /api/v3 prefix.
# A later stravalib may send requests there itself, so they are routed like the others.
STRAVA_API_HOST = "https://api-v3.strava.com"
API_PREFIX = "/api/v3"
DEAUTHORIZE_PATH = "/oauth/deauthorize"
# Strava's revoke endpoint (June 2026 program update; the only way to disconnect from 1 June
# 2027). Path, HTTP Basic client credentials and the `token` field follow stravalib issue 738's
# reading of Strava's authentication page: check this form against Strava's docs before use.
REVOKE_PATH = "/oauth/revoke"
DISCONNECT_MODES = ("deauthorize", "revoke")
# Where Strava's default unit is the mile: its `country` is a name, an ISO code is accepted too.
MILES_COUNTRIES = frozenset(
    {
        "united states", "united states of america", "usa", "us", "u.s.", "u.s.a.",
        "united kingdom", "uk", "gb", "gbr", "great britain", "england", "scotland", "wales",
        "northern ireland", "liberia", "lr", "lbr", "myanmar", "burma", "mm", "mmr",
    }
)  # fmt: skip
LIST_PAGE = 200  # activities per list call, Strava's most


class StravaError(Exception):
    """Base of the domain errors raised by the adapter."""


class NotFound(StravaError):
    """The object does not exist, or this athlete may not see it."""


class Unauthorized(StravaError):
    """The token is invalid, revoked or lacks a scope."""


class Rejected(StravaError):
    """Strava refused the request for good (a 4xx other than 401, 404 and 429)."""


class AthleteLimitReached(Rejected):
    """Strava refused a new athlete: the application is at its athlete capacity."""


class RefreshRefused(Unauthorized):
    """Strava refused the runner's refresh token: the runner revoked the app (or it expired)."""


class TemporaryFailure(StravaError):
    """A 5xx, a timeout or a connection error: worth retrying later."""


class RateLimited(StravaError):
    """The application's request budget is spent until `retry_after` seconds from now."""

    def __init__(self, retry_after: float, message: str = "Strava rate limit reached") -> None:
        super().__init__(f"{message}; retry in {retry_after:.0f} s")
        self.retry_after = retry_after


@dataclass(frozen=True)
class TokenGrant:
    """What Strava's token endpoint returned."""

    access_token: str
    refresh_token: str
    expires_at: int
    athlete_id: int | None = None
    athlete: AthleteInfo | None = None  # the summary athlete of a code exchange, when sent

    def __repr__(self) -> str:
        """Never show the secrets, even in a traceback."""
        return f"TokenGrant(athlete_id={self.athlete_id}, expires_at={self.expires_at})"


@dataclass(frozen=True)
class AthleteInfo:
    """The athlete fields the service keeps."""

    id: int
    units: str  # "mi" or "km"
    # Why those units: "preference" (Strava's measurement_preference), "country" or "default".
    units_source: str = "default"
    country: str | None = None


def athlete_info(athlete: dict[str, Any]) -> AthleteInfo:
    """The id and units of an athlete as Strava sent it (summary or detailed).

    Never a silent guess: the preference when Strava sent it (only to profile:read_all tokens),
    else the country (miles in the few countries that use them), else kilometres; the source
    is kept so the runner can be shown the choice.
    """
    preference = athlete.get("measurement_preference")
    country = str(athlete.get("country") or "").strip() or None
    if preference in ("feet", "meters"):
        units, source = ("mi" if preference == "feet" else "km"), "preference"
    elif country:
        units, source = ("mi" if country.lower() in MILES_COUNTRIES else "km"), "country"
    else:
        units, source = "km", "default"
    return AthleteInfo(int(athlete["id"]), units, source, country)


@dataclass(frozen=True)
class RateStatus:
    """Usage and limits from one response: (15-minute, daily) for each bucket."""

    limit: tuple[int, int]
    usage: tuple[int, int]
    read_limit: tuple[int, int] | None
    read_usage: tuple[int, int] | None
    seen_at: float

    @classmethod
    def from_headers(cls, headers: Any, now: float) -> RateStatus | None:
        """Parse `X-RateLimit-*` and `X-ReadRateLimit-*`; None when absent or malformed."""
        limit, usage = (
            _pair(headers.get("X-RateLimit-Limit")),
            _pair(headers.get("X-RateLimit-Usage")),
        )
        if limit is None or usage is None:
            return None
        read_limit = _pair(headers.get("X-ReadRateLimit-Limit"))
        return cls(limit, usage, read_limit, _pair(headers.get("X-ReadRateLimit-Usage")), now)

    def spent(self) -> tuple[bool, bool]:
        """Whether the (15-minute, daily) budgets are used up, in any bucket."""
        buckets = [(self.limit, self.usage)]
        if self.read_limit and self.read_usage:
            buckets.append((self.read_limit, self.read_usage))
        short = any(u[0] >= lim[0] for lim, u in buckets)
        daily = any(u[1] >= lim[1] for lim, u in buckets)
        return short, daily


def _pair(value: str | None) -> tuple[int, int] | None:
    """Parse Strava's "15min,daily" header value."""
    if not value:
        return None
    try:
        a, b = value.split(",")
        return int(a), int(b)
    except ValueError:
        return None


def seconds_until_reset(now: float, window_seconds: int, daily: bool) -> float:
    """Seconds to the next 15-minute boundary (:00/:15/:30/:45), or to midnight UTC."""
    if daily:
        return 86400 - (now % 86400)
    return window_seconds - (now % window_seconds)


def _activity_info(a: dict[str, Any]) -> ActivityInfo:
    """Reduce an activity as Strava sends it (detailed or summary) to the fields kept.

    Read from the JSON: building stravalib's model of a whole activity cost more than a
    millisecond per call, for the ten fields the service keeps.
    """
    workout_type = a.get("workout_type")
    return ActivityInfo(
        id=int(a["id"]),
        athlete_id=int(a["athlete"]["id"]),
        sport_type=str(a.get("sport_type") or a.get("type") or ""),
        distance_m=float(a.get("distance") or 0.0),
        moving_time_s=int(a.get("moving_time") or 0),
        # Local wall time, though Strava writes it with a "Z": keep it naive.
        start_date_local=dt.datetime.fromisoformat(a["start_date_local"]).replace(tzinfo=None),
        timezone=str(a["timezone"]) if a.get("timezone") else None,
        workout_type=int(workout_type) if workout_type is not None else None,
        description=a.get("description") or "",
        private_note=a.get("private_note"),
    )


class _HostAdapter(HTTPAdapter):
    """Routes stravalib's requests: OAuth to the OAuth base, the API to the API base.

    Mounted on both of Strava's hosts, so whichever stravalib builds (`www.strava.com/api/v3/...`
    today, `api-v3.strava.com/...` in a later release) reaches `api_url`, and OAuth paths
    reach `oauth_base`. It also reads every API answer's rate headers and applies a default
    timeout (stravalib sets none).
    """

    def __init__(
        self,
        oauth_base: str,
        api_url: str,
        timeout: float,
        observe: Callable[[Any], None],
    ) -> None:
        super().__init__(pool_connections=4, pool_maxsize=32)
        self.oauth_base = oauth_base
        self.api_url = api_url
        self.timeout = timeout
        self.observe = observe
        # Told (method, path, status) of every request, for the /metrics counters.
        self.on_call: Callable[[str, str, str], None] | None = None

    def route(self, url: str) -> str:
        """The URL a request for one of Strava's hosts really goes to."""
        for host in (STRAVA_HOST, STRAVA_API_HOST):
            if url.startswith(host) and url[len(host) : len(host) + 1] in ("/", "?", ""):
                path = url[len(host) :]
                if path == API_PREFIX or path.startswith((API_PREFIX + "/", API_PREFIX + "?")):
                    return self.api_url + path[len(API_PREFIX) :]
                return (self.api_url if host == STRAVA_API_HOST else self.oauth_base) + path
        return url

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        """Route the request, apply the timeout, count it and read its rate headers."""
        assert request.url is not None
        request.url = self.route(request.url)
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        path = urlsplit(request.url).path
        try:
            response = super().send(request, **kwargs)
        except requests.Timeout:
            self._count(request, path, "timeout")
            raise
        except requests.ConnectionError:
            self._count(request, path, "connection error")
            raise
        self._count(request, path, str(response.status_code))
        if "/oauth/" not in path:  # OAuth answers carry no rate headers
            self.observe(response.headers)
        return response

    def _count(self, request: requests.PreparedRequest, path: str, status: str) -> None:
        """Tell the metrics about one request."""
        if self.on_call is not None:
            self.on_call(str(request.method), path, status)


def _errors(response: requests.Response | None) -> list[dict[str, Any]]:
    """The `errors` entries of a Strava Fault body (empty when there are none)."""
    if response is None:
        return []
    try:
        body = response.json()
    except ValueError:
        return []
    errors = body.get("errors") if isinstance(body, dict) else None
    if isinstance(errors, dict):
        errors = [errors]
    return [e for e in errors or [] if isinstance(e, dict)]


def _says(response: requests.Response | None, **wanted: str) -> bool:
    """Whether one of the response's errors has these fields (compared without case)."""
    return any(
        all(str(e.get(k, "")).lower() == v.lower() for k, v in wanted.items())
        for e in _errors(response)
    )


class StravaAPI:
    """Strava for this service: the calls it makes, with errors and budget made explicit."""

    def __init__(
        self,
        base_url: str,
        client_id: int | None,
        client_secret: str | None,
        *,
        api_url: str | None = None,
        disconnect: str = "deauthorize",
        timeout: float = 10.0,
        window_seconds: int = 900,
        clock: Any = time.time,
    ) -> None:
        self.base_url = base_url.rstrip("/")  # OAuth: {base}/oauth/...
        self.api_url = (api_url or self.base_url + API_PREFIX).rstrip("/")
        if disconnect not in DISCONNECT_MODES:
            raise ValueError(f"disconnect must be one of {', '.join(DISCONNECT_MODES)}")
        self.disconnect_mode = disconnect
        self.client_id = client_id
        self.client_secret = client_secret
        self.window_seconds = window_seconds
        self.clock = clock
        self.http = requests.Session()
        # The environment's proxy and CA settings are read here, once: with trust_env,
        # requests reads them and ~/.netrc again on every call (a millisecond a call).
        self.http.trust_env = False
        self.http.proxies = requests.utils.get_environ_proxies(self.base_url)
        self.http.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get(
            "CURL_CA_BUNDLE", True
        )
        self.transport = _HostAdapter(self.base_url, self.api_url, timeout, self._observe)
        for host in (STRAVA_HOST, STRAVA_API_HOST):
            self.http.mount(host, self.transport)
        # stravalib warns through the root logger, at every client built, when the app's
        # credentials are not in the environment (they are passed explicitly here instead);
        # SILENCE_TOKEN_WARNINGS is its documented switch for that.
        os.environ.setdefault("SILENCE_TOKEN_WARNINGS", "true")
        self._lock = threading.Lock()
        # The budget shared by all workers (budget.Budget); without one, nothing is reserved.
        self.budget: Any = None
        self.calls = 0  # API calls made by this process (benchmarks and tests read it)

    # -- budget ------------------------------------------------------------------------

    def _observe(self, headers: Any) -> None:
        """Told by the transport of every API response's headers."""
        status = RateStatus.from_headers(headers, self.clock())
        with self._lock:
            self.calls += 1
        if status is not None and self.budget is not None:
            self.budget.observe(status)

    def check_budget(self, calls: int = 1, *, low_priority: bool = False) -> None:
        """Raise RateLimited, without calling Strava, when the budget is spent.

        With a shared budget this reserves `calls` requests (see Budget.reserve); a
        low-priority job leaves the window's last tenth to runs.
        """
        if self.budget is not None:
            self.budget.reserve(calls, spare=low_priority)

    # -- plumbing ----------------------------------------------------------------------

    def _client(self, access_token: str | None) -> Client:
        """A stravalib client for one athlete's token, sharing this adapter's connections."""
        # No stravalib limiter: it sleeps (up to a day) instead of raising; the budget rules.
        client = Client(access_token, rate_limit_requests=False, requests_session=self.http)
        # stravalib turns its auto-refresh on when STRAVA_CLIENT_ID/SECRET are in the
        # environment, and never hands back the rotated refresh token: the service refreshes
        # explicitly, under a per-athlete lock, and persists the new pair itself.
        client.protocol.client_id = None
        client.protocol.client_secret = None
        return client

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run one stravalib call, translating its failures into domain errors."""
        try:
            return fn(*args, **kwargs)
        except exc.ObjectNotFound as e:
            raise NotFound(str(e)) from None
        except exc.AccessUnauthorized as e:
            raise Unauthorized(str(e)) from None
        except exc.Fault as e:
            raise self._translate(e.response) from None
        except (requests.Timeout, requests.ConnectionError) as e:
            raise TemporaryFailure(f"{type(e).__name__} talking to Strava") from None

    def _translate(self, response: requests.Response | None) -> StravaError:
        """Map an HTTP error response to the matching domain error."""
        if response is None:
            return TemporaryFailure("Strava answered with an error and no response")
        code = response.status_code
        if code == 429:
            status = RateStatus.from_headers(response.headers, self.clock())
            daily = bool(status and status.spent()[1])
            return RateLimited(seconds_until_reset(self.clock(), self.window_seconds, daily))
        if code >= 500:
            return TemporaryFailure(f"Strava answered {code}")
        if code == 401:
            return Unauthorized(f"Strava answered {code}")
        if code == 404:
            return NotFound(f"Strava answered {code}")
        if code == 403 and _says(response, field="athlete_limit"):
            return AthleteLimitReached("Strava answered 403: the app is at its athlete limit")
        return Rejected(f"Strava answered {code}")

    def _credentials(self) -> tuple[int, str]:
        """The application's id and secret; a clear error when unset."""
        if not self.client_id or not self.client_secret:
            raise Rejected("STRAVA_CLIENT_ID and STRAVA_CLIENT_SECRET are not set")
        return int(self.client_id), self.client_secret

    # -- OAuth -------------------------------------------------------------------------

    def authorize_url(self, redirect_uri: str, state: str, scope: str) -> str:
        """The browser URL of Strava's approval page."""
        query = urlencode(
            {
                "client_id": self.client_id,
                "redirect_uri": redirect_uri,
                "response_type": "code",
                "approval_prompt": "auto",
                "scope": scope,
                "state": state,
            }
        )
        return f"{self.base_url}/oauth/authorize?{query}"

    def exchange_code(self, code: str) -> TokenGrant:
        """Trade an authorization code for tokens and the (summary) athlete.

        Never reserves from the rate budget: the code expires within minutes, and OAuth
        calls are outside Strava's API limits.
        """
        client_id, secret = self._credentials()
        info, athlete = self._call(
            self._client(None).protocol.exchange_code_for_token,
            client_id=client_id,
            client_secret=secret,
            code=code,
            return_athlete=True,
        )
        found = athlete_info(athlete) if athlete and "id" in athlete else None
        return TokenGrant(
            info["access_token"],
            info["refresh_token"],
            int(info["expires_at"]),
            found.id if found else None,
            found,
        )

    def refresh(self, refresh_token: str) -> TokenGrant:
        """Get a new token pair; Strava's old refresh token is dead from then on.

        RefreshRefused when Strava refuses the refresh token itself (the runner revoked the
        app): a refusal of the application's own credentials is a Rejected or Unauthorized.
        """
        client_id, secret = self._credentials()
        try:
            info = self._client(None).protocol.refresh_access_token(
                client_id=client_id, client_secret=secret, refresh_token=refresh_token
            )
        except exc.Fault as e:
            code = e.response.status_code if e.response is not None else 0
            blames_app = _says(e.response, resource="Application")
            if code in (400, 401) and not blames_app:
                raise RefreshRefused(f"Strava refused the refresh token ({code})") from None
            raise self._translate(e.response) from None
        except (requests.Timeout, requests.ConnectionError) as e:
            raise TemporaryFailure(f"{type(e).__name__} talking to Strava") from None
        return TokenGrant(info["access_token"], info["refresh_token"], int(info["expires_at"]))

    def disconnect(self, access_token: str) -> None:
        """Revoke the app's access for this athlete, the way STRAVA_DISCONNECT chooses."""
        if self.disconnect_mode == "revoke":
            self.revoke(access_token)
        else:
            self.deauthorize(access_token)

    def deauthorize(self, access_token: str) -> None:
        """Strava's documented deauthorization: the token as the `access_token` parameter."""
        # Built without the token: stravalib would send it as a Bearer header, and its own
        # Client.deauthorize posts under /api/v3, where Strava documents no such endpoint.
        protocol = self._client(None).protocol
        self._call(
            protocol.post, STRAVA_HOST + DEAUTHORIZE_PATH, data={"access_token": access_token}
        )

    def revoke(self, access_token: str) -> None:
        """Strava's revoke endpoint: the app's credentials over HTTP Basic, the token in the body.

        stravalib has no call for it (its protocol sends only Bearer tokens), so this is a
        plain request through the same session and transport.
        """
        client_id, secret = self._credentials()
        try:
            response = self.http.post(
                STRAVA_HOST + REVOKE_PATH,
                data={"token": access_token, "token_type_hint": "access_token"},
                auth=(str(client_id), secret),
            )
        except (requests.Timeout, requests.ConnectionError) as e:
            raise TemporaryFailure(f"{type(e).__name__} talking to Strava") from None
        if response.status_code >= 400:
            raise self._translate(response)

    # -- API ---------------------------------------------------------------------------

    def refund(self) -> None:
        """Return the PUT that `get_activity` reserved, when no note needs writing."""
        if self.budget is not None:
            self.budget.refund()

    def get_athlete(self, access_token: str, *, budgeted: bool = True) -> AthleteInfo:
        """The authenticated athlete's id and units (see `athlete_info`).

        `budgeted=False` skips the budget: for the one read a connect cannot do without.
        """
        if budgeted:
            self.check_budget()
        protocol = self._client(access_token).protocol
        return athlete_info(self._call(protocol.get, "/athlete"))

    def get_private_note(self, access_token: str, activity_id: int) -> str:
        """The activity's private note as Strava stores it (one GET, from the budget)."""
        self.check_budget()
        protocol = self._client(access_token).protocol
        activity = self._call(protocol.get, "/activities/{id}", id=activity_id)
        return str(activity.get("private_note") or "")

    def get_activity(
        self, access_token: str, activity_id: int, *, low_priority: bool = False
    ) -> ActivityInfo:
        """One activity, reduced to the fields the service uses."""
        # Reserves the PUT that writes the note too (`prepaid` there; `refund` if not needed).
        self.check_budget(calls=2, low_priority=low_priority)
        protocol = self._client(access_token).protocol
        try:
            return _activity_info(self._call(protocol.get, "/activities/{id}", id=activity_id))
        except StravaError:
            self.refund()  # no PUT follows a failed GET
            raise

    def list_activities(self, access_token: str, after: dt.datetime) -> list[ActivityInfo]:
        """The athlete's activities that started after `after`, 200 a page (a call a page)."""
        self.check_budget()
        protocol = self._client(access_token).protocol
        found: list[ActivityInfo] = []
        page = 1
        while True:
            batch = self._call(
                protocol.get, "/athlete/activities",
                after=int(after.timestamp()), page=page, per_page=LIST_PAGE,
            )  # fmt: skip
            found += [_activity_info(a) for a in batch]
            if len(batch) < LIST_PAGE:  # a short page is the last
                return found
            page += 1

    def update_description(
        self, access_token: str, activity_id: int, description: str, *, prepaid: bool = False
    ) -> None:
        """Write the activity's description (and nothing else: never the title)."""
        if not prepaid:
            self.check_budget()
        self._put_activity(access_token, activity_id, {"description": description})

    def update_private_note(
        self, access_token: str, activity_id: int, text: str, *, prepaid: bool = False
    ) -> None:
        """Write Strava's private note (undocumented: a refusal comes back as Rejected)."""
        if not prepaid:
            self.check_budget()
        self._put_activity(access_token, activity_id, {"private_note": text})

    def _put_activity(self, access_token: str, activity_id: int, fields: dict[str, str]) -> None:
        """PUT only the given fields as JSON (the protocol's raw PUT: no model to build)."""
        protocol = self._client(access_token).protocol
        self._call(protocol.put, "/activities/{activity_id}", activity_id=activity_id, body=fields)

    # -- push subscriptions ------------------------------------------------------------

    def create_subscription(self, callback_url: str, verify_token: str) -> int:
        """Create the app's webhook subscription; Strava calls the callback to check it."""
        client_id, secret = self._credentials()
        sub = self._call(
            self._client(None).create_subscription,
            client_id=client_id,
            client_secret=secret,
            callback_url=callback_url,
            verify_token=verify_token,
        )
        return int(sub.id)

    def list_subscriptions(self) -> list[dict[str, Any]]:
        """The app's subscriptions as Strava reports them."""
        client_id, secret = self._credentials()
        subs = self._call(lambda: list(self._client(None).list_subscriptions(client_id, secret)))
        return [{"id": int(s.id), "callback_url": str(s.callback_url)} for s in subs]

    def delete_subscription(self, subscription_id: int) -> None:
        """Delete the app's webhook subscription."""
        client_id, secret = self._credentials()
        self._call(self._client(None).delete_subscription, subscription_id, client_id, secret)
