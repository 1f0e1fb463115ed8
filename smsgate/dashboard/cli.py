"""``smsgate user create|password|disable|enable``: dashboard accounts from the command line."""

from __future__ import annotations

import sys
from collections.abc import Callable

import click
from sqlalchemy.orm import Session

from ..cli_env import Env
from ..models import User, utcnow
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


def _change(ctx: click.Context, email: str, change: Callable[[Session, User], str]) -> None:
    """Apply ``change`` to the user ``email`` in one transaction; print what it reports."""
    from .accounts import AccountError, find_user

    env = ctx.ensure_object(Env)
    try:
        with env.database.begin() as session:
            summary = change(session, find_user(session, email))
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(summary)


@user.command("password")
@click.option("--email", required=True, help="The account whose password is reset.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input (scripts).")
@click.pass_context
def password(ctx: click.Context, email: str, password_stdin: bool) -> None:
    """Set a new password (an admin's reset); every session of the account ends."""
    from .accounts import set_password

    if password_stdin:
        new = sys.stdin.readline().rstrip("\r\n")
    else:
        new = click.prompt("New password", hide_input=True, confirmation_prompt=True)

    def change(session: Session, account: User) -> str:
        set_password(account, new)
        return f"password of {account.email} changed; every session of the account has ended"

    _change(ctx, email, change)


@user.command("disable")
@click.option("--email", required=True, help="The account to disable.")
@click.pass_context
def disable(ctx: click.Context, email: str) -> None:
    """Refuse the account's logins and end every session it has (a lost laptop, a departed coordinator)."""
    from .accounts import disable as disable_account

    def change(session: Session, account: User) -> str:
        disable_account(account, utcnow())
        return f"user {account.email} disabled; every session of the account has ended"

    _change(ctx, email, change)


@user.command("enable")
@click.option("--email", required=True, help="The account to enable again.")
@click.pass_context
def enable(ctx: click.Context, email: str) -> None:
    """Allow a disabled account to log in again (with its current password)."""
    from .accounts import enable as enable_account

    def change(session: Session, account: User) -> str:
        enable_account(account)
        return f"user {account.email} enabled"

    _change(ctx, email, change)
