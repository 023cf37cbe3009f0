"""Classroom rooms: an instructor's live session streamed to a class, forks, class experiments, votes.

Everything a room shares between server processes goes through the runtime's `Broker`
(`app/broker.py`): the room's record and its latest state, data and frame are keys with a time to
live; live messages and room events go out on the room's channel; students' requests reach the
instructor's process on the room's host channel. So a room opened on one process is followed from
any other once `PLAYGROUND_REDIS_URL` is set.

- `records.py`: the room's record, its codes and keys, the instructor's token.
- `envelope.py`: how a message travels on the broker (a send time, then the message, opaque).
- `host.py`: the instructor's session: relays what it sends, applies the room's requests.
- `follow.py`: a student's room socket, `/ws/rooms/{code}`.
- `routes.py`: `/api/rooms` and the socket route.
"""
