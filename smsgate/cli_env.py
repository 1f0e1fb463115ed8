"""The context every ``smsgate`` sub-command shares: settings and a lazily opened database.

In a module of its own so that the sub-command groups (dashboard accounts, quick count,
outbox, gateways) can take it without importing ``smsgate/cli.py``, which attaches them.
"""

from __future__ import annotations

import click

from .config import ConfigError, Settings
from .db import Database


class Env:
    """Settings and a lazily built database for the commands of one invocation.

    The database is checked before first use (it exists, answers and has the schema this
    version needs), so a command run before ``smsgate init`` says so in one line.
    """

    def __init__(self) -> None:
        try:
            self.settings = Settings.from_env()
        except ValueError as exc:  # every variable's own check names it; one line, no traceback
            raise ConfigError(str(exc).splitlines()[0] if str(exc) else repr(exc)) from None
        self._database: Database | None = None
        #: ``smsgate init`` turns this off: it is the command that makes the schema.
        self.require_schema = True

    @property
    def database(self) -> Database:
        if self._database is None:
            from .readiness import require_schema

            database = Database.from_url(self.settings.database_url, self.settings.sqlite_synchronous)
            if self.require_schema:
                try:
                    require_schema(database.engine, self.settings.database_url)
                except Exception:
                    database.dispose()
                    raise
            self._database = database
        return self._database


pass_env = click.make_pass_decorator(Env, ensure=True)


def current_env() -> Env:
    """The ``Env`` of the command being run (made on first use)."""
    return click.get_current_context().ensure_object(Env)
