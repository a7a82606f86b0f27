"""The `strava-massage` command line (also available as `flask --app strava_massage ...`)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import ScriptInfo, with_appcontext

from strava_massage import __version__
from strava_massage.config import ConfigError, check_public_url_port

# Ranges of the numbers the commands take: a wrong one is a usage error (exit 2), never data.
PORT = click.IntRange(1, 65535)
THREADS = click.IntRange(1, 256)
ID = click.IntRange(min=1)


def _app() -> Flask:
    """The app the current command runs in."""
    return current_app._get_current_object()  # type: ignore[attr-defined,no-any-return]


# -- database ----------------------------------------------------------------------------------


@click.group("db")
def db_group() -> None:
    """Database commands: apply migrations, take a backup."""


@db_group.command("upgrade")
@with_appcontext
def db_upgrade() -> None:
    """Apply all migrations (creates the database if needed)."""
    from strava_massage.services import database

    db = current_app.extensions["db"]
    click.echo(f"database: {database.describe(db)}")
    if database.create_if_missing(db):
        click.echo("database created")
    _upgrade(db)


def _upgrade(db: Any) -> None:
    """Migrate, in one line instead of Alembic's log (about ten INFO lines: its plugins, the
    DDL mode, each revision); its warnings still show."""
    import logging

    alembic = logging.getLogger("alembic")
    level = alembic.level
    alembic.setLevel(logging.WARNING)
    try:
        revision = db.upgrade()
    finally:
        alembic.setLevel(level)
    click.echo(f"database is up to date (revision {revision})")


@db_group.command("backup")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite FILE if it exists.")
@with_appcontext
def db_backup(file: Path, force: bool) -> None:
    """Copy the embedded SQLite database to FILE, safely while the service runs.

    To restore: stop the service, copy FILE back over the database file (the path `db
    upgrade` prints), delete the -wal and -shm files beside it, and start the service.
    """
    from strava_massage.services import database

    db = current_app.extensions["db"]
    if db.dialect != "sqlite":
        raise BadInput(
            f"db backup copies the embedded SQLite database; this one is {database.describe(db)}: "
            'back it up with pg_dump (e.g. pg_dump -Fc -f FILE "$DATABASE_URL")'
        )
    target = file.resolve()
    if target == Path(database.describe(db)):
        raise BadInput("FILE is the database itself: choose another path")
    if target.exists() and not force:
        raise BadInput(f"{target} exists: choose another FILE, or add --force to overwrite it")
    if not target.parent.is_dir():
        raise BadInput(f"no folder {target.parent}: create it first")
    try:
        size = database.backup(db, target)
    except ConfigError as e:
        raise BadInput(str(e)) from None
    click.echo(f"backup of {database.describe(db)} written to {target} ({_size(size)})")


def _size(count: int) -> str:
    """A byte count for people."""
    if count < 1024 * 1024:
        return f"{count / 1024:.0f} KB"
    return f"{count / 1024 / 1024:.1f} MB"


# -- processes ---------------------------------------------------------------------------------


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option(
    "--port",
    default=lambda: os.environ.get("PORT") or 5000,
    show_default="5000 or $PORT",
    type=PORT,
    help="Port to listen on.",
)
@click.option("--threads", default=8, show_default=True, type=THREADS, help="Request threads.")
@with_appcontext
def serve(host: str, port: int, threads: int) -> None:
    """Run the web server with an in-process worker: the one-machine default.

    Migrates the database first. A PUBLIC_URL on this machine (127.0.0.1, localhost) must
    name the port served here.
    """
    from strava_massage.server import run_server
    from strava_massage.services import database

    app = _app()
    check_public_url_port(app.config["PUBLIC_URL"], port)
    db = app.extensions["db"]
    click.echo(f"database: {database.describe(db)}")
    _upgrade(db)
    click.echo(f"queue: {_queue_label(app)}")
    click.echo(f"serving on http://{host}:{port} (Ctrl-C to stop)")
    run_server(app, host=host, port=port, threads=threads, embedded_worker=True)


@click.command()
@click.option("--threads", default=None, type=THREADS, help="Worker threads [WORKER_THREADS or 2].")
@click.option("--periodic/--no-periodic", default=True, help="Run the periodic sweep here.")
@with_appcontext
def worker(threads: int | None, periodic: bool) -> None:
    """Consume the task queue (for scale-out: run one or more beside the web process)."""
    from strava_massage.services import database
    from strava_massage.worker.queue import make_consumer, start_worker

    app = _app()
    consumer = make_consumer(
        app, workers=threads or app.config["WORKER_THREADS"], periodic=periodic
    )
    start_worker(app, consumer)
    click.echo(f"database: {database.describe(app.extensions['db'])}")
    click.echo(f"worker consuming {_queue_label(app)} (SIGTERM finishes running jobs)")
    _run_consumer_loop(consumer)


def _run_consumer_loop(consumer: Any) -> None:
    """huey's own main loop, after our start-up sweep has already started the consumer."""
    import time

    from huey.consumer import ConsumerStopped

    health = time.monotonic()
    while True:
        try:
            health = consumer.loop(health)
        except ConsumerStopped:
            break
    consumer.huey.notify_interrupted_tasks()


def _queue_label(app: Flask) -> str:
    """QUEUE_URL without credentials, for messages."""
    url: str = app.config["QUEUE_URL"]
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.rpartition('@')[2]}"


@click.command()
@click.option(
    "--port", default=5000, show_default=True, type=PORT, help="Port of the demo service."
)
@click.option(
    "--weeks",
    default=4,
    show_default=True,
    type=click.IntRange(1, 52),
    help="Weeks of simulated history.",
)
@click.option("--no-wait", is_flag=True, help="Exit after the demo run instead of serving.")
def demo(port: int, weeks: int, no_wait: bool) -> None:
    """Run the service against the built-in Strava simulator with a demo runner."""
    from strava_massage.demo import run_demo

    run_demo(port=port, weeks=weeks, keep_serving=not no_wait)


# -- subscription ------------------------------------------------------------------------------


@click.group("subscription")
def subscription_group() -> None:
    """Manage the Strava webhook subscription."""


@subscription_group.command("create")
@click.option(
    "--callback-url", default=None, help="Defaults to PUBLIC_URL/webhooks/strava/<secret>."
)
@with_appcontext
def subscription_create(callback_url: str | None) -> None:
    """Create the subscription; Strava checks the callback before answering."""
    from strava_massage.services.subscriptions import create_subscription
    from strava_massage.strava.client import StravaError

    try:
        sub_id, url = create_subscription(_app(), callback_url)
    except StravaError as e:
        raise click.ClickException(f"Strava refused the subscription: {e}") from None
    click.echo(f"subscription {sub_id} created for {url}")


@subscription_group.command("show")
@with_appcontext
def subscription_show() -> None:
    """Show the callback URL (with its secret), the stored subscription and Strava's."""
    from sqlalchemy import select

    from strava_massage import services
    from strava_massage.models import Subscription
    from strava_massage.services.subscriptions import callback_url
    from strava_massage.strava.client import StravaError

    expected = callback_url(_app())
    click.echo(f"callback URL: {expected}")
    with current_app.extensions["db"].session() as session:
        stored = session.scalars(select(Subscription)).all()
    for sub in stored:
        click.echo(f"stored: {sub.id} -> {sub.callback_url}")
    if not stored:
        click.echo("stored: none")
    try:
        remote = services.get().strava.list_subscriptions()
    except StravaError as e:
        raise click.ClickException(f"could not ask Strava: {e}") from None
    for item in remote:
        click.echo(f"at Strava: {item['id']} -> {item['callback_url']}")
        if item["callback_url"] != expected:
            # An old path (or another secret) gets 404s: Strava's events would be lost.
            click.echo(
                "  not this service's callback URL: run `subscription delete`, then `create`"
            )
    if not remote:
        click.echo("at Strava: none")


@subscription_group.command("delete")
@with_appcontext
def subscription_delete() -> None:
    """Delete the subscription at Strava and here."""
    from strava_massage.services.subscriptions import delete_subscription
    from strava_massage.strava.client import StravaError

    try:
        deleted = delete_subscription(_app())
    except StravaError as e:
        raise click.ClickException(f"Strava refused: {e}") from None
    click.echo(f"deleted subscription {deleted}" if deleted else "there was no subscription")


# -- events ------------------------------------------------------------------------------------


@click.group("events", invoke_without_command=True)
@click.option("--pending", is_flag=True, help="Only events waiting or in progress.")
@click.option("--failed", is_flag=True, help="Only events that failed.")
@click.option("--limit", default=50, show_default=True, type=ID, help="How many, newest first.")
@click.pass_context
def events_command(ctx: click.Context, pending: bool, failed: bool, limit: int) -> None:
    """List stored webhook events and their status (or replay some: `events replay`)."""
    # The app is built only to list: `events replay --help` must work with no configuration.
    if ctx.invoked_subcommand is None:
        _list_events(pending, failed, limit)


@with_appcontext
def _list_events(pending: bool, failed: bool, limit: int) -> None:
    """Print the newest stored events, filtered by status."""
    from sqlalchemy import select

    from strava_massage.models import Event

    query = select(Event).order_by(Event.id.desc()).limit(limit)
    statuses = [*(["pending", "processing"] if pending else []), *(["failed"] if failed else [])]
    if statuses:
        query = query.where(Event.status.in_(statuses))
    with current_app.extensions["db"].session() as session:
        rows = session.scalars(query).all()
    if not rows:
        click.echo("no events")
        return
    click.echo(f"{'id':>6}  {'status':<10} {'kind':<16} {'object':>12} {'athlete':>10}  outcome")
    for e in rows:
        kind = f"{e.object_type}.{e.aspect_type}"
        click.echo(
            f"{e.id:>6}  {e.status:<10} {kind:<16} {e.object_id:>12} {e.owner_id:>10}  "
            f"{e.outcome or ''}"
        )


@events_command.command("replay")
@click.argument("event_ids", nargs=-1, type=ID)
@click.option("--failed", "all_failed", is_flag=True, help="Every failed event.")
@with_appcontext
def events_replay(event_ids: tuple[int, ...], all_failed: bool) -> None:
    """Queue finished events again (a dead letter after its cause is fixed)."""
    from strava_massage import services
    from strava_massage.worker.jobs import reopen_events

    if bool(event_ids) == all_failed:
        raise click.UsageError("give event ids or --failed (not both)")
    found = reopen_events(services.get(), list(event_ids) if event_ids else None)
    missing = sorted(set(event_ids) - set(found))
    if missing:
        click.echo(f"not replayed (unknown, or still pending): {', '.join(map(str, missing))}")
    click.echo(
        f"{len(found)} event(s) queued again" + (f": {', '.join(map(str, found))}" if found else "")
    )
    if missing:
        sys.exit(1)


# -- runner inputs -----------------------------------------------------------------------------


@click.group("runner")
def runner_group() -> None:
    """See and change a runner's settings and massage sessions."""


def _runner_session() -> Any:
    """A database session for a runner command."""
    return current_app.extensions["db"].session()


def _fail(e: Exception) -> click.ClickException:
    """A runner-input error as a one-line command error."""
    return click.ClickException(str(e))


class BadInput(click.ClickException):
    """A wrong value given to an option: one line, and exit status 2 as for a usage error."""

    exit_code = 2


def _change_niggle(athlete: Any, niggle: str | None, clear: bool) -> None:
    """Apply `--niggle AREA[:YYYY-MM-DD]` (the date is the runner's today if left out) or
    `--clear-niggle`."""
    from strava_massage.services import dashboard, runner

    if niggle is not None and clear:
        raise runner.InputError("give --niggle or --clear-niggle, not both")
    if clear:
        runner.clear_niggle(athlete)
    elif niggle is not None:
        area, _, on = niggle.partition(":")
        today = dashboard.runner_today(athlete)
        day = runner.parse_date(on, "the date of the sore area") if on else today
        runner.set_niggle(athlete, area.strip().lower(), day, today)


@runner_group.command("show")
@click.argument("athlete_id", type=ID)
@with_appcontext
def runner_show(athlete_id: int) -> None:
    """Show a runner's settings and sessions."""
    from strava_massage.services import runner

    with _runner_session() as session:
        try:
            a = runner.get_athlete(session, athlete_id)
        except runner.InputError as e:
            raise _fail(e) from None
        race = f"{a.next_race_on}" if a.next_race_on else "none"
        distance = runner.race_distance(a, a.effective_units)
        if a.next_race_on and distance:
            race += f" ({distance:g} {a.effective_units})"  # the runner's units, as on Settings
        click.echo(f"runner {a.id}")
        click.echo(f"  units: {a.effective_units}" + ("" if a.units_override else " (from Strava)"))
        click.echo(f"  notes: {'on' if a.notes_enabled else 'paused'}, written to {a.note_target}")
        click.echo(f"  disclaimer: {a.disclaimer or 'none'}")
        click.echo(f"  next race: {race}")
        click.echo(f"  sore area: {_niggle_text(a)}")
        click.echo(f"  advice overrides: {a.advice_overrides or 'none'}")
        runs = a.backfill_runs or 0
        click.echo(f"  history import: {a.backfill_status} ({runs} run{'' if runs == 1 else 's'})")
        rows = runner.massages(session, athlete_id)
        click.echo(f"  massage sessions: {len(rows) or 'none'}")
        for m in rows:
            click.echo(f"    #{m.id} {m.on}" + (f" at {m.place}" if m.place else ""))


def _niggle_text(athlete: Any) -> str:
    """The runner's sore area as `runner show` prints it."""
    from strava_massage.services import dashboard, runner

    niggle = runner.active_niggle(athlete, dashboard.runner_today(athlete))
    if niggle is None:
        return "none"
    until = runner.niggle_last_day(niggle)
    return f"{niggle.area} since {niggle.since} (the tips favour it until {until})"


@runner_group.command("set")
@click.argument("athlete_id", type=ID)
@click.option("--units", type=click.Choice(["mi", "km", "strava"]), help="strava = as on Strava.")
@click.option("--notes", type=click.Choice(["on", "paused"]), help="Pause or resume notes.")
@click.option(
    "--target", type=click.Choice(["description", "private_note"]), help="Where notes go."
)
@click.option("--disclaimer", help="One line added to notes; '' removes it.")
@click.option("--race", help="Next race as DATE or DATE:KM (e.g. 2026-04-26:42.2); '' clears.")
@click.option("--advice", multiple=True, metavar="NAME=VALUE", help="Override a default.")
@click.option(
    "--niggle",
    metavar="AREA[:DATE]",
    help="A sore area since DATE [today], e.g. calves:2026-04-20; the tips favour it 3 weeks.",
)
@click.option("--clear-niggle", is_flag=True, help="Forget the sore area.")
@with_appcontext
def runner_set(
    athlete_id: int,
    units: str | None,
    notes: str | None,
    target: str | None,
    disclaimer: str | None,
    race: str | None,
    advice: tuple[str, ...],
    niggle: str | None,
    clear_niggle: bool,
) -> None:
    """Change a runner's settings; they apply from the next note on."""
    import datetime as dt

    from strava_massage.services import runner

    with _runner_session() as session:
        try:
            a = runner.get_athlete(session, athlete_id)
            if units is not None:
                runner.set_units(a, None if units == "strava" else units)
            if notes is not None:
                a.notes_enabled = notes == "on"
            if target is not None:
                runner.set_note_target(a, target)
            if disclaimer is not None:
                runner.set_disclaimer(a, disclaimer)
            if race is not None:
                on, _, km = race.partition(":")
                runner.set_race(
                    a,
                    runner.parse_date(on, "race date") if on else None,
                    float(km) if km else None,
                    dt.date.today(),
                )
            if advice:
                pairs = dict(item.partition("=")[::2] for item in advice)
                runner.set_advice(a, pairs)
        except (runner.InputError, ValueError) as e:
            raise _fail(e) from None
        try:
            _change_niggle(a, niggle, clear_niggle)
        except runner.InputError as e:
            raise BadInput(str(e)) from None
        session.commit()
    click.echo(f"runner {athlete_id} updated")


@runner_group.group("massage")
def massage_group() -> None:
    """Log, list and remove massage sessions."""


@massage_group.command("add")
@click.argument("athlete_id", type=ID)
@click.option("--on", "on", required=True, help="Date of the session (YYYY-MM-DD).")
@click.option("--place", default=None, help="Where (optional).")
@with_appcontext
def massage_add(athlete_id: int, on: str, place: str | None) -> None:
    """Log a session; distance 'since the last massage' counts from it."""
    import datetime as dt

    from strava_massage.services import runner

    with _runner_session() as session:
        try:
            a = runner.get_athlete(session, athlete_id)
            row = runner.log_massage(session, a, runner.parse_date(on), place, dt.date.today())
        except runner.InputError as e:
            raise _fail(e) from None
        session.commit()
        click.echo(f"session #{row.id} logged for runner {athlete_id} on {row.on}")


@massage_group.command("remove")
@click.argument("athlete_id", type=ID)
@click.argument("session_id", type=ID)
@with_appcontext
def massage_remove(athlete_id: int, session_id: int) -> None:
    """Remove a session logged by mistake."""
    from strava_massage.services import runner

    with _runner_session() as session:
        try:
            runner.remove_massage(session, athlete_id, session_id)
        except runner.InputError as e:
            raise _fail(e) from None
        session.commit()
    click.echo(f"session #{session_id} removed")


@click.command("advise")
@click.option("--athlete", "athlete_id", type=ID, required=True, help="The runner's id.")
@click.option("--as-of", "as_of", default=None, help="Date of the imagined next run [today].")
@click.option(
    "--distance",
    type=click.FloatRange(0, 500, min_open=True),
    default=None,
    help="Its distance in the runner's units, km or mi [their 28-day average].",
)
@with_appcontext
def advise_command(athlete_id: int, as_of: str | None, distance: float | None) -> None:
    """Print the note the runner's next run would get, and the numbers behind it."""
    import datetime as dt

    from strava_massage.advice.state import metres_per_unit, to_units
    from strava_massage.services import runner
    from strava_massage.services.advising import preview_next_run

    with _runner_session() as session:
        try:
            a = runner.get_athlete(session, athlete_id)
            day = runner.parse_date(as_of, "--as-of") if as_of else dt.date.today()
        except runner.InputError as e:
            raise _fail(e) from None
        units = a.effective_units
        km = None if distance is None else distance * metres_per_unit(units) / 1000
        state, note = preview_next_run(session, a, day, km)
    run = to_units(state.distance_m, units)
    click.echo(f"the next run: {state.local_date}, {run:.1f} {units}\n")
    rows = [
        ("week", state.week_m), ("month", state.month_m), ("year", state.year_m),
        ("last 7 days", state.rolling7_m), ("last 28 days", state.rolling28_m),
        ("since massage", state.since_massage_m),
    ]  # fmt: skip
    for label, metres in rows:
        click.echo(f"  {label:<18} {to_units(metres, units):8.1f} {units}")
    if state.last_massage_date is None:
        # Without a logged session the distance counts from connecting: no day count to show.
        click.echo(f"  {'days since massage':<18} {'none logged':>8}")
    else:
        click.echo(f"  {'days since massage':<18} {state.since_massage_days:8d}")
    click.echo(f"  {'days of history':<18} {state.history_days:8d}")
    click.echo(f"  {'next race':<18} {state.next_race_date or 'none'!s:>8}")
    click.echo(f"\nrule: {note.kind}  facts: {note.fact_ids}\n")
    click.echo(note.text)


@click.command("preview")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--units",
    type=click.Choice(["km", "mi"]),
    default=None,
    help="Units of the report  [default: the export's own, else km].",
)
@click.option("--tz", default="UTC", show_default=True, help="Time zone the runs were in.")
@click.option("--massage", "massages", multiple=True, help="A massage date (YYYY-MM-DD); repeat.")
@click.option(
    "--race",
    "races",
    multiple=True,
    metavar="DATE[:KM]",
    help="A race day, with its distance if known (e.g. 2025-09-07:42.2); repeat.",
)
@click.option("--full", is_flag=True, help="Print each note's whole text.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per note (JSON Lines).")
def preview_command(
    file: Path,
    units: str | None,
    tz: str,
    massages: tuple[str, ...],
    races: tuple[str, ...],
    full: bool,
    as_json: bool,
) -> None:
    """Replay a Strava export (activities.csv or the zip) through the advice, week by week.

    Nothing is sent to Strava or stored: this shows what the notes would have been. With
    --json, stdout holds only the notes, one JSON object a line; skipped rows go to stderr.
    """
    from strava_massage.services import preview, runner

    try:
        massage_days = [runner.parse_date(d, "--massage") for d in massages]
        race_list = [preview.parse_race(r) for r in races]
    except runner.InputError as e:
        raise BadInput(str(e)) from None
    try:
        export = preview.read_export(file, preview.zone(tz))
    except preview.ExportError as e:
        raise _fail(e) from None
    refusal = preview.refusal(export, file.name)
    if refusal:  # every run unreadable: an error, not an empty preview
        raise BadInput(refusal)
    units = units or export.units or "km"
    if len(export.runs) > 500:
        click.echo(f"replaying {len(export.runs)} runs ...", err=True)
    notes = preview.replay(export.runs, units=units, massages=massage_days, races=race_list)
    if as_json:
        for line in preview.skipped_rows(export):
            click.echo(line, err=True)
        for note in notes:
            click.echo(note.as_json())
        return
    for line in preview.format_preview(export, notes, units, full):
        click.echo(line)


# -- keys ----------------------------------------------------------------------------------


@click.group("keys")
def keys_group() -> None:
    """Manage the keys that encrypt runners' tokens at rest."""


@keys_group.command("rotate")
@with_appcontext
def keys_rotate() -> None:
    """Re-encrypt every stored token under the newest key of TOKEN_KEYS.

    Put a new key first in TOKEN_KEYS, keep the old ones after it, run this, then remove
    the old keys once it reports no failure.
    """
    from cryptography.fernet import InvalidToken
    from sqlalchemy import select, update

    from strava_massage import services
    from strava_massage.models import Token

    box = services.get().box
    db = current_app.extensions["db"]
    rotated, unreadable = 0, []
    with db.session() as session:
        ids = list(session.scalars(select(Token.athlete_id).order_by(Token.athlete_id)))
    for done, athlete_id in enumerate(ids, 1):
        if done % 1000 == 0:
            click.echo(f"{done} of {len(ids)} runners ...", err=True)
        with db.session() as session:
            # Lock the row as a refresh does, so a worker's new pair is never overwritten.
            session.execute(
                update(Token)
                .where(Token.athlete_id == athlete_id)
                .values(version=Token.version + 1)
            )
            token = session.get(Token, athlete_id, populate_existing=True)
            if token is None:
                continue  # the runner left meanwhile
            try:
                token.access_token = box.rotate(token.access_token)
                token.refresh_token = box.rotate(token.refresh_token)
            except InvalidToken:
                unreadable.append(athlete_id)
                session.rollback()
                continue
            session.commit()
            rotated += 1
    click.echo(f"re-encrypted the tokens of {rotated} runner(s) under the newest key")
    if unreadable:
        listed = ", ".join(map(str, unreadable))
        raise click.ClickException(
            f"no key in TOKEN_KEYS opens the tokens of runner(s) {listed}; "
            "they must connect again (keep the old keys until then)"
        )


# -- clinics -------------------------------------------------------------------------------------


@click.group("clinic")
def clinic_group() -> None:
    """Create clinics, add and remove staff logins, and make password links."""


def _reset_link(staff: Any) -> str:
    """A fresh password link for a staff login (printed, never logged)."""
    from strava_massage.models import utcnow
    from strava_massage.services import clinics

    token = clinics.issue_reset(staff, utcnow())
    return f"{_app().config['PUBLIC_URL']}/clinic/password/{token}"


@clinic_group.command("create")
@click.option("--slug", required=True, help="The invite link's name: /c/<slug>.")
@click.option("--name", required=True, help="The clinic's name as runners see it.")
@click.option("--email", required=True, help="The first staff member's login email.")
@click.option("--booking-url", default=None, help="Where runners book a session (https://...).")
@with_appcontext
def clinic_create(slug: str, name: str, email: str, booking_url: str | None) -> None:
    """Create a clinic and its first staff login; prints the link to set the password."""
    from strava_massage.services import clinics
    from strava_massage.services.runner import InputError

    db = current_app.extensions["db"]
    with db.session() as session:
        try:
            clinic, staff = clinics.create_clinic(session, slug, name, email, booking_url)
        except InputError as e:
            raise _fail(e) from None
        link = _reset_link(staff)
        session.commit()
        public = current_app.config["PUBLIC_URL"]
        click.echo(
            f"clinic {clinic.name!r} created; invite link for runners: {public}/c/{clinic.slug}"
        )
        click.echo(f"{staff.email} sets a password here (valid 2 hours, once): {link}")


@clinic_group.command("add-staff")
@click.argument("slug")
@click.argument("email")
@with_appcontext
def clinic_add_staff(slug: str, email: str) -> None:
    """Add a staff login to a clinic; prints the link to set the password."""
    from strava_massage.services import clinics
    from strava_massage.services.runner import InputError

    db = current_app.extensions["db"]
    with db.session() as session:
        clinic = clinics.find_clinic(session, slug)
        if clinic is None:
            raise click.ClickException(f"no clinic {slug!r}")
        try:
            staff = clinics.add_staff(session, clinic, email)
        except InputError as e:
            raise _fail(e) from None
        link = _reset_link(staff)
        session.commit()
        click.echo(f"{staff.email} sets a password here (valid 2 hours, once): {link}")


@clinic_group.command("reset-password")
@click.argument("email")
@with_appcontext
def clinic_reset_password(email: str) -> None:
    """Print a password link for a staff login and end its sessions in every browser (the old
    password still logs in until the link is used)."""
    from sqlalchemy import select

    from strava_massage.models import ClinicStaff

    db = current_app.extensions["db"]
    with db.session() as session:
        staff = session.scalar(
            select(ClinicStaff).where(ClinicStaff.email == email.strip().lower())
        )
        if staff is None:
            raise click.ClickException(f"no staff login {email!r}")
        link = _reset_link(staff)
        session.commit()
        click.echo(f"{staff.email} sets a new password here (valid 2 hours, once): {link}")


@clinic_group.command("remove-staff")
@click.argument("email")
@with_appcontext
def clinic_remove_staff(email: str) -> None:
    """Delete a staff login; every session of theirs ends at once."""
    from strava_massage.services import clinics
    from strava_massage.services.runner import InputError

    db = current_app.extensions["db"]
    with db.session() as session:
        try:
            staff = clinics.remove_staff(session, email)
        except InputError as e:
            raise _fail(e) from None
        session.commit()
        click.echo(f"{staff.email} removed; their sessions have ended")


@clinic_group.command("list")
@with_appcontext
def clinic_list() -> None:
    """List the clinics with their runners and staff counts."""
    from sqlalchemy import func, select

    from strava_massage.models import Athlete, Clinic, ClinicStaff

    with current_app.extensions["db"].session() as session:
        clinics = list(session.scalars(select(Clinic).order_by(Clinic.slug)))
        if not clinics:
            click.echo("no clinics yet: strava-massage clinic create --help")
        for c in clinics:
            runners = session.scalar(select(func.count()).where(Athlete.clinic_id == c.id))
            sharing = session.scalar(
                select(func.count()).where(
                    Athlete.clinic_id == c.id, Athlete.clinic_consent_at.is_not(None)
                )
            )
            staff = session.scalar(select(func.count()).where(ClinicStaff.clinic_id == c.id))
            click.echo(f"{c.slug}  {c.name}  runners={runners} sharing={sharing} staff={staff}")


COMMANDS = [
    db_group,
    serve,
    worker,
    demo,
    subscription_group,
    events_command,
    runner_group,
    advise_command,
    preview_command,
    keys_group,
    clinic_group,
]


def register(app: Flask) -> None:
    """Make the commands available as `flask --app strava_massage <command>`."""
    for command in COMMANDS:
        app.cli.add_command(command)


def _script_info() -> ScriptInfo:
    """Flask's handle on the app, built only when a command first needs it (never for help)."""
    info = ScriptInfo(set_debug_flag=False)

    def build() -> Flask:
        from strava_massage import create_app

        app = create_app()
        # Kept so a failure to connect can be explained with the database's address.
        info.data["database_url"] = app.config["DATABASE_URL"]
        ctx = click.get_current_context(silent=True)
        if ctx is not None:
            ctx.find_root().call_on_close(lambda: _release(app))
        return app

    info.create_app = build
    return info


def _release(app: Flask) -> None:
    """Close the command's database and queue connections when it ends."""
    app.extensions["tasks"].close()
    app.extensions["db"].dispose()


class SettingError(click.ClickException):
    """A configuration mistake or an unreachable database: one line, exit status 2."""

    exit_code = 2


class Commands(click.Group):
    """The console script's commands: the app is built lazily, and a configuration mistake or
    an unreachable database ends the command with one line instead of a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; settings problems and failed connections become one line."""
        if ctx.obj is None:
            ctx.obj = _script_info()
        try:
            return super().invoke(ctx)
        except ConfigError as e:
            raise SettingError(str(e)) from None
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise  # click's own endings (errors, --help): nothing to translate
        except Exception as e:
            from strava_massage.services.database import database_problem

            url = ctx.obj.data.get("database_url") if isinstance(ctx.obj, ScriptInfo) else None
            problem = database_problem(url, e) if url else None
            if problem is None:
                raise  # a real fault: its traceback is what a bug report needs
            raise SettingError(problem) from None


@click.group(
    "strava-massage",
    cls=Commands,
    invoke_without_command=True,
)
@click.version_option(
    __version__, "--version", prog_name="strava-massage", message="%(prog)s %(version)s"
)
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Legwork: recovery notes on a runner's Strava runs.

    Settings come from the environment or a .env file in the working directory (README,
    Configuration); the embedded database lives in ./instance unless DATA_DIR says otherwise.
    """
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


for _command in COMMANDS:
    cli.add_command(_command)


def main() -> None:
    """Console-script entry point."""
    cli.main(prog_name="strava-massage")
