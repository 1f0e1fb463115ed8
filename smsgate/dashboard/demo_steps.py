"""The dashboard in ``smsgate demo``: an admin account, and the address to open, printed as
soon as the server is up (so the simulated night can be watched live) and again at the end."""

from __future__ import annotations

from .. import demo
from ..models import utcnow
from .accounts import create_user

DEMO_EMAIL = "demo@smsgate.local"
DEMO_PASSWORD = "demo-smsgate"


def _where(d: demo.Demo) -> None:
    d.echo(f"  dashboard: {d.url}/dashboard/   login {DEMO_EMAIL} / {DEMO_PASSWORD}")


def dashboard(d: demo.Demo) -> None:
    with d.db.begin() as session:
        create_user(
            session, email=DEMO_EMAIL, password=DEMO_PASSWORD, role="admin", region=None, now=utcnow()
        )
    _where(d)
    d.echo("  (open it now: the numbers follow the simulated night as it unfolds)")


demo.add_step("dashboard", dashboard, after="server")
demo.add_step("dashboard link", _where, after="tally")
