"""Is the database there, writable and migrated? One-line answers for people and probes.

``serve``, ``worker`` and every CLI command that reads the database ask ``require_schema``
before doing anything, so a deployment that was never initialised, or points at the wrong
server, stops with one line saying what to run instead of starting and answering every SMS
with "sistem sedang sibuk". ``/healthz`` asks ``probe``, which also writes (and rolls back),
because a read-only PostgreSQL or a SQLite file with a broken disk still answers ``SELECT 1``.
"""

from __future__ import annotations

import functools
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from .config import ConfigError, Settings

if TYPE_CHECKING:
    from alembic.script import ScriptDirectory


class NotReady(ConfigError):
    """The database cannot be used yet; the message says what to run."""


def masked(url: str) -> str:
    """The URL as it may be printed: the password replaced by ``***``."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL has no password we could find either
        return url


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL (None for other databases and in-memory SQLite)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    database = parsed.database
    if database.startswith("file:"):  # a URI filename (?uri=true): file:/path?mode=ro
        database = database.removeprefix("file:").split("?")[0]
        if "mode=memory" in str(parsed):
            return None
    return Path(database)


@functools.lru_cache(maxsize=1)
def _scripts() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    from .schema import alembic_config

    return ScriptDirectory.from_config(alembic_config("sqlite://"))


def head_revisions() -> frozenset[str]:
    """The newest revision of every migration branch shipped with this version of smsgate."""
    return frozenset(_scripts().get_heads())


def _known(revision: str) -> bool:
    from alembic.util import CommandError

    try:
        return _scripts().get_revision(revision) is not None
    except CommandError:
        return False


def current_revisions(connection: Connection) -> frozenset[str] | None:
    """The revisions the database is at, or None when it has no smsgate schema at all."""
    from alembic.migration import MigrationContext

    if not connection.dialect.has_table(connection, "alembic_version"):
        return None
    return frozenset(MigrationContext.configure(connection).get_current_heads())


def schema_problem(connection: Connection, url: str) -> str | None:
    """Why the schema is not the one this version needs, with the command that fixes it."""
    current = current_revisions(connection)
    if current is None:
        return f"the database {masked(url)} has no smsgate schema: run smsgate init"
    heads = head_revisions()
    if current == heads:
        return None
    unknown = sorted(revision for revision in current if not _known(revision))
    if unknown:
        return (
            f"the database {masked(url)} is at revision {', '.join(unknown)}, which this smsgate "
            "does not know: install the smsgate version that migrated it"
        )
    return f"the database {masked(url)} schema is not up to date: run smsgate init"


def connect_problem(exc: BaseException, url: str) -> str:
    """One line for a failure to reach the database: what failed and what to do."""
    shown = masked(url)
    message = str(getattr(exc, "orig", None) or exc).strip()
    lowered = message.lower()
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if "unable to open database file" in lowered:
            return f"cannot open the SQLite database {shown}: its folder does not exist or is not writable"
        first = message.splitlines()[0] if message else type(exc).__name__
        return f"the SQLite database {shown} failed: {first}"
    where = f"{parsed.host or 'localhost'}:{parsed.port or 5432}"
    if "does not exist" in lowered and "database" in lowered:
        name = parsed.database or "?"
        return (
            f'database "{name}" does not exist on {where} (SMSGATE_DATABASE_URL={shown}): create it with '
            f"createdb --locale=C.UTF-8 --template=template0 {name}, then run smsgate init"
        )
    if "password authentication failed" in lowered or "no password supplied" in lowered:
        return (
            f"PostgreSQL at {where} refused the login (SMSGATE_DATABASE_URL={shown}): "
            "check the user and password"
        )
    if "connection refused" in lowered:
        return (
            f"cannot connect to PostgreSQL at {where} (SMSGATE_DATABASE_URL={shown}): connection refused; "
            "is PostgreSQL running and listening on that address and port?"
        )
    if "timeout" in lowered or "timed out" in lowered:
        return f"PostgreSQL at {where} did not answer in time (SMSGATE_DATABASE_URL={shown})"
    if "translate host name" in lowered or "resolve host" in lowered or "name or service" in lowered:
        return f"unknown database host {parsed.host!r} (SMSGATE_DATABASE_URL={shown})"
    first = next((line.strip() for line in message.splitlines() if line.strip()), type(exc).__name__)
    return f"cannot use the database {shown} (SMSGATE_DATABASE_URL): {first}"


def explain(exc: BaseException, url: str) -> str:
    """One line for a database error met by a command: a missing table means no ``init`` yet."""
    message = str(getattr(exc, "orig", None) or exc).lower()
    if "no such table" in message or ("relation" in message and "does not exist" in message):
        return f"the database {masked(url)} has no smsgate schema (or an old one): run smsgate init"
    return connect_problem(exc, url)


def require_schema(engine: Engine, url: str) -> None:
    """Raise ``NotReady`` unless the database exists, answers and is at the head revision.

    A SQLite file that does not exist is not created here (connecting would create an empty
    one): the answer is to run ``smsgate init``.
    """
    path = sqlite_path(url)
    if path is not None and not path.exists():
        where = "SMSGATE_DATABASE_URL is unset, so " if url == Settings.database_url else ""
        raise NotReady(f"no database at {path} ({where}{masked(url)}): run smsgate init")
    try:
        with engine.connect() as connection:
            problem = schema_problem(connection, url)
    except DBAPIError as exc:
        raise NotReady(connect_problem(exc, url)) from None
    if problem:
        raise NotReady(problem)


def probe(engine: Engine, url: str) -> str | None:
    """Why this process cannot take SMS now, or None: reachable, writable, schema at head.

    The write is an update of ``alembic_version`` to itself, rolled back: it needs the write
    lock (SQLite) or a writable transaction (PostgreSQL refuses it when the server is a standby
    or ``default_transaction_read_only`` is on), and leaves nothing behind.
    """
    path = sqlite_path(url)
    if path is not None and not path.exists():
        return f"the database file {path} is missing (deleted or moved?)"
    try:
        with engine.connect() as connection:
            if connection.dialect.name == "postgresql":
                connection.exec_driver_sql("SET LOCAL statement_timeout = 1500")
                connection.exec_driver_sql("SET LOCAL lock_timeout = 1000")
            problem = schema_problem(connection, url)
            if problem:
                connection.rollback()
                return problem
            connection.execute(text("UPDATE alembic_version SET version_num = version_num"))
            connection.rollback()
    except DBAPIError as exc:
        message = str(exc.orig or exc).lower()
        if "read-only" in message or "readonly" in message or "read only" in message:
            return f"the database {masked(url)} is read-only: {_first_line(exc)}"
        if getattr(exc, "connection_invalidated", False) or "connect" in message:
            return connect_problem(exc, url)
        return f"the database {masked(url)} failed a write: {_first_line(exc)}"
    except SQLAlchemyError as exc:
        return f"the database {masked(url)} failed: {_first_line(exc)}"
    return None


def _first_line(exc: BaseException) -> str:
    message = str(getattr(exc, "orig", None) or exc).strip()
    return next((line.strip() for line in message.splitlines() if line.strip()), type(exc).__name__)


class HealthProbe:
    """``probe`` with a deadline: ``/healthz`` answers within ``timeout`` whatever the database does.

    A database that hangs (a dead host, a lock) would hold the request as long as the driver
    waits, and a load balancer's check would time out without a reason. The probe runs in one
    background thread; a request waits at most ``timeout`` for it, and while a slow probe is
    still running later requests share it instead of piling up more connections.
    """

    def __init__(self, engine: Engine, url: str, timeout: float = 1.5) -> None:
        self.engine, self.url, self.timeout = engine, url, timeout
        self._lock = threading.Lock()
        self._running: Future[str | None] | None = None
        self._executor: ThreadPoolExecutor | None = None

    def check(self) -> str | None:
        with self._lock:
            if self._running is None or self._running.done():
                if self._executor is None:
                    self._executor = ThreadPoolExecutor(1, thread_name_prefix="smsgate-healthz")
                self._running = self._executor.submit(probe, self.engine, self.url)
            running = self._running
        try:
            return running.result(self.timeout)
        except FutureTimeout:
            return f"the database {masked(self.url)} did not answer within {self.timeout:g} s"
