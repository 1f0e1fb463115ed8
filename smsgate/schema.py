"""Schema management through Alembic, used by ``smsgate init`` and the tests.

App processes never change the schema on start; ``init`` is the one place that does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def prefix_index_warning(engine: Engine) -> str | None:
    """Why region filters would be slow on this PostgreSQL database, or None.

    Regions and stations are found by prefix (``station_id LIKE '6371%'``). Under any
    collation but ``C`` a plain btree cannot serve that, so ``smsgate init`` creates
    ``varchar_pattern_ops`` indexes for it (``smsgate.models.postgres_indexes``): the
    database's collation no longer matters. They can still be missing from a schema built
    some other way, or dropped by hand; at national scale every region filter would then scan.
    """
    if engine.dialect.name != "postgresql":
        return None
    from .models.postgres_indexes import PREFIX_INDEXES

    with engine.connect() as connection:
        present = set(
            connection.exec_driver_sql(
                "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()"
            ).scalars()
        )
    missing = sorted(set(PREFIX_INDEXES) - present)
    if not missing:
        return None
    return (
        f"warning: {len(missing)} prefix index(es) are missing ({', '.join(missing)}); region "
        "filters will scan whole tables. Run smsgate init as the database owner to create them."
    )


@dataclass(frozen=True)
class SchemaChange:
    """What ``upgrade`` did: the revisions before (None: no schema) and after."""

    before: frozenset[str] | None
    after: frozenset[str]
    tables: int

    def describe(self) -> str:
        after = ", ".join(sorted(self.after))
        if self.before is None:
            return f"created the smsgate schema ({self.tables} tables, revision {after})"
        if self.before == self.after:
            return f"schema already up to date (revision {after})"
        before = ", ".join(sorted(self.before)) or "none"
        return f"upgraded the schema from revision {before} to {after}"


def upgrade(engine: Engine) -> SchemaChange:
    """Bring the schema to the newest revision of every branch; idempotent."""
    from alembic.migration import MigrationContext
    from sqlalchemy import inspect

    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        fresh = not connection.dialect.has_table(connection, "alembic_version")
        before = None if fresh else frozenset(MigrationContext.configure(connection).get_current_heads())
        config.attributes["connection"] = connection
        command.upgrade(config, "heads")
        after = frozenset(MigrationContext.configure(connection).get_current_heads())
        tables = len([t for t in inspect(connection).get_table_names() if t != "alembic_version"])
    return SchemaChange(before, after, tables)
