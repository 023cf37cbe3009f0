"""What moves a room: the instructor's actions and the students' requests, applied to its record.

Only the instructor's process applies them (`host.py`), one at a time, so the record never races
between processes. Each returns the events every student's page gets.
"""

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from app.rooms import envelope
from app.rooms.records import Experiment, Result, RoomRecord, Seat, Vote


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class PushConfig(Strict):
    """Every student's own session takes these config fields (a partial config of the lab)."""

    action: Literal["push_config"]
    config: dict


class PauseAll(Strict):
    """The instructor's run and every student's own run pause."""

    action: Literal["pause"]


class Lock(Strict):
    """Students' controls are disabled (locked) or enabled again."""

    action: Literal["lock"]
    locked: bool


class Project(Strict):
    """The class follows student `number`'s own run (anonymised: by number) instead of the
    instructor's; `null`: the instructor's again."""

    action: Literal["project"]
    number: int | None = Field(ge=1)


class StartExperiment(Strict):
    action: Literal["start_experiment"]
    experiment: Experiment


class StopExperiment(Strict):
    action: Literal["stop_experiment"]


class OpenVote(Strict):
    action: Literal["open_vote"]
    vote: Vote


class RevealVote(Strict):
    """Closes the vote and shows everyone the tally."""

    action: Literal["reveal_vote"]


Action = Annotated[
    PushConfig
    | PauseAll
    | Lock
    | Project
    | StartExperiment
    | StopExperiment
    | OpenVote
    | RevealVote,
    Field(discriminator="action"),
]
ACTION = TypeAdapter(Action)


# What a student's room socket may send.
class Fork(Strict):
    """Asks for the instructor's run as it is now, to go on from it in one's own session."""

    type: Literal["fork"]


class Report(Strict):
    """A student's finished run in the class experiment."""

    type: Literal["result"]
    result: Result


class Ballot(Strict):
    type: Literal["ballot"]
    option: int = Field(ge=0, le=5)


StudentMessage = Annotated[Fork | Report | Ballot, Field(discriminator="type")]
STUDENT_MESSAGE = TypeAdapter(StudentMessage)
STUDENT_TYPES = "fork, result, ballot"


def vote_event(record: RoomRecord) -> bytes:
    return envelope.event(
        "vote",
        vote=record.vote.model_dump() if record.vote else None,
        open=record.vote_open,
        votes=len(record.ballots),
        tally=record.tally(),
    )


def assign(record: RoomRecord, seat: str) -> list[bytes]:
    """Deals the student the experiment's next value (round robin, in the order they joined)."""
    experiment = record.experiment
    if experiment is None or not experiment.assign or seat in record.assignments:
        return []
    value = experiment.values[len(record.assignments) % len(experiment.values)]
    record.assignments[seat] = value
    return [envelope.event("assigned", seat=seat, value=value)]


def apply_action(record: RoomRecord, action: BaseModel) -> list[bytes]:
    """Applies one of the instructor's actions (already authorised) to the record."""
    match action:
        case PushConfig(config=config):
            record.config = config
            return [envelope.event("config", config=config)]
        case PauseAll():
            record.paused = True
            return [envelope.event("paused")]
        case Lock(locked=locked):
            record.locked = locked
            return [envelope.event("locked", locked=locked)]
        case StartExperiment(experiment=experiment):
            record.experiment, record.assignments, record.results = experiment, {}, {}
            events = [envelope.event("experiment", experiment=experiment.model_dump())]
            for seat in sorted(record.present, key=record.numbers.get):
                events += assign(record, seat)
            return events
        case StopExperiment():
            record.experiment, record.assignments = None, {}
            return [envelope.event("experiment", experiment=None)]
        case OpenVote(vote=vote):
            record.vote, record.vote_open, record.ballots = vote, True, {}
            return [vote_event(record)]
        case RevealVote():
            record.vote_open = False
            return [vote_event(record)]
    raise TypeError(f"not an action: {action!r}")


def join(record: RoomRecord, seat: Seat) -> list[bytes]:
    """A student's room socket opened (or the instructor's process asked every one to say so)."""
    record.numbers.setdefault(seat, len(record.numbers) + 1)
    record.present.add(seat)
    return [
        envelope.event("followers", count=len(record.present)),
        envelope.event("you", seat=seat, number=record.numbers[seat]),
        *assign(record, seat),
    ]


def leave(record: RoomRecord, seat: Seat) -> list[bytes]:
    if seat not in record.present:
        return []
    record.present.discard(seat)
    return [envelope.event("followers", count=len(record.present))]


def report(record: RoomRecord, seat: Seat, result: Result) -> list[bytes]:
    """A run of the experiment ended: its result joins the class's plot (without the seat)."""
    if record.experiment is None:
        return []
    record.results[seat] = result
    number = record.numbers.get(seat, 0)
    return [envelope.event("result", result={"number": number, **result.model_dump()})]


def ballot(record: RoomRecord, seat: Seat, option: int) -> list[bytes]:
    if record.vote is None or not record.vote_open or option >= len(record.vote.options):
        return []
    record.ballots[seat] = option
    return [vote_event(record)]
