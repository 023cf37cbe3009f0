"""`/api/rooms`: open, look up, act on and close a classroom room; its socket; the join page."""

import io
import math
import re
import time
from typing import Annotated

import segno
from fastapi import APIRouter, Header, HTTPException, Path, Request, WebSocket, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field, ValidationError

from app.labs import all_labs, find_lab
from app.live.guard import refuse_foreign_origin
from app.request_limits import StrictJSONRoute, unprocessable
from app.rooms import actions, envelope, records
from app.rooms.follow import follow
from app.rooms.host import request as host_request
from app.rooms.records import CODE_LENGTH, CODE_PATTERN, Keys, RoomRecord

router = APIRouter(prefix="/api/rooms", tags=["rooms"], route_class=StrictJSONRoute)
pages = APIRouter(tags=["rooms"])
Code = Annotated[str, Path(pattern=CODE_PATTERN, description="The room's join code.")]
CLOSE_NO_SUCH_ROOM = 4404


class NewRoom(BaseModel):
    lab: str = Field(description="The live lab the room follows, e.g. mlp.", max_length=40)


class RoomCreated(BaseModel):
    code: str = Field(description="Six characters to type, from an alphabet without 0/O, 1/I/L.")
    lab: str
    link: str = Field(description="The page a student opens to follow the room.")
    token: str = Field(
        description="The instructor's token, shown this once: send it as `Authorization: "
        "Bearer …` to act on the room, and in a `host` message on the lab socket to host it."
    )
    qr_svg: str = Field(description="The link as a QR code, an SVG document.")


class RoomFacts(BaseModel):
    """What anyone with the code may know of a room."""

    code: str
    lab: str
    followers: int
    instructor: bool = Field(description="The instructor's session is connected.")
    paused: bool
    locked: bool
    config: dict | None
    experiment: dict | None
    results: list[dict]
    vote: dict | None
    vote_open: bool
    votes: int
    tally: list[int] | None = Field(description="Votes per option, once revealed.")
    projected: int | None = Field(description="The student whose run the class follows.")
    projectable: list[int] = Field(description="Students with a run of their own to project.")


async def join_retry_after(app, address: str) -> int | None:
    """None if this join attempt from `address` may go on, else the seconds until one may.

    A token bucket per address (`room_joins_per_minute`, bursts of `room_join_burst`) kept in the
    broker, so every server process counts the same attempts; its key expires once the bucket is
    full again: an address that stops trying leaves nothing behind.
    """
    settings = app.state.settings
    interval = 60 / settings.room_joins_per_minute
    broker = app.state.live.broker
    wait = await broker.throttle(f"room-joins:{address}", interval, settings.room_join_burst)
    return None if wait == 0 else max(1, math.ceil(wait))


async def _check_joins(request: Request) -> None:
    address = request.client.host if request.client else "unknown"
    wait = await join_retry_after(request.app, address)
    if wait is not None:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"Too many room attempts from this address: try again in {wait} s.",
            headers={"Retry-After": str(wait)},
        )


async def _room(request: Request, code: str) -> RoomRecord:
    record = await records.load(request.app.state.live.broker, code)
    if record is None:
        raise HTTPException(404, f"No room has the code {code!r}: it may have closed.")
    return record


def _bearer(authorization: str | None) -> str | None:
    scheme, _, token = (authorization or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


async def _instructor(request: Request, code: str, authorization: str | None) -> RoomRecord:
    """The room, if the request carries its instructor's token (401 without one, 403 if wrong)."""
    record = await _room(request, code)
    token = _bearer(authorization)
    if token is None:
        raise HTTPException(
            401,
            "Send the room's instructor token as `Authorization: Bearer <token>`.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not records.token_matches(record, token):
        raise HTTPException(403, "This is not the instructor token of this room.")
    return record


@router.post("", status_code=201, response_model=RoomCreated)
async def open_room(body: NewRoom, request: Request) -> RoomCreated:
    """Opens a room for a live lab. The instructor's page then sends `{"type": "host", "room":
    CODE, "token": TOKEN}` on its lab socket: everything its session sends goes to the room."""
    await _check_joins(request)
    lab = find_lab(body.lab)
    if lab is None or lab.session is None:
        live = ", ".join(lab.slug for lab in all_labs() if lab.session is not None)
        raise unprocessable(
            f"lab must be a live lab: one of {live}. Received: lab={body.lab!r}", ("body", "lab")
        )
    settings = request.app.state.settings
    record, token = await records.create(
        request.app.state.live.broker, lab.slug, settings.room_idle_seconds
    )
    link = room_link(request, record)
    return RoomCreated(code=record.code, lab=lab.slug, link=link, token=token, qr_svg=qr_svg(link))


def room_link(request: Request, record: RoomRecord) -> str:
    return f"{str(request.base_url).rstrip('/')}/labs/{record.lab}?room={record.code}"


QR_STYLE = {"scale": 4, "border": 2, "dark": "#1b1f24", "light": "#fff"}


def qr_svg(link: str) -> str:
    return segno.make(link, error="m").svg_inline(**QR_STYLE)


@router.get(
    "/{code}/qr",
    response_class=Response,
    responses={200: {"content": {"image/svg+xml": {}}, "description": "The QR code, SVG."}},
)
async def room_qr(code: Code, request: Request) -> Response:
    """The room's link as a QR code (an SVG image): the instructor's page shows it again after a
    reload (a join attempt: rate-limited per address)."""
    await _check_joins(request)
    record = await _room(request, code)
    svg = io.BytesIO()  # a standalone SVG document (with its namespace), for an <img>
    segno.make(room_link(request, record), error="m").save(svg, kind="svg", **QR_STYLE)
    return Response(svg.getvalue(), media_type="image/svg+xml")


@router.get("/{code}", response_model=RoomFacts)
async def room_facts(code: Code, request: Request) -> dict:
    """The room's public facts: its lab, followers, state, experiment results, vote (a join
    attempt: rate-limited per address)."""
    await _check_joins(request)
    return (await _room(request, code)).public()


@router.delete("/{code}", status_code=204)
async def close_room(
    code: Code, request: Request, authorization: Annotated[str | None, Header()] = None
) -> Response:
    """Closes the room (instructor only): every student is told, every key goes."""
    await _instructor(request, code, authorization)
    broker = request.app.state.live.broker
    await host_request(broker, code, "close")  # first: the instructor's process stops writing
    await records.forget(broker, code)
    await broker.publish(
        Keys(code).channel, envelope.event("closed", reason="The room was closed.")
    )
    return Response(status_code=204)


@router.post("/{code}/actions", status_code=202)
async def act(
    code: Code,
    request: Request,
    action: actions.Action,
    authorization: Annotated[str | None, Header()] = None,
) -> dict:
    """One of the instructor's actions (instructor only), applied by the instructor's session:
    push a config to all, pause all, lock the controls, project a student's run, start or stop a
    class experiment, open or reveal a vote. Students get the room event it makes."""
    record = await _instructor(request, code, authorization)
    if not record.instructor:
        raise HTTPException(409, "The instructor's lab page is not connected to the room: open it.")
    projectable = record.public()["projectable"]
    if isinstance(action, actions.Project) and action.number not in (None, *projectable):
        raise HTTPException(
            409,
            f"Student {action.number} has no run of their own to project (they follow you): "
            "they fork or run the experiment first.",
        )
    if isinstance(action, actions.PushConfig):
        config_type = find_lab(record.lab).session.config_type
        try:
            config_type.model_validate({**config_type().model_dump(), **action.config})
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(map(str, first["loc"]))
            raise unprocessable(
                f"config.{where}: {first['msg']}. Received: {where}={first.get('input')!r}",
                ("body", "config", *first["loc"]),
            ) from None
    await host_request(
        request.app.state.live.broker, code, "action", action=action.model_dump(mode="json")
    )
    return {"accepted": action.action, "at": time.time()}


@pages.websocket("/ws/rooms/{code}")
async def room_socket(websocket: WebSocket, code: str) -> None:
    """A student's view of the room: the instructor's live messages as their own socket gets
    them, and room events; `fork`, `result` and `ballot` in (docs/protocol.md, Rooms)."""
    if await refuse_foreign_origin(websocket):
        return
    address = websocket.client.host if websocket.client else "unknown"
    if await join_retry_after(websocket.app, address) is not None:
        await websocket.close(status.WS_1008_POLICY_VIOLATION)
        return
    record = await records.load(websocket.app.state.live.broker, code)
    if record is None:
        await websocket.close(CLOSE_NO_SUCH_ROOM)
        return
    await websocket.accept()
    await follow(websocket, code, record)


@pages.get("/join", response_class=HTMLResponse, include_in_schema=False, response_model=None)
async def join_page(request: Request, code: str | None = None) -> Response:
    """Type a room's code, go to its lab's page (`/labs/<lab>?room=CODE`)."""
    error = None
    if code is not None:
        code = code.strip().upper()
        try:
            await _check_joins(request)
            record = await _room(request, code) if re.fullmatch(CODE_PATTERN, code) else None
        except HTTPException as e:
            error, record = e.detail, None
        if record is not None:
            return RedirectResponse(f"/labs/{record.lab}?room={code}", status_code=303)
        error = error or f"No room has the code {code!r}: check it with your instructor."
    return request.app.state.templates.TemplateResponse(
        request=request,
        name="join.html",
        context={"labs": all_labs(), "code": code, "error": error, "code_length": CODE_LENGTH},
        status_code=200 if error is None else 404,
    )
