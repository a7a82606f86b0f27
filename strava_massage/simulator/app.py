"""Flask app that answers like Strava's OAuth pages, API v3 and webhook subscription service."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlencode

from flask import Flask, Response, g, jsonify, redirect, render_template_string, request
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as BaseResponse

from .state import JSON, SCOPES, FaultError, SimState

_APPROVAL_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Strava simulator: authorize</title>
<style>body{font-family:sans-serif;max-width:36rem;margin:2rem auto;line-height:1.5}
fieldset{margin:1rem 0}label{display:block}</style></head>
<body>
<h1>Authorize {{ app_name }}</h1>
<p><strong>This is a local Strava simulator.</strong> Nothing you choose here reaches the real
Strava; it only decides what the simulated Strava tells the application.</p>
<form method="post" action="/oauth/authorize">
  <label for="athlete_id">Log in as</label>
  <select id="athlete_id" name="athlete_id">
    {% for a in athletes %}
    <option value="{{ a.id }}" {{ "selected" if a.id == chosen }}>
      {{ a.firstname }} {{ a.lastname }} (athlete {{ a.id }})</option>
    {% endfor %}
    <option value="new" {{ "selected" if chosen is none }}>A new athlete</option>
  </select>
  <fieldset><legend>Permissions the application asks for</legend>
  {% for scope, text in scopes %}
    <label><input type="checkbox" name="granted" value="{{ scope }}" checked
      {{ "disabled" if scope == "read" }}> <code>{{ scope }}</code>: {{ text }}</label>
  {% endfor %}
  </fieldset>
  {% for name, value in hidden %}
  <input type="hidden" name="{{ name }}" value="{{ value }}">
  {% endfor %}
  <button type="submit" name="decision" value="authorize">Authorize</button>
  <button type="submit" name="decision" value="deny">Cancel</button>
</form>
</body></html>
"""


def _bad(field: str, resource: str = "Application") -> FaultError:
    """A 400 Fault naming the offending field."""
    return FaultError(400, "Bad Request", resource, field, "invalid")


def _requested_scopes(raw: str | None) -> list[str]:
    """Parse Strava's comma-separated scope list; 400 on scopes Strava does not know."""
    scopes = [s.strip() for s in (raw or "read").replace(" ", ",").split(",") if s.strip()]
    if any(s not in SCOPES for s in scopes):
        raise _bad("scope", "Authorize")
    return scopes


def _int_arg(name: str, default: int | None) -> int | None:
    """An integer query parameter, or 400."""
    raw = request.args.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise _bad(name, "Activity") from None


def _add_query(url: str, params: dict[str, str]) -> str:
    """Append parameters to a redirect URI that may already have a query string."""
    joiner = "&" if "?" in url else "?"
    # Keep commas and colons readable in `scope`, as Strava's own redirects do.
    return url + joiner + urlencode(params, safe=",:")


def create_simulator_app(state: SimState) -> Flask:
    """Build the Flask app serving one SimState."""
    app = Flask(__name__)
    app.json.sort_keys = False  # type: ignore[attr-defined]  # keep Strava's field order

    def metered(path: str) -> bool:
        """Whether a path counts toward the rate limits and takes injected faults."""
        return path.startswith("/api/v3/") and not path.startswith("/api/v3/oauth/")

    @app.errorhandler(FaultError)
    def _fault(err: FaultError) -> tuple[Response, int]:
        return jsonify(err.body), err.status

    @app.errorhandler(HTTPException)
    def _http_error(err: HTTPException) -> tuple[Response, int]:
        return jsonify({"message": err.name, "errors": []}), err.code or 500

    @app.before_request
    def _gate() -> None:
        """Count the request, then reject it if over a limit or chosen to fail."""
        g.athlete_id = None
        # The approval page is Strava's website, not its OAuth API: it stays up.
        oauth_api = "/oauth/" in request.path and request.path != "/oauth/authorize"
        if state.oauth_down and request.method == "POST" and oauth_api:
            raise FaultError(503, "Service Unavailable", "OAuth", "server", "unavailable")
        if not metered(request.path):
            return
        g.rate_headers, exceeded = state.count_api_request()
        if exceeded:
            raise FaultError(429, "Rate Limit Exceeded", "Application", "rate limit", "exceeded")
        fault = state.take_fault(request.method)
        if fault is not None:
            status, slow = fault
            if slow:
                time.sleep(state.timeout_delay)
            raise state.injected(status)
        if state.latency:
            time.sleep(state.latency)  # a slow but healthy Strava, for crash-timing tests

    @app.after_request
    def _finish(response: Response) -> Response:
        """Add rate headers to API answers and log every Strava-facing call."""
        response.headers.update(g.get("rate_headers") or {})
        if not request.path.startswith("/_sim/"):
            state.record_call(
                request.method, request.path, response.status_code, g.get("athlete_id")
            )
        return response

    def authenticate() -> tuple[int, frozenset[str]]:
        """The caller's athlete and scopes from the Bearer header (or access_token field)."""
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else None
        athlete_id, scopes = state.check_access_token(token or request.values.get("access_token"))
        g.athlete_id = athlete_id
        return athlete_id, scopes

    # -- OAuth ------------------------------------------------------------------------------

    @app.get("/oauth/authorize")
    def authorize_page() -> str:
        args = request.args
        if args.get("client_id") != str(state.client_id):
            raise _bad("client_id")
        state.check_redirect_uri(args.get("redirect_uri"))
        if args.get("response_type", "code") != "code":
            raise _bad("response_type")
        scopes = _requested_scopes(args.get("scope"))
        athletes = state.athletes()
        chosen = _int_arg("athlete_id", athletes[0]["id"] if athletes else None)
        hidden = [
            ("client_id", str(state.client_id)),
            ("redirect_uri", args["redirect_uri"]),
            ("state", args.get("state", "")),
            ("scope", ",".join(scopes)),
        ]
        return render_template_string(
            _APPROVAL_PAGE,
            app_name=f"application {state.client_id}",
            athletes=athletes,
            chosen=chosen,
            scopes=[(s, SCOPES[s]) for s in dict.fromkeys(["read", *scopes])],
            hidden=hidden,
        )

    @app.post("/oauth/authorize")
    def authorize_decision() -> BaseResponse:
        form = request.form
        if form.get("client_id") != str(state.client_id):
            raise _bad("client_id")
        redirect_uri = state.check_redirect_uri(form.get("redirect_uri"))
        answer = {"state": form.get("state", "")}
        if form.get("decision") != "authorize":
            return redirect(_add_query(redirect_uri, answer | {"error": "access_denied"}))
        requested = _requested_scopes(form.get("scope"))
        ticked = set(form.getlist("granted")) | {"read"}  # `read` cannot be refused
        granted = [s for s in dict.fromkeys(["read", *requested]) if s in ticked]
        choice = form.get("athlete_id", "new")
        if choice == "new":
            athlete_id = int(state.create_athlete(firstname="New", lastname="Runner")["id"])
        else:
            try:
                athlete_id = int(state.athlete(int(choice))["id"])
            except (ValueError, KeyError):
                raise _bad("athlete_id", "Athlete") from None
        g.athlete_id = athlete_id
        code = state.issue_code(athlete_id, frozenset(granted))
        return redirect(
            _add_query(redirect_uri, answer | {"code": code, "scope": ",".join(granted)})
        )

    @app.post("/oauth/token")
    def token() -> Response:
        values = request.values
        grant_type = values.get("grant_type")
        client = (values.get("client_id"), values.get("client_secret"))
        if grant_type == "authorization_code":
            answer = state.exchange_code(*client, values.get("code", ""))
            g.athlete_id = answer["athlete"]["id"]
        elif grant_type == "refresh_token":
            answer = state.refresh(*client, values.get("refresh_token", ""))
        else:
            raise _bad("grant_type")
        return jsonify(answer)

    def revoked(athlete_id: int, body: JSON) -> Response:
        """Kill the athlete's tokens; the webhook hears of it after the answer, as on Strava."""
        state.revoke_athlete(athlete_id)
        response = jsonify(body)
        response.call_on_close(
            lambda: state.announce_later(
                "athlete", athlete_id, "update", athlete_id, {"authorized": "false"}
            )
        )
        return response

    @app.post("/oauth/deauthorize")
    @app.post("/api/v3/oauth/deauthorize")
    def deauthorize() -> Response:
        # Strava documents the token as the `access_token` parameter: a Bearer header alone
        # (what stravalib's Client.deauthorize sends) is not enough.
        token = request.values.get("access_token")
        if not token:
            raise FaultError(400, "Bad Request", "Application", "access_token", "missing")
        athlete_id, _ = state.check_access_token(token)
        g.athlete_id = athlete_id
        return revoked(athlete_id, {"access_token": token})

    @app.post("/oauth/revoke")
    def revoke() -> Response:
        # The June 2026 endpoint: the app's credentials over HTTP Basic, `token` (access or
        # refresh) in the body; an unknown token is answered 200 (RFC 7009).
        auth = request.authorization
        if auth is None or auth.type != "basic":
            raise FaultError(401, "Authorization Error", "Application", "client_id", "invalid")
        state.check_client(auth.username, auth.password)
        token = request.form.get("token")
        if not token:
            raise _bad("token", "Token")
        athlete_id = state.athlete_of_token(token)
        if athlete_id is None:
            return jsonify({})
        g.athlete_id = athlete_id
        return revoked(athlete_id, {})

    # -- API v3 -----------------------------------------------------------------------------

    @app.get("/api/v3/athlete")
    def get_athlete() -> Response:
        athlete_id, scopes = authenticate()
        return jsonify(state.athlete_for(athlete_id, scopes))

    @app.get("/api/v3/activities/<int:activity_id>")
    def get_activity(activity_id: int) -> Response:
        athlete_id, scopes = authenticate()
        return jsonify(state.get_activity_for(athlete_id, scopes, activity_id))

    @app.put("/api/v3/activities/<int:activity_id>")
    def put_activity(activity_id: int) -> Response:
        athlete_id, scopes = authenticate()
        body: Any = request.get_json(silent=True)
        if not isinstance(body, dict):
            body = request.form.to_dict()
        activity, updates = state.put_activity_for(athlete_id, scopes, activity_id, body)
        response = jsonify(activity)
        if updates:  # only title/type changes make news; descriptions never do
            response.call_on_close(
                lambda: state.announce_later("activity", activity_id, "update", athlete_id, updates)
            )
        return response

    @app.get("/api/v3/athlete/activities")
    def list_activities() -> Response:
        athlete_id, scopes = authenticate()
        page = max(_int_arg("page", 1) or 1, 1)
        per_page = min(max(_int_arg("per_page", 30) or 30, 1), 200)
        before, after = _int_arg("before", None), _int_arg("after", None)
        return jsonify(state.list_activities_for(athlete_id, scopes, before, after, page, per_page))

    # -- push subscriptions -----------------------------------------------------------------

    @app.post("/api/v3/push_subscriptions")
    def create_subscription() -> tuple[Response, int]:
        v = request.values
        sub = state.create_subscription(
            v.get("client_id"), v.get("client_secret"),
            v.get("callback_url", ""), v.get("verify_token", ""),
        )  # fmt: skip
        return jsonify(sub), 201

    @app.get("/api/v3/push_subscriptions")
    def list_subscriptions() -> Response:
        v = request.values
        return jsonify(state.list_subscriptions(v.get("client_id"), v.get("client_secret")))

    @app.delete("/api/v3/push_subscriptions/<int:sub_id>")
    def delete_subscription(sub_id: int) -> tuple[str, int]:
        v = request.values
        state.delete_subscription(sub_id, v.get("client_id"), v.get("client_secret"))
        return "", 204

    # -- control API for other processes ----------------------------------------------------

    def control_body() -> JSON:
        """The JSON object a control call sent, or 400."""
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise _bad("body", "Simulator")
        return body

    @app.post("/_sim/athletes")
    def sim_create_athlete() -> tuple[Response, int]:
        try:
            return jsonify(state.create_athlete(**control_body())), 201
        except (TypeError, ValueError) as err:
            return jsonify({"message": str(err), "errors": []}), 400

    @app.post("/_sim/activities")
    def sim_create_activity() -> tuple[Response, int]:
        try:  # start_date_local stays an ISO string: create_activity parses it
            return jsonify(state.create_activity(**control_body())), 201
        except (TypeError, ValueError, KeyError) as err:
            return jsonify({"message": str(err), "errors": []}), 400

    @app.get("/_sim/calls")
    def sim_calls() -> Response:
        found = state.calls(request.args.get("method"), request.args.get("path_prefix"))
        return jsonify([c.to_json() for c in found])

    @app.get("/activities/<int:activity_id>")
    def activity_page(activity_id: int) -> str:
        """The run's page on the website (not the API): where "View on Strava" links lead."""
        try:
            a = state.activity(activity_id)
        except KeyError:
            raise FaultError(404, "Record Not Found", "Activity", "id", "not found") from None
        return render_template_string(
            "<!doctype html><title>{{ a.name }}</title><h1>{{ a.name }}</h1>"
            "<p>{{ a.sport_type }}, {{ '%.1f'|format(a.distance / 1000) }} km</p>"
            "<pre>{{ a.description or '' }}</pre>",
            a=a,
        )

    @app.get("/_sim/activities/<int:activity_id>")
    def sim_activity(activity_id: int) -> Response:
        try:
            return jsonify(state.activity(activity_id))
        except KeyError:
            raise FaultError(404, "Record Not Found", "Activity", "id", "not found") from None

    return app
