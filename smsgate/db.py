"""Engine and session handling.

One engine per app, one session per request or job (``with database.begin() as session``).
SQLite gets WAL, a busy timeout and ``BEGIN IMMEDIATE`` for write transactions so concurrent
writers queue for the write lock instead of failing half-way through a transaction with
"database is locked". Read transactions (``database.read()``) begin deferred: in WAL mode they
need no lock and must not wait behind writers. Within one process, writers also take turns on
a lock of their own: SQLite's busy handler sleeps in growing steps while it waits, so threads
polling for the write lock starve each other into second-long tails, where a queue is fair.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        _configure_sqlite(engine)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):  # type: ignore[no-untyped-def]
        read_only = connection.get_execution_options().get(READ_ONLY, False)
        connection.exec_driver_sql("BEGIN DEFERRED" if read_only else "BEGIN IMMEDIATE")


#: Execution option marking a connection whose transactions only read.
READ_ONLY = "smsgate_read_only"


def is_postgresql(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


@dataclass
class Database:
    """The app's engine and session factory, built once by ``create_app`` or a CLI command."""

    engine: Engine
    sessions: sessionmaker[Session]
    readers: sessionmaker[Session] | None = None
    _writers: threading.RLock = field(default_factory=threading.RLock, repr=False)

    @classmethod
    def from_url(cls, url: str) -> Database:
        engine = make_engine(url)
        return cls(
            engine=engine,
            sessions=sessionmaker(engine, expire_on_commit=False),
            readers=sessionmaker(engine.execution_options(**{READ_ONLY: True}), expire_on_commit=False),
        )

    def _write_turn(self) -> AbstractContextManager[object]:
        return self._writers if self.engine.dialect.name == "sqlite" else nullcontext()

    @contextmanager
    def begin(self) -> Iterator[Session]:
        """A session inside one transaction: committed on success, rolled back on error."""
        with self._write_turn(), self.sessions.begin() as session:
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reading only; it never writes, so on SQLite it takes no write lock."""
        with (self.readers or self.sessions)() as session:
            yield session

    @property
    def is_postgresql(self) -> bool:
        return is_postgresql(self.engine)

    def dispose(self) -> None:
        self.engine.dispose()
