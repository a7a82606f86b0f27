"""What an operator sees: /metrics in Prometheus's format and one parsable line per event stage."""

from __future__ import annotations

import logging
import re
import shlex
import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from strava_massage.logfmt import life_line

from .conftest import Stack


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, keyed by name and sorted labels."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_count_calls_outcomes_budget_and_queue(make_stack) -> None:
    stack: Stack = make_stack(STRAVA_RATE_LIMITS="100,1000")
    stack.subscribe()
    stack.start_worker()
    athlete = stack.sim.create_athlete()["id"]
    stack.connect(athlete)
    stack.sim.create_activity(athlete)
    stack.sim.create_activity(athlete, sport_type="Ride")
    # A GET fails, whichever run's it is: the worker may still be on the first run's PUT, and a
    # failed PUT would cost an extra GET on its retry.
    stack.sim.fail_next(1, status=500, method="GET")
    stack.sim.create_activity(athlete)
    stack.wait_idle(timeout=40)

    r = requests.get(stack.url + "/metrics", timeout=5)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/plain")
    samples = _samples(r.text)
    activity = (("endpoint", "/api/v3/activities/{id}"),)
    assert (
        samples[("legwork_strava_calls_total", (*activity, ("method", "GET"), ("status", "200")))]
        == 3
    )
    assert (
        samples[("legwork_strava_calls_total", (*activity, ("method", "GET"), ("status", "500")))]
        == 1
    )
    assert (
        samples[("legwork_strava_calls_total", (*activity, ("method", "PUT"), ("status", "200")))]
        == 2
    )
    outcomes = {
        labels[0][1]: v
        for (name, labels), v in samples.items()
        if name == "legwork_events_handled_total"
    }
    assert (
        outcomes["note written"] == 2 and outcomes["not a run"] == 1 and outcomes["retrying"] == 1
    )
    assert samples[("legwork_events", (("status", "done"),))] == 4  # three runs and the import
    left = samples[("legwork_strava_budget_remaining", (("window", "short"),))]
    assert 0 < left <= 100 - 6  # at least the six API calls above are spent
    assert samples[("legwork_queue_depth", ())] == 0


def test_metrics_behind_a_token_when_one_is_set(make_stack) -> None:
    stack: Stack = make_stack(METRICS_TOKEN="scrape-me")
    assert requests.get(stack.url + "/metrics", timeout=5).status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert requests.get(stack.url + "/metrics", headers=wrong, timeout=5).status_code == 401
    right = {"Authorization": "Bearer scrape-me"}
    assert requests.get(stack.url + "/metrics", headers=right, timeout=5).status_code == 200


def test_each_event_stage_is_one_key_value_line(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    athlete = stack.sim.create_athlete()["id"]
    stack.connect(athlete)
    stack.sim.fail_next(1, status=500)
    run = stack.sim.create_activity(athlete)
    stack.wait_idle(timeout=40)
    life = re.compile(r"^event \w+ event=\d+ athlete=\d+")
    # The worker logs how an event ended right after storing it: the line may trail the row.
    deadline = time.monotonic() + 5
    while (
        not any(
            f"object=activity:{run['id']}" in r.getMessage() and "status=done" in r.getMessage()
            for r in caplog.records
        )
        and time.monotonic() < deadline
    ):
        time.sleep(0.05)
    lines = [r.getMessage() for r in caplog.records if life.match(r.getMessage())]
    parsed = [dict(p.split("=", 1) for p in shlex.split(line)[2:]) for line in lines]
    stages = [line.split()[1] for line in lines]
    mine = [p for p in parsed if p.get("object") == f"activity:{run['id']}"]
    assert [p["athlete"] for p in mine] == [str(athlete)] * len(mine)
    assert {"received", "retrying", "processed"} <= set(stages)
    assert mine[-1]["outcome"] == "note written (recovery_tip)" or mine[-1]["outcome"].startswith(
        "note written"
    )
    assert all(p["event"].isdigit() for p in parsed)


@pytest.mark.parametrize(
    "value", ["plain", "two words", 'a "quoted" word', "back\\slash", "line\nbreak", ""]
)
def test_life_line_values_survive_a_round_trip(value: str) -> None:
    line = life_line("failed", 7, 9, reason=value, attempt=2)
    fields = dict(p.split("=", 1) for p in shlex.split(line.replace("\\n", "\n"), posix=True)[2:])
    assert fields == {"event": "7", "athlete": "9", "reason": value, "attempt": "2"}
