"""``smsgate user create``: dashboard accounts from the command line."""

from __future__ import annotations

import sys

import click

from ..models import utcnow
from ..models.users import USER_ROLES


@click.group()
def user() -> None:
    """Dashboard accounts (admins and coordinators)."""


@user.command("create")
@click.option("--email", required=True, help="The login name.")
@click.option("--role", required=True, type=click.Choice(USER_ROLES), help="admin or coordinator.")
@click.option("--region", help="Scope as a Kemendagri code (required for a coordinator; admin: all).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input (scripts).")
@click.pass_context
def create(ctx: click.Context, email: str, role: str, region: str | None, password_stdin: bool) -> None:
    """Create a dashboard user; the password is prompted twice (or read with --password-stdin)."""
    from ..cli import Env
    from .accounts import AccountError, create_user

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    env = ctx.ensure_object(Env)
    try:
        with env.database.begin() as session:
            created = create_user(
                session, email=email, password=password, role=role, region=region, now=utcnow()
            )
            summary = (
                f"user {created.email} created: {created.role}, scope {created.region_code or 'Indonesia'}"
            )
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(summary)
