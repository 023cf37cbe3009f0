"""A room's record and names: its code, the instructor's token (only its hash is kept), its keys.

The record lives in the broker under `room:{code}` with a time to live (`room_idle_seconds`) that
the instructor's session refreshes; only that session's process writes it (`host.py`), so processes
never race on it. When the instructor is gone for that long, the record and every key of the room
expire: the room is closed.
"""

import hashlib
import hmac
import secrets
import time
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from app.broker import Broker

# No 0/O, 1/I/L: a code read off a projector is typed right. 31⁶ ≈ 887 million codes, with joins
# rate-limited per address, is unguessable for a lecture's hour.
ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 6
CODE_PATTERN = f"^[{ALPHABET}]{{{CODE_LENGTH}}}$"
SEAT_PATTERN = "^[0-9a-f]{16}$"
FORK_TTL_SECONDS = 120.0

Variable = Literal["hidden_size", "learning_rate", "seed"]
Seat = Annotated[str, Field(pattern=SEAT_PATTERN)]


class Experiment(BaseModel):
    """A class experiment: each student trains with one value of `variable` for `epochs` epochs."""

    variable: Variable
    values: list[Annotated[float, Field(ge=0, le=1_000_000)]] = Field(min_length=1, max_length=50)
    epochs: int = Field(20, ge=1, le=1000)
    # True: the room deals the values out in the order students join; False: each student picks.
    assign: bool = True


class Result(BaseModel):
    """A student's finished run in an experiment: the value it trained with and its final losses."""

    value: float = Field(ge=0, le=1_000_000)
    test_loss: float | None = Field(ge=0)  # None: the run diverged
    diverged: bool = False


class Vote(BaseModel):
    """ "Predict, then reveal": a question and its options; the tally shows once it is revealed."""

    question: str = Field(min_length=1, max_length=200)
    options: list[Annotated[str, Field(min_length=1, max_length=60)]] = Field(
        min_length=2, max_length=6
    )


class RoomRecord(BaseModel):
    code: str
    lab: str
    token_hash: str
    created: float
    instructor: bool = False  # the instructor's session is connected
    numbers: dict[str, int] = {}  # seat → the number the class sees it by (anonymised)
    present: set[str] = set()  # seats whose room socket is open
    paused: bool = False
    locked: bool = False
    config: dict | None = None  # the config pushed to all last
    experiment: Experiment | None = None
    assignments: dict[str, float] = {}  # seat → its value in the experiment
    results: dict[str, Result] = {}  # seat → its run's result
    vote: Vote | None = None
    vote_open: bool = False
    ballots: dict[str, int] = {}  # seat → option index
    own: set[str] = set()  # seats with a run of their own open in the room (a fork, an experiment)
    projected: int | None = None  # the number of the student whose run the class follows

    def tally(self) -> list[int] | None:
        """Votes per option, once the vote is closed (revealed); None while it is open."""
        if self.vote is None or self.vote_open:
            return None
        return [list(self.ballots.values()).count(i) for i in range(len(self.vote.options))]

    def seat_of(self, number: int | None) -> str | None:
        return next((seat for seat, n in self.numbers.items() if n == number), None)

    def public(self) -> dict:
        """What anyone with the code may know: no seats, no token."""
        return {
            "code": self.code,
            "lab": self.lab,
            "followers": len(self.present),
            "instructor": self.instructor,
            "paused": self.paused,
            "locked": self.locked,
            "config": self.config,
            "experiment": self.experiment.model_dump() if self.experiment else None,
            "results": [
                {"number": self.numbers.get(seat, 0), **r.model_dump()}
                for seat, r in self.results.items()
            ],
            "vote": self.vote.model_dump() if self.vote else None,
            "vote_open": self.vote_open,
            "votes": len(self.ballots),
            "tally": self.tally(),
            "projected": self.projected,
            "projectable": sorted(self.numbers[seat] for seat in self.own if seat in self.numbers),
        }


def new_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


def new_token() -> str:
    return secrets.token_urlsafe(32)


def new_seat() -> str:
    return secrets.token_hex(8)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_matches(record: RoomRecord, token: str | None) -> bool:
    """The instructor's token, compared in constant time (as hashes: equal lengths always)."""
    return token is not None and hmac.compare_digest(token_hash(token), record.token_hash)


class Keys:
    """A room's keys and channels in the broker."""

    def __init__(self, code: str):
        self.record = f"room:{code}"
        self.channel = f"room:{code}:live"  # live messages and room events, to every student
        self.host = f"room:{code}:host"  # requests to the instructor's process
        # The instructor session's latest state, data and frame, for a student who joins later.
        self.latest = {kind: f"room:{code}:latest:{kind}" for kind in ("state", "data", "frame")}

    def fork(self, snapshot: str) -> str:
        return f"{self.record}:fork:{snapshot}"


async def load(broker: Broker, code: str) -> RoomRecord | None:
    raw = await broker.get(Keys(code).record)
    return None if raw is None else RoomRecord.model_validate_json(raw)


async def save(broker: Broker, record: RoomRecord, ttl: float) -> None:
    await broker.put(Keys(record.code).record, record.model_dump_json().encode(), ttl)


async def create(broker: Broker, lab: str, ttl: float) -> tuple[RoomRecord, str]:
    """A new room for `lab` and its instructor's token (returned once, never stored)."""
    while True:
        code = new_code()
        if await broker.get(Keys(code).record) is None:
            break
    token = new_token()
    record = RoomRecord(code=code, lab=lab, token_hash=token_hash(token), created=time.time())
    await save(broker, record, ttl)
    return record, token


async def forget(broker: Broker, code: str) -> None:
    """Deletes every key of the room (a fork's snapshot expires on its own)."""
    keys = Keys(code)
    for key in (keys.record, *keys.latest.values()):
        await broker.delete(key)
