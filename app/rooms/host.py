"""A lab socket's link to a room: the instructor's session hosts it; a student's own session (a
fork, an experiment's run) obeys its lock and pause and may be projected to the class.

The instructor's page hosts a room by a message on its lab socket, `{"type": "host", "room": CODE,
"token": TOKEN}` (never in the socket's address, which access logs keep), at any time: the run goes
on and the class gets its current state, data and frame. Everything the session sends from then on
is also published on the room's channel (frames at the session's rate; the broker drops a slow
follower's oldest, the instructor is never held), and this process applies the room's requests and
keeps its record alive.

`/ws/{slug}?room=CODE&seat=SEAT[&fork=ID]` is a student's own session in the room, going on from
the instructor's run as it was when they forked (with `fork`) or from step 0.
"""

import asyncio
import json
import re
import secrets
from collections import deque
from contextlib import AsyncExitStack, asynccontextmanager

from pydantic import ValidationError
from starlette.websockets import WebSocket

from app.broker import Broker
from app.live.guard import BadMessage, parse_json
from app.rooms import actions, envelope, records
from app.rooms.feed import feeds_of
from app.rooms.records import (
    CODE_PATTERN,
    FORK_TTL_SECONDS,
    SEAT_PATTERN,
    Keys,
    Result,
    RoomRecord,
)

SNAPSHOT_BYTES = 12
SNAPSHOT_PATTERN = "^[A-Za-z0-9_-]{16}$"  # token_urlsafe(12)
HOST_MESSAGE = '"host"'  # in a lab socket's message that may host a room: parsed only then
# What a student's own session may not do while the room is locked, or paused by the instructor.
LOCKED_TYPES = frozenset({"config", "play", "step", "reset", "set_weight"})
PAUSED_TYPES = frozenset({"play", "step"})


class Relay:
    """Publishes a session's messages on the room's channel: controls in order, of its frames the
    newest when free; keeps the latest state, data and frame under the room's keys for late
    joiners. The session's `tap` feeds it (on the loop, never awaited)."""

    def __init__(self, broker: Broker, keys: Keys, ttl: float, on_state=None):
        self.broker, self.keys, self.ttl = broker, keys, ttl
        self.on_state = on_state  # called with each `state` message published
        self.controls: deque[str] = deque()
        self.frame: tuple[str, bytes] | None = None
        self.wake = asyncio.Event()
        self.latest: dict[str, bytes] = {}  # kind → the envelope a late joiner gets first

    def tap(self, text: str, data: bytes | None) -> None:
        if data is None:
            self.controls.append(text)
        else:
            self.frame = (text, data)  # the newest frame wins, as on the session's own socket
        self.wake.set()

    async def run(self, publishing=lambda: True) -> None:
        while publishing():
            while not self.controls and self.frame is None:
                self.wake.clear()
                await self.wake.wait()
            if self.controls:
                text = self.controls.popleft()
                message = json.loads(text)
                kind = message.get("type")
                if kind == "error":
                    continue  # the session's own mistakes are not the class's
                raw = envelope.live(text, None)
                if kind == "state" and self.on_state is not None:
                    await self.on_state(message)
            else:
                (text, data), self.frame = self.frame, None
                kind, raw = "frame", envelope.live(text, data)
            if kind in self.keys.latest:
                self.latest[kind] = raw
                await self.broker.put(self.keys.latest[kind], raw, self.ttl)
            await self.broker.publish(self.keys.channel, raw)

    async def refresh(self) -> None:
        for kind, raw in self.latest.items():
            await self.broker.put(self.keys.latest[kind], raw, self.ttl)


def show_run(session) -> None:
    """The session's state, data and a frame of where it is, without training a step."""
    session.send_state()
    session.send_data()
    session.want_frame()


class RoomLink:
    """A lab socket's part in a room: none, the instructor's (`host`), or a student's own session.

    `async with RoomLink(websocket, session) as link:` around the socket's reader, which gives
    every message to `await link.took(text)` first: True means the room took it (a `host`
    message, or one the room's lock refuses) and the session must not see it.
    """

    def __init__(self, websocket: WebSocket, session):
        self.websocket, self.session = websocket, session
        self.broker = websocket.app.state.live.broker
        self.settings = websocket.app.state.settings
        self.lab = websocket.path_params.get("slug")
        self.host: Host | None = None
        self.student: Student | None = None
        self.stack = AsyncExitStack()

    async def __aenter__(self) -> "RoomLink":
        query = self.websocket.query_params
        code = query.get("room")
        if code is not None:
            record = await self.room(code)
            if record is not None:
                if "fork" in query:
                    await adopt(self.broker, self.session, code, query["fork"])
                seat = query.get("seat", "")
                seat = seat if re.fullmatch(SEAT_PATTERN, seat) else records.new_seat()
                self.student = Student(self, record, seat)
                await self.stack.enter_async_context(self.student.linked())
        return self

    async def __aexit__(self, *exc) -> None:
        await self.stack.aclose()

    async def room(self, code: str) -> RoomRecord | None:
        known = re.fullmatch(CODE_PATTERN, code) is not None
        record = await records.load(self.broker, code) if known else None
        if record is None or record.lab != self.lab:
            self.session.send_error(
                f"No {self.lab} room has the code {code!r}: it may have closed.", "room"
            )
            return None
        return record

    async def took(self, text: str) -> bool:
        if self.student is not None:
            return self.student.refuses(text)
        if HOST_MESSAGE not in text:
            return False
        try:
            message = parse_json(text)
        except BadMessage:
            return False  # the session words the error
        if not isinstance(message, dict) or message.get("type") != "host":
            return False
        await self.host_room(message)
        return True

    async def host_room(self, message: dict) -> None:
        """`{"type": "host", "room": CODE, "token": TOKEN}`: this session hosts the room, its run
        going on as it is; sent again, the class gets the run's state, data and frame again."""
        code, token = message.get("room"), message.get("token")
        if not isinstance(code, str) or not isinstance(token, str):
            self.session.send_error(
                'A host message needs "room" (the code) and "token" (the instructor\'s).', "room"
            )
            return
        if self.host is not None:
            if self.host.record.code == code and not self.host.closed:
                show_run(self.session)
            else:
                self.session.send_error(f"This session already hosts room {code!r}.", "room")
            return
        record = await self.room(code)
        if record is None:
            return
        if not records.token_matches(record, token):
            self.session.send_error("This room's instructor token is not the one given.", "token")
            return
        self.host = Host(self.broker, self.settings, self.session, record)
        await self.stack.enter_async_context(self.host.running())


async def adopt(broker: Broker, session, code: str, snapshot: str) -> None:
    known = re.fullmatch(SNAPSHOT_PATTERN, snapshot) is not None
    raw = await broker.get(Keys(code).fork(snapshot)) if known else None
    if raw is None or not hasattr(session, "adopt"):
        session.send_error("That fork has expired: fork again from the room.", "fork")
        return
    session.adopt(json.loads(raw))


class Host:
    """The instructor's session in a room: relays its messages, applies the room's requests."""

    def __init__(self, broker: Broker, settings, session, record: RoomRecord):
        self.broker = broker
        self.ttl = settings.room_idle_seconds
        self.session = session
        self.record = record
        self.keys = Keys(record.code)
        self.relay = Relay(broker, self.keys, self.ttl, on_state=self.on_state)
        self.closed = False  # the instructor closed the room: nothing may write it again

    @asynccontextmanager
    async def running(self):
        self.record.instructor = True
        await self.save(envelope.event("instructor", connected=True))
        async with self.broker.subscribe(self.keys.host) as requests:
            self.session.tap = self.relay.tap
            show_run(self.session)  # where the run is now: it is not restarted
            # Students who followed before this process hosted say who they are again.
            await self.broker.publish(self.keys.channel, envelope.event("host"))
            tasks = [
                asyncio.create_task(self.relay.run(lambda: not self.closed)),
                asyncio.create_task(self.serve(requests)),
                asyncio.create_task(self.keep_alive()),
            ]
            try:
                yield
            finally:
                self.session.tap = None
                for task in tasks:
                    task.cancel()
                # Even when the socket's task is cancelled, the class hears the instructor left.
                await asyncio.shield(self.leave())

    async def on_state(self, state: dict) -> None:
        """The instructor plays again after a pause-all: students may play again too."""
        if state.get("running") and self.record.paused:
            self.record.paused = False
            await self.save(envelope.event("resumed"))

    async def leave(self) -> None:
        if not self.closed and await records.load(self.broker, self.record.code) is not None:
            self.record.instructor = False
            self.record.projected = None
            await self.save(envelope.event("instructor", connected=False))

    async def save(self, *events: bytes) -> None:
        """Writes the record (its time to live starts again), then tells the students."""
        if self.closed:
            return
        await records.save(self.broker, self.record, self.ttl)
        for event in events:
            await self.broker.publish(self.keys.channel, event)

    async def keep_alive(self) -> None:
        """Refreshes the room's keys well before they expire, while the instructor is here."""
        while not self.closed:
            await asyncio.sleep(min(self.ttl / 3, 30.0))
            if await records.load(self.broker, self.record.code) is None:
                self.closed = True  # deleted (or expired): never written again
                return
            await self.save()
            await self.relay.refresh()

    async def serve(self, requests) -> None:
        async for raw in requests:
            request = json.loads(raw)
            if request["op"] == "close":
                self.closed = True
                self.session.tap = None
                self.session.send_error("The room was closed.", "room")
                return
            try:
                events = await self.apply(request)
            except (ValidationError, KeyError, TypeError, ValueError):
                continue  # the request came from our own code: a bad one is dropped, not fatal
            if events:
                await self.save(*events)

    async def apply(self, request: dict) -> list[bytes]:
        record, seat = self.record, request.get("seat")
        match request["op"]:
            case "action":
                action = actions.ACTION.validate_python(request["action"])
                if isinstance(action, actions.PauseAll):
                    self.session.pause()
                if isinstance(action, actions.Project):
                    return self.project(action.number)
                return actions.apply_action(record, action)
            case "join":
                return actions.join(record, seat)
            case "leave":
                return actions.leave(record, seat)
            case "own":
                record.own.add(seat) if request["on"] else record.own.discard(seat)
                events = [envelope.event("projectable", numbers=record.public()["projectable"])]
                if not request["on"] and record.seat_of(record.projected) == seat:
                    events += self.project(None)
                return events
            case "result":
                return actions.report(record, seat, Result.model_validate(request["result"]))
            case "ballot":
                return actions.ballot(record, seat, int(request["option"]))
            case "fork":
                return [await self.fork(seat)] if hasattr(self.session, "fork") else []
        return []

    def project(self, number: int | None) -> list[bytes]:
        """The class follows student `number`'s own run instead of the instructor's (None: the
        instructor's again). The instructor's session goes on, unpublished meanwhile."""
        record = self.record
        before = record.seat_of(record.projected)
        seat = record.seat_of(number)
        if number is not None and seat not in record.own:
            return []  # that student has no run of their own (checked by the route, raced here)
        record.projected = number
        events = []
        if before is not None and before != seat:
            events.append(envelope.event("project", seat=before, on=False))
        events.append(envelope.event("projected", number=number))
        if seat is None:
            self.session.tap = self.relay.tap
            show_run(self.session)
        else:
            self.session.tap = None
            events.append(envelope.event("project", seat=seat, on=True))
        return events

    async def fork(self, seat: str) -> bytes:
        """Stores the run as it is now for the student who asked; tells them where it is."""
        snapshot = secrets.token_urlsafe(SNAPSHOT_BYTES)
        step, state = self.session.step, json.dumps(self.session.fork()).encode()
        await self.broker.put(self.keys.fork(snapshot), state, FORK_TTL_SECONDS)
        return envelope.event("forked", seat=seat, snapshot=snapshot, step=step)


class Student:
    """A student's own session in a room: the room's lock and pause hold for it (the server
    refuses what they forbid, whatever the page sends), and the instructor may project it."""

    def __init__(self, link: RoomLink, record: RoomRecord, seat: str):
        self.link, self.session, self.seat = link, link.session, seat
        self.broker, self.code, self.keys = link.broker, record.code, Keys(record.code)
        self.locked, self.paused = record.locked, record.paused
        self.experiment = record.experiment is not None
        self.relay: Relay | None = None
        self.relaying: asyncio.Task | None = None
        self.announcing: asyncio.Task | None = None

    @asynccontextmanager
    async def linked(self):
        code = self.code
        async with feeds_of(self.link.websocket.app).listen(code, self.deliver):
            await request(self.broker, code, "own", seat=self.seat, on=True)
            try:
                yield
            finally:
                self.project(False)
                await asyncio.shield(request(self.broker, code, "own", seat=self.seat, on=False))

    def deliver(self, message: envelope.Envelope) -> None:
        if message.kind != envelope.EVENT:
            return
        event = message.event
        if event.get("seat", self.seat) != self.seat:
            return
        match event["event"]:
            case "locked":
                self.locked = event["locked"]
            case "paused":
                self.paused = True
                if self.session.running:
                    self.session.pause()
            case "resumed":
                self.paused = False
            case "experiment":
                self.experiment = event["experiment"] is not None
            case "project":
                self.project(event["on"])
            case "host":  # a new instructor's process: it learns of this run again
                self.announcing = asyncio.create_task(
                    request(self.broker, self.code, "own", seat=self.seat, on=True)
                )
            case "closed":
                self.locked = self.paused = False

    def refuses(self, text: str) -> bool:
        """True after telling the page why the room forbids this message (nothing else is read)."""
        if not (self.locked and not self.experiment) and not self.paused:
            return False
        try:
            message = parse_json(text)
        except BadMessage:
            return False
        kind = message.get("type") if isinstance(message, dict) else None
        field = "room"
        if self.paused and kind in PAUSED_TYPES:
            why = "The instructor paused the room: Play comes back when the instructor plays on."
        elif self.locked and not self.experiment and kind in LOCKED_TYPES:
            if kind == "config":
                changed = self.changed(message)
                if not changed:
                    return False  # the same config again (a page that reconnects sends it whole)
                field = changed[0]  # the page puts the session's value back
            why = "The instructor locked the room's controls: wait until they unlock them."
        else:
            return False
        self.session.send_error(f"{why} ({kind} refused)", field)
        if kind != "config":
            self.session.send_state()  # the page shows the run as it is: not playing
        return True

    def changed(self, message: dict) -> list[str]:
        """The config fields `message` would change."""
        config = self.session.config.model_dump(mode="json")
        return [k for k, v in message.items() if k != "type" and config.get(k, v) != v]

    def project(self, on: bool) -> None:
        """Starts (or stops) publishing this session to the class in the instructor's place."""
        if on and self.relay is None:
            settings = self.link.settings
            self.relay = Relay(self.broker, self.keys, settings.room_idle_seconds)
            self.session.tap = self.relay.tap
            self.relaying = asyncio.create_task(self.relay.run())
            show_run(self.session)
        elif not on and self.relay is not None:
            self.session.tap = None
            self.relay = None
            if self.relaying is not None:
                self.relaying.cancel()
                self.relaying = None


async def request(broker: Broker, code: str, op: str, **fields) -> None:
    """Sends a request to the room's instructor process (whichever process that is)."""
    await broker.publish(Keys(code).host, json.dumps({"op": op, **fields}).encode())
