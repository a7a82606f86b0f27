"""What became of an event: a kind that /metrics counts, and the details the log keeps."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class OutcomeKind(StrEnum):
    """What became of an event, without its details: what /metrics counts."""

    NOTE_WRITTEN = "note written"
    NOTE_IN_PRIVATE_NOTE = "note in private note"
    NOTE_PRESENT = "note already present"
    NOTE_ALREADY_WRITTEN = "ledger updated, note already written"
    NOTES_PAUSED = "counted, notes paused"
    NOT_A_RUN = "not a run"
    ACTIVITY_DELETED = "activity deleted"
    ACTIVITY_NOT_FOUND = "activity not found on Strava"
    OTHER_ATHLETES = "activity belongs to another athlete"
    HISTORY_IMPORTED = "history imported"
    ATHLETE_GONE = "athlete gone before their history was imported"
    ACCESS_CONFIRMED = "access still granted at Strava"
    ACCESS_REVOKED = "access revoked at Strava, all their data deleted"
    DEAUTHORIZED = "athlete deauthorized, all their data deleted"
    DEAUTH_NOT_CONFIRMED = "deauthorization not confirmed by Strava, ignored"
    ATHLETE_UPDATE_IGNORED = "athlete update ignored"
    UNKNOWN_ATHLETE = "unknown athlete"
    UNCONNECTED = "athlete has no token"
    ACCESS_REFUSED = "Strava refused the athlete's token (access revoked?)"
    LEFT_ALONE = "left alone"  # Strava refused the write: access revoked or run deleted
    CLAIM_LOST = "claim lost"
    DEFERRED = "deferred"
    RETRYING = "retrying"
    FAILED = "failed"
    NOT_CLAIMABLE = "not claimable (finished, deferred or held by another worker)"
    WAITING = "waiting: another event of this runner is in progress"


@dataclass(frozen=True)
class Outcome:
    """How one handling of an event ended: its kind, and what varies within it."""

    kind: OutcomeKind
    detail: str = ""

    def __str__(self) -> str:
        """The text stored on the event and logged: "note written (recovery_tip)"."""
        return f"{self.kind.value} ({self.detail})" if self.detail else self.kind.value
