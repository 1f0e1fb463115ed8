"""Project-wide promises: migrations match the models, and the README documents every
CLI command and every message keyword (the documentation is tested, as in datasette)."""

from __future__ import annotations

from pathlib import Path

import click
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from grammar.keywords import COMMANDS
from smsgate.cli import main
from smsgate.models import Base

README = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")


def test_migrations_match_the_models(database):
    with database.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        differences = compare_metadata(context, Base.metadata)
    assert differences == [], "models and migrations differ; add a migration"


def _commands(group: click.Group, prefix: str = "smsgate") -> list[str]:
    names = []
    for name, command in sorted(group.commands.items()):
        if command.hidden:
            continue
        path = f"{prefix} {name}"
        if isinstance(command, click.Group):
            names.extend(_commands(command, path))
        else:
            names.append(path)
    return names


def test_every_cli_command_is_in_the_readme():
    missing = [name for name in _commands(main) if f"`{name}" not in README]
    assert not missing, f"undocumented commands: {missing}"


def test_every_message_keyword_is_in_the_readme():
    missing = [alias for aliases in COMMANDS.values() for alias in aliases if f"`{alias}" not in README]
    assert not missing, f"undocumented keywords: {missing}"
