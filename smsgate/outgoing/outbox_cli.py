"""``smsgate outbox status|retry``: see and replay event deliveries to the tally destinations."""

from __future__ import annotations

import json

import click

from ..cli_env import current_env
from ..models import utcnow
from ..models.outbox import DEAD, DELIVERED, PENDING
from ..regions import to_key
from .catch_up import replay
from .destinations import load_destinations
from .event_queue import retry, status


@click.group("outbox")
def outbox_cli() -> None:
    """Inspect and replay event deliveries to the tally destinations."""


@outbox_cli.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def status_command(as_json: bool) -> None:
    """Events, and deliveries per destination: pending, delivered, dead."""
    env = current_env()
    with env.database.read() as session:
        figures = status(session, utcnow())
    if as_json:
        click.echo(json.dumps(figures, indent=2))
        return
    click.echo(f"events: {figures['events']} ({figures['undispatched']} not yet dispatched)")
    if not figures["destinations"]:
        click.echo("no deliveries yet (configure SMSGATE_TALLY_URL or SMSGATE_DESTINATIONS and run a worker)")
    for name, entry in sorted(figures["destinations"].items()):
        line = f"{name}: {entry[PENDING]} pending, {entry[DELIVERED]} delivered, {entry[DEAD]} dead"
        if entry.get("retrying"):
            line += f"; {entry['retrying']} retrying since {entry['oldest_failing_since']}"
        if "oldest_pending_seconds" in entry:
            line += f"; oldest pending {entry['oldest_pending_seconds']}s"
        click.echo(line)


@outbox_cli.command("replay")
@click.option("--destination", required=True, help="The destination to catch up (a configured name).")
@click.option("--region", default="", help="Only stations of this region (Kemendagri code); default all.")
def replay_command(destination: str, region: str) -> None:
    """Queue the current state of every station (station.snapshot) for one destination."""
    env = current_env()
    names = [d.name for d in load_destinations(env.settings)]
    if destination not in names:
        raise click.ClickException(
            f"no destination named {destination!r}; configured: {', '.join(names) or 'none'}"
        )
    count = replay(env.database, destination, to_key(region) if region else "")
    click.echo(f"{count} station snapshots queued for {destination}; a running worker delivers them")


@outbox_cli.command("retry")
@click.option("--dead", is_flag=True, help="Replay dead deliveries (attempts start again).")
@click.option("--destination", help="Only this destination.")
def retry_command(dead: bool, destination: str | None) -> None:
    """Retry pending deliveries now instead of after their backoff; --dead replays dead ones."""
    env = current_env()
    with env.database.begin() as session:
        count = retry(session, utcnow(), dead=dead, destination=destination)
    click.echo(f"{count} {'dead' if dead else 'pending'} deliver{'y' if count == 1 else 'ies'} due now")
