"""A student's room socket, `/ws/rooms/{code}`: the instructor's live messages and the room's events.

The instructor's messages arrive as their own socket gets them (a frame's text, then its bytes),
the room's events as `{"type": "room", "event": …}`. A follower that falls behind gets the newest
frame, never a backlog (`Outbox`); control messages and events keep their order.
"""

import asyncio
import re

from fastapi import WebSocket, WebSocketDisconnect
from pydantic import ValidationError

from app.live.channel import explain_validation_error, incoming
from app.live.guard import BadMessage, parse_json
from app.live.outbox import Outbox
from app.rooms import envelope, records
from app.rooms.actions import STUDENT_MESSAGE, STUDENT_TYPES, Ballot, Fork, Report
from app.rooms.envelope import CONTROL, EVENT, FRAME, Envelope
from app.rooms.feed import feeds_of
from app.rooms.host import request
from app.rooms.records import SEAT_PATTERN, Keys

CLOSE_ROOM_CLOSED = 4410  # an application close code, after HTTP's 410 Gone


class Follower(Outbox):
    """What waits to go to one student: the room's messages, sorted by kind as they arrive."""

    def __init__(self, seat: str, timing: bool, student: bool):
        super().__init__()
        self.seat = seat
        self.timing = timing  # the bench measures lag: each frame's bytes start with its send time
        self.student = student  # False: the instructor's page watching its room
        # The instructor's page gets room events only, and the live messages while it projects
        # a student's run.
        self.live = student
        self.farewell: str | None = None  # the `closed` event: the socket closes once it is sent
        self.rejoin = asyncio.Event()  # a new instructor process asks who is there

    def deliver(self, message: Envelope) -> None:
        """Queues a message off the room's channel (called on the loop, for every student)."""
        if message.kind == EVENT:
            event = message.event
            if event.get("seat", self.seat) != self.seat:
                return  # meant for another student
            if event["event"] == "closed":
                self.farewell = message.text
            elif event["event"] == "host" and self.student:
                self.rejoin.set()
            elif event["event"] == "projected" and not self.student:
                self.live = event["number"] is not None
            self.send_text(message.text)
        elif not self.live:
            return
        elif message.kind == CONTROL:
            self.send_text(message.text)
        elif message.kind == FRAME:
            self.offer_frame(message.text, message.timed_data if self.timing else message.data)


async def follow(websocket: WebSocket, code: str, record: records.RoomRecord) -> None:
    """Serves an accepted room socket until the student leaves or the room closes."""
    broker, keys = websocket.app.state.live.broker, Keys(code)
    query = websocket.query_params
    seat = query.get("seat", "")
    seat = seat if re.fullmatch(SEAT_PATTERN, seat) else records.new_seat()
    # The instructor's page watches its room's events; it is not one of the followers.
    student = query.get("watch") != "1"
    follower = Follower(seat, query.get("timing") == "1", student=student)
    follower.live = student or record.projected is not None
    async with feeds_of(websocket.app).listen(code, follower.deliver):
        follower.send_text(envelope.event_text("welcome", seat=seat, room=record.public()))
        for key in keys.latest.values():  # where the instructor's run is now
            raw = await broker.get(key)
            if raw is not None:
                follower.deliver(Envelope.unpack(raw))
        tasks = [asyncio.create_task(_write(websocket, follower))]
        if student:
            follower.rejoin.set()
            tasks.append(asyncio.create_task(_join(follower, broker, code)))
        try:
            await _read(websocket, follower, broker, code)
        except WebSocketDisconnect:
            pass
        finally:
            for task in tasks:
                task.cancel()
            if student:
                await request(broker, code, "leave", seat=seat)


async def _join(follower: Follower, broker, code: str) -> None:
    """Tells the instructor's process the student is here: on joining, and when it asks."""
    while True:
        await follower.rejoin.wait()
        follower.rejoin.clear()
        await request(broker, code, "join", seat=follower.seat)


async def _write(websocket: WebSocket, follower: Follower) -> None:
    try:
        while True:
            control, frame = await follower.next_outgoing()
            if control is not None:
                await websocket.send_text(control)
                if control is follower.farewell:
                    await websocket.close(CLOSE_ROOM_CLOSED, "room closed")
                    return
                continue
            if frame[0]:  # a lab whose frame is all binary (the MLP's) has no text part
                await websocket.send_text(frame[0])
            await websocket.send_bytes(frame[1])
    except (WebSocketDisconnect, RuntimeError):
        pass  # the student went away; the reader notices


async def _read(websocket: WebSocket, follower: Follower, broker, code: str) -> None:
    async for text in incoming(websocket):
        try:
            message = STUDENT_MESSAGE.validate_python(parse_json(text or ""))
        except BadMessage as e:
            follower.send_error(str(e))
            continue
        except ValidationError as e:
            follower.send_error(*explain_validation_error(e, STUDENT_TYPES))
            continue
        match message:
            case Fork():
                await request(broker, code, "fork", seat=follower.seat)
            case Report(result=result):
                await request(
                    broker, code, "result", seat=follower.seat, result=result.model_dump()
                )
            case Ballot(option=option):
                await request(broker, code, "ballot", seat=follower.seat, option=option)
