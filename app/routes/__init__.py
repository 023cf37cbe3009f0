"""Routes that belong to no single lab: pages, image uploads and the live labs' one socket route.
Each lab's own come from its registry entry."""

from app.live import route as live
from app.rooms import routes as rooms
from app.routes import pages, uploads

ROUTERS = (pages.router, uploads.router, live.router, rooms.router, rooms.pages)
