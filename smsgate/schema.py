"""Schema management through Alembic, used by ``smsgate init`` and the tests.

App processes never change the schema on start; ``init`` is the one place that does.
"""

from __future__ import annotations

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


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest revision of every branch; idempotent."""
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "heads")
