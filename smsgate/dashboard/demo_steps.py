"""The dashboard in ``smsgate demo``: an admin account, and the address to open, printed as
soon as the server is up (so the simulated night can be watched live) and again at the end."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..models import utcnow
from .accounts import create_user

if TYPE_CHECKING:  # the demo lists these steps; they only take its state
    from ..demo import Demo

DEMO_EMAIL = "demo@smsgate.local"
DEMO_PASSWORD = "demo-smsgate"


def where(d: Demo) -> None:
    d.echo(f"  dashboard: {d.url}/dashboard/   login {DEMO_EMAIL} / {DEMO_PASSWORD}")


def dashboard(d: Demo) -> None:
    with d.db.begin() as session:
        create_user(
            session, email=DEMO_EMAIL, password=DEMO_PASSWORD, role="admin", region=None, now=utcnow()
        )
    where(d)
    d.echo("  (open it now: the numbers follow the simulated night as it unfolds)")
