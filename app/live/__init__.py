"""Live training sessions streamed over WebSockets, the same machinery for every live lab.

`session.py` is the session base; `solo.py` and `stacked.py` (with `group.py`) the two runners that
train sessions; `runtime.py` holds every session of the app, the cap and the thread pools;
`route.py` is the one `/ws/{slug}` route; `channel.py`, `guard.py` and `outbox.py` the socket's edge.
"""
