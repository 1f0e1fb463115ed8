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


#: Collations under which PostgreSQL serves ``code LIKE '6371%'`` from a plain btree index.
PREFIX_FRIENDLY_COLLATIONS = {"c", "c.utf-8", "c.utf8", "posix"}


def collation_warning(engine: Engine) -> str | None:
    """Why region filters would be slow on this PostgreSQL database, or None.

    Regions and stations are found by prefix (``station_id LIKE '6371%'``); under a
    language collation such as en_US.UTF-8 PostgreSQL cannot use the btree indexes for
    that and scans instead, which at national scale turns milliseconds into seconds.
    """
    if engine.dialect.name != "postgresql":
        return None
    with engine.connect() as connection:
        collation = connection.exec_driver_sql(
            "SELECT datcollate FROM pg_database WHERE datname = current_database()"
        ).scalar_one()
        if connection.dialect.server_version_info >= (15,):  # ICU databases (PostgreSQL 15+)
            provider, icu = connection.exec_driver_sql(
                "SELECT datlocprovider, daticulocale FROM pg_database WHERE datname = current_database()"
            ).one()
            if provider == "i":
                collation = f"ICU {icu}"
    if str(collation).lower() in PREFIX_FRIENDLY_COLLATIONS:
        return None
    return (
        f"warning: this database's collation is {collation}; region filters (LIKE 'prefix%') "
        "cannot use indexes under it. Create the database with "
        "\"CREATE DATABASE smsgate LOCALE 'C.UTF-8' TEMPLATE template0\" (see README, Deploying)."
    )


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest revision of every branch; idempotent."""
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "heads")
