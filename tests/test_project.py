"""Project-wide promises: migrations match the models, and the README documents every
CLI command, environment variable and message keyword (the documentation is tested, as in
datasette)."""

from __future__ import annotations

from pathlib import Path

import click
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from grammar.keywords import COMMANDS
from smsgate.cli import main
from smsgate.models import Base
from smsgate.models.postgres_indexes import include_object

README = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")


def test_migrations_match_the_models(database):
    with database.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": False, "include_object": include_object}
        )
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


def test_every_environment_variable_is_in_the_readme():
    """Every variable the code reads, ``SMSGATE_…`` or ``TWILIO_…``, is named in the README."""
    import re

    root = Path(__file__).parent.parent
    names = {
        name
        for folder in ("smsgate", "webhooks")
        for path in (root / folder).rglob("*.py")
        for name in re.findall(r'"((?:SMSGATE|TWILIO)_[A-Z_]+)"', path.read_text(encoding="utf-8"))
    }
    assert "SMSGATE_SQLITE_SYNCHRONOUS" in names
    missing = sorted(name for name in names if f"`{name}" not in README and f"{name}=" not in README)
    assert not missing, f"undocumented variables: {missing}"


def test_every_message_keyword_is_in_the_readme():
    missing = [alias for aliases in COMMANDS.values() for alias in aliases if f"`{alias}" not in README]
    assert not missing, f"undocumented keywords: {missing}"


def test_init_creates_prefix_indexes_whatever_the_collation(database):
    """``LIKE '6371%'`` uses a plain btree only under the C collation; ``init`` creates
    pattern-ops indexes so an ICU or C.UTF-8 database is served as well, and warns when they
    are missing."""
    import os
    import uuid

    import pytest
    from click.testing import CliRunner
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    from smsgate.schema import prefix_index_warning

    url = os.environ.get("SMSGATE_TEST_DATABASE_URL", "")
    if not url.startswith("postgresql"):
        pytest.skip("needs PostgreSQL (SMSGATE_TEST_DATABASE_URL)")
    admin = create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    name = f"smsgate_icu_{uuid.uuid4().hex[:8]}"
    with admin.connect() as connection:
        connection.exec_driver_sql(
            f"CREATE DATABASE {name} LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8' "
            "TEMPLATE template0"
        )
    try:
        target = make_url(url).set(database=name).render_as_string(hide_password=False)
        result = CliRunner().invoke(main, ["init"], env={"SMSGATE_DATABASE_URL": target})
        assert result.exit_code == 0, result.output
        assert "warning" not in result.output
        engine = create_engine(target)
        assert prefix_index_warning(engine) is None
        with engine.begin() as connection:
            connection.exec_driver_sql("DROP INDEX ix_stations_id_prefix")
        warning = prefix_index_warning(engine)
        assert warning is not None and "ix_stations_id_prefix" in warning
        engine.dispose()
        assert prefix_index_warning(database.engine) is None  # the tests' own database
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()


def _imports(package: str) -> dict[str, set[str]]:
    import ast

    found = {}
    for path in sorted((Path(__file__).parent.parent / package).glob("*.py")):
        names = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
        found[path.name] = names
    return found


def test_the_layers_keep_to_themselves():
    """grammar is pure pyparsing; webhooks know the provider-neutral shapes, not SQL or tallies."""
    for name, modules in _imports("grammar").items():
        bad = {m for m in modules if m.split(".")[0] in {"flask", "sqlalchemy", "smsgate", "webhooks"}}
        assert not bad, f"grammar/{name} imports {bad}"
    for name, modules in _imports("webhooks").items():
        bad = {m for m in modules if m.split(".")[0] == "sqlalchemy" or m.startswith("smsgate.models")}
        bad |= {m for m in modules if m.startswith("smsgate.services")}
        assert not bad, f"webhooks/{name} imports {bad}"


def _absolute_imports(package: str) -> dict[str, set[str]]:
    """Every module each file of ``package`` imports, relative imports resolved (``..x`` -> ``smsgate.x``)."""
    import ast

    root = Path(__file__).parent.parent
    found = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        here = parts[:-1]  # the package a relative import starts from
        names = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = here[: len(here) - node.level + 1] if node.level else []
                module = ".".join([*base, *([node.module] if node.module else [])])
                names |= {module} | {f"{module}.{alias.name}" for alias in node.names}
        found[str(path.relative_to(root))] = names
    return found


def test_the_services_never_import_the_outgoing_side():
    """The services decide what to send inside the inbound transaction; the worker sends it. An
    import from the services up into the worker would tie every webhook to the senders."""
    for name, modules in _absolute_imports("smsgate/services").items():
        bad = {m for m in modules if m.startswith(("smsgate.outgoing", "smsgate.worker"))}
        assert not bad, f"{name} imports {bad}"
    for name, modules in _absolute_imports("smsgate/commands").items():
        bad = {m for m in modules if m.startswith("smsgate.outgoing")}
        assert not bad, f"{name} imports {bad}"


def test_one_rule_for_retryable_answers():
    """The SMS senders and the event delivery agree on which HTTP answers are worth retrying."""
    from smsgate.outgoing.retry import retryable

    assert [code for code in (200, 400, 401, 404, 408, 409, 425, 429, 500, 502, 503) if retryable(code)] == [
        408,
        425,
        429,
        500,
        502,
        503,
    ]
    for name, modules in _absolute_imports("smsgate/outgoing").items():
        if name.endswith(("senders.py", "event_job.py")):
            assert "smsgate.outgoing.retry.retryable" in modules, f"{name} has its own retry rule"
