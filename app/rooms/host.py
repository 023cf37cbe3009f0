"""A lab socket's link to a room: the instructor's session hosts it; a student's fork adopts a run.

`/ws/{slug}?room=CODE&token=TOKEN` is the instructor's session: everything it sends is also
published on the room's channel (frames at the session's rate; the broker drops a slow follower's
oldest, the instructor is never held), and this process applies the room's requests and keeps its
record alive. `/ws/{slug}?room=CODE&fork=ID` is a student's own session going on from the
instructor's run as it was when they forked.
"""

import asyncio
import json
import re
import secrets
from collections import deque
from contextlib import asynccontextmanager

from pydantic import ValidationError
from starlette.websockets import WebSocket

from app.broker import Broker
from app.rooms import actions, envelope, records
from app.rooms.records import CODE_PATTERN, FORK_TTL_SECONDS, Keys, Result, RoomRecord

SNAPSHOT_BYTES = 12
SNAPSHOT_PATTERN = "^[A-Za-z0-9_-]{16}$"  # token_urlsafe(12)


@asynccontextmanager
async def room_link(websocket: WebSocket, session):
    """Links a lab socket's session to the room its query names, for the `async with` body."""
    query = websocket.query_params
    code = query.get("room")
    if code is None:
        yield
        return
    runtime = websocket.app.state.live
    lab = websocket.path_params.get("slug")
    known = re.fullmatch(CODE_PATTERN, code) is not None
    record = await records.load(runtime.broker, code) if known else None
    if record is None or record.lab != lab:
        session.send_error(f"No {lab} room has the code {code!r}: it may have closed.", "room")
        yield
    elif "fork" in query:
        await adopt(runtime.broker, session, code, query["fork"])
        yield
    elif not records.token_matches(record, query.get("token")):
        session.send_error("This room's instructor token is not the one given.", "token")
        yield
    else:
        host = Host(runtime.broker, websocket.app.state.settings, session, record)
        async with host.running():
            yield


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
        self.controls: deque[str] = deque()
        self.frame: tuple[str, bytes] | None = None
        self.wake = asyncio.Event()
        self.latest: dict[str, bytes] = {}  # kind → the envelope a late joiner gets first
        self.closed = False  # the instructor closed the room: nothing may write it again

    def tap(self, text: str, data: bytes | None) -> None:
        """Called for every message the session sends (on the loop): queued, never awaited."""
        if data is None:
            self.controls.append(text)
        else:
            self.frame = (text, data)  # the newest frame wins, as on the instructor's socket
        self.wake.set()

    @asynccontextmanager
    async def running(self):
        self.record.instructor = True
        await self.save(envelope.event("instructor", connected=True))
        self.session.tap = self.tap
        self.session.send_state()  # a follower's first state
        self.session.send_data()
        async with self.broker.subscribe(self.keys.host) as requests:
            # Students who followed before this process hosted say who they are again.
            await self.broker.publish(self.keys.channel, envelope.event("host"))
            tasks = [
                asyncio.create_task(self.relay()),
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

    async def leave(self) -> None:
        if not self.closed and await records.load(self.broker, self.record.code) is not None:
            self.record.instructor = False
            await self.save(envelope.event("instructor", connected=False))

    async def save(self, *events: bytes) -> None:
        """Writes the record (its time to live starts again), then tells the students."""
        if self.closed:
            return
        await records.save(self.broker, self.record, self.ttl)
        for event in events:
            await self.broker.publish(self.keys.channel, event)

    async def relay(self) -> None:
        """Publishes the session's messages in order; of its frames, the newest when free."""
        while not self.closed:
            while not self.controls and self.frame is None:
                self.wake.clear()
                await self.wake.wait()
            if self.controls:
                text = self.controls.popleft()
                kind = json.loads(text).get("type")
                if kind == "error":
                    continue  # the instructor's own mistakes are not the class's
                raw = envelope.live(text, None)
                if kind in self.keys.latest:
                    self.latest[kind] = raw
                    await self.broker.put(self.keys.latest[kind], raw, self.ttl)
            else:
                (text, data), self.frame = self.frame, None
                raw = envelope.live(text, data)
                self.latest["frame"] = raw
                await self.broker.put(self.keys.latest["frame"], raw, self.ttl)
            await self.broker.publish(self.keys.channel, raw)

    async def keep_alive(self) -> None:
        """Refreshes the room's keys well before they expire, while the instructor is here."""
        while not self.closed:
            await asyncio.sleep(min(self.ttl / 3, 30.0))
            if await records.load(self.broker, self.record.code) is None:
                self.closed = True  # deleted (or expired): never written again
                return
            await self.save()
            for kind, raw in self.latest.items():
                await self.broker.put(self.keys.latest[kind], raw, self.ttl)

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
                return actions.apply_action(record, action)
            case "join":
                return actions.join(record, seat)
            case "leave":
                return actions.leave(record, seat)
            case "result":
                return actions.report(record, seat, Result.model_validate(request["result"]))
            case "ballot":
                return actions.ballot(record, seat, int(request["option"]))
            case "fork":
                return [await self.fork(seat)] if hasattr(self.session, "fork") else []
        return []

    async def fork(self, seat: str) -> bytes:
        """Stores the run as it is now for the student who asked; tells them where it is."""
        snapshot = secrets.token_urlsafe(SNAPSHOT_BYTES)
        step, state = self.session.step, json.dumps(self.session.fork()).encode()
        await self.broker.put(self.keys.fork(snapshot), state, FORK_TTL_SECONDS)
        return envelope.event("forked", seat=seat, snapshot=snapshot, step=step)


async def request(broker: Broker, code: str, op: str, **fields) -> None:
    """Sends a request to the room's instructor process (whichever process that is)."""
    await broker.publish(Keys(code).host, json.dumps({"op": op, **fields}).encode())
