"""``smsgate gateways status|disable|enable|plan``: see, drain and plan the gateway fleet."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import click

from ..cli_env import current_env
from ..models import utcnow
from . import devices
from .fleet import FleetError, load_fleet
from .fleet_status import fleet_status
from .plan import Assumptions, explain, plan


def _fleet(env: Any) -> Any:
    try:
        return load_fleet(env.settings)
    except FleetError as exc:
        raise click.ClickException(str(exc)) from None


@click.group("gateways")
def gateways_cli() -> None:
    """The gateway fleet (SMSGATE_GATEWAYS): status, draining a device, planning the night."""


@gateways_cli.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def status_command(as_json: bool) -> None:
    """Per device: state, last seen, received/sent in 15 min, queue, reply lag, failures."""
    env = current_env()
    fleet = _fleet(env)
    now = utcnow()
    with env.database.read() as session:
        figures = fleet_status(session, fleet, now)
    if as_json:
        click.echo(json.dumps(figures.as_dict(), indent=2))
        return
    if not figures.devices:
        click.echo("no gateway devices configured (set SMSGATE_GATEWAYS, or the single-device variables)")
    for d in figures.devices:
        state = d.state if d.state == "up" else f"{d.state} ({d.down_reason})"
        click.echo(f"{d.name} [{d.provider} {d.number or '-'}]: {state}, last seen {_ago(d.last_seen, now)}")
        lag = (
            f"lag p50 {d.lag_p50_seconds:g}s p95 {d.lag_p95_seconds:g}s"
            if d.lag_p50_seconds is not None and d.lag_p95_seconds is not None
            else "lag -"
        )
        oldest = f", oldest {d.oldest_queued_seconds:g}s" if d.oldest_queued_seconds is not None else ""
        click.echo(
            f"  15 min: {d.received_15m} received, {d.sent_15m} sent; queue {d.queued}{oldest}; {lag};"
            f" today {d.sent_today}{f'/{d.daily_cap}' if d.daily_cap else ''}"
        )
        if d.failures:
            click.echo(
                f"  failures: {d.failures} ({d.consecutive_failures} in a row),"
                f" last {_ago(d.last_error_at, now)}: {d.last_error}"
            )
    if figures.unrouted:
        click.echo(f"{figures.unrouted} queued SMS have no device of their own and fail over by the policy")
    for warning in figures.warnings:
        click.echo(f"WARNING {warning}")


@gateways_cli.command("disable")
@click.argument("name")
def disable_command(name: str) -> None:
    """Drain device NAME: it takes nothing more; its replies fail over to other devices."""
    _switch(name, disabled=True)


@gateways_cli.command("enable")
@click.argument("name")
def enable_command(name: str) -> None:
    """Restore device NAME (its failure streak is forgotten)."""
    _switch(name, disabled=False)


def _switch(name: str, *, disabled: bool) -> None:
    env = current_env()
    fleet = _fleet(env)
    if fleet.by_name(name) is None:
        known = ", ".join(d.name for d in fleet.devices) or "none"
        raise click.ClickException(f"no device named {name} (devices: {known})")
    with env.database.begin() as session:
        devices.set_disabled(session, name, disabled, utcnow())
    click.echo(f"{name} {'disabled: its replies fail over' if disabled else 'enabled'}")


@gateways_cli.command("plan")
@click.option("--volunteers", required=True, type=click.IntRange(1), help="Volunteers expected to text.")
@click.option(
    "--hours", required=True, type=click.FloatRange(0, min_open=True), help="Hours most texts arrive in."
)
@click.option(
    "--texts-per-volunteer", default=1.2, show_default=True, type=click.FloatRange(0, min_open=True)
)
@click.option("--unknown-share", default=0.05, show_default=True, type=click.FloatRange(0, 10))
@click.option(
    "--peak-factor",
    default=2.5,
    show_default=True,
    type=click.FloatRange(1),
    help="Arrival rate at the top of the night / average.",
)
@click.option(
    "--headroom",
    default=0.10,
    show_default=True,
    type=click.FloatRange(0, 10),
    help="Rates counted this much slower.",
)
@click.option(
    "--spare",
    default=1,
    show_default=True,
    type=click.IntRange(0),
    help="Devices failing half-way (phones first).",
)
@click.option("--android-rate", default=0.35, show_default=True, type=click.FloatRange(0, min_open=True))
@click.option("--modem-rate", default=0.5, show_default=True, type=click.FloatRange(0, min_open=True))
@click.option(
    "--spread",
    default="even",
    show_default=True,
    type=click.Choice(["even", "random"]),
    help="How volunteers are spread over the devices' numbers.",
)
@click.option("--target-seconds", default=60.0, show_default=True, type=click.FloatRange(0, min_open=True))
@click.option("--modems", type=click.IntRange(0), help="Also: the phones needed next to this many modems.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
def plan_command(
    volunteers: int,
    hours: float,
    texts_per_volunteer: float,
    unknown_share: float,
    peak_factor: float,
    headroom: float,
    spare: int,
    android_rate: float,
    modem_rate: float,
    spread: str,
    target_seconds: float,
    modems: int | None,
    as_json: bool,
) -> None:
    """How many devices of each kind the night needs for volunteers' replies within a minute.

    A model of the night (see README, Planning): arrivals on the night's profile, each reply
    queued on the device its volunteer texted, one device failing half-way."""
    try:
        result = plan(
            Assumptions(
                volunteers=volunteers,
                hours=hours,
                texts_per_volunteer=texts_per_volunteer,
                unknown_share=unknown_share,
                peak_factor=peak_factor,
                headroom=headroom,
                spare=spare,
                android_rate=android_rate,
                modem_rate=modem_rate,
                target_seconds=target_seconds,
                spread=spread,
            )
        )
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(result.as_dict(modems), indent=2))
        return
    for line in explain(result, modems):
        click.echo(line)


def _ago(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "never"
    seconds = max((now - moment).total_seconds(), 0)
    if seconds < 120:
        return f"{seconds:.0f}s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.0f} h ago" if seconds < 172800 else f"{seconds / 86400:.0f} days ago"
