"""Engine and session handling.

One engine per app, one session per request or job (``with database.begin() as session``).
SQLite gets WAL, a busy timeout and ``BEGIN IMMEDIATE`` for write transactions so concurrent
writers queue for the write lock instead of failing half-way through a transaction with
"database is locked". Read transactions (``database.read()``) begin deferred: in WAL mode they
need no lock and must not wait behind writers. Within one process, writers also take turns on
a lock of their own: SQLite's busy handler sleeps in growing steps while it waits, so threads
polling for the write lock starve each other into second-long tails, where a queue is fair.
Bounded SQLite writes (the webhook's) that queue there share one transaction and one commit
(``_Group``): with ``synchronous=FULL`` the sync per commit, not the CPU, would otherwise cap a
database at a few hundred reports per second.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field

from sqlalchemy import Connection, Engine, RootTransaction, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from . import driver

log = logging.getLogger(__name__)

#: SQLite's ``PRAGMA synchronous`` by default: ``FULL`` syncs the write-ahead log at every
#: commit, so a report answered OK survives a power cut or an operating-system crash;
#: ``NORMAL`` syncs only at checkpoints (faster, but such a crash can roll back the last
#: commits). ``SMSGATE_SQLITE_SYNCHRONOUS`` chooses; README "Deploying" has the measured cost.
SQLITE_SYNCHRONOUS = "FULL"


#: Query parameter of a PostgreSQL URL saying it points at PgBouncer in transaction pooling
#: mode (``...:6432/smsgate?pgbouncer=true``): smsgate then never prepares statements.
PGBOUNCER_PARAMETER = "pgbouncer"


def through_pgbouncer(url: str | URL) -> bool:
    """Whether ``url`` says it goes through PgBouncer (``?pgbouncer=true``)."""
    value = make_url(url).query.get(PGBOUNCER_PARAMETER, "")
    return (value if isinstance(value, str) else value[-1]).lower() in ("1", "true", "yes", "on")


def libpq_url(url: str | URL) -> URL:
    """``url`` without smsgate's own parameters, as PostgreSQL's client library accepts it."""
    return make_url(url).difference_update_query([PGBOUNCER_PARAMETER])


def make_engine(url: str, sqlite_synchronous: str = SQLITE_SYNCHRONOUS) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        _configure_sqlite(engine, sqlite_synchronous)
        return engine
    # A dead or unreachable server fails a connection within seconds instead of the kernel's
    # minutes; a URL that names its own connect_timeout keeps it.
    connect_args: dict[str, object] = {} if "connect_timeout" in url else {"connect_timeout": CONNECT_TIMEOUT}
    if through_pgbouncer(url):
        # PgBouncer's transaction pooling hands each transaction whichever server connection is
        # free; a statement psycopg prepared on one is unknown on the next (PgBouncer before 1.21
        # does not track them), so psycopg must never prepare.
        connect_args["prepare_threshold"] = None
    # No pre-ping: it is one more round trip on every checkout, on the path of every SMS. A
    # connection the server dropped fails its first statement instead; SQLAlchemy then discards
    # it and every pooled connection older than it, and the ingest retries the message once on a
    # fresh one (``Ingest``), while jobs simply run again at their next turn.
    return create_engine(
        libpq_url(url), pool_size=POOL_SIZE, max_overflow=MAX_OVERFLOW, connect_args=connect_args
    )


#: Seconds to wait for PostgreSQL to accept a connection.
CONNECT_TIMEOUT = 10
#: Connections a process keeps open (``smsgate serve`` runs 4 threads per worker; the worker
#: and CLI use one or two), and how many more it may open for a burst.
POOL_SIZE = 10
MAX_OVERFLOW = 20


def open_postgresql(connection: Connection, wait: float | None, key: str | None) -> None:
    """Open a bounded PostgreSQL transaction in one round trip: its lock and statement
    timeouts (both for this transaction only, so nothing leaks to the next user of a pooled
    server connection behind PgBouncer) and, when ``key`` is given, the transaction-scoped
    advisory lock (``hashtext(key)``) it serialises on. Sent as the transaction's first
    statement, on the driver's cursor (``smsgate.driver``).

    Sent by ``Database.begin`` itself, not from an engine ``begin`` event: an engine with a
    listener makes every SQLAlchemy connection join its dispatchers and look them up again,
    a measurable share of a report's CPU."""
    parts: list[str] = []
    params: dict[str, str] = {}
    if wait:
        ms = max(1, int(wait * 1000))
        parts += [
            "set_config('lock_timeout', %(lock)s, true)",
            "set_config('statement_timeout', %(statement)s, true)",
        ]
        params |= {"lock": str(ms), "statement": str(ms + STATEMENT_MARGIN_MS)}
    if key is not None:
        parts.append("pg_advisory_xact_lock(hashtext(%(key)s))")
        params["key"] = key
    if parts:
        text = "SELECT " + ", ".join(parts)
        # The same text object every time (``smsgate.driver`` keeps a cursor per text).
        driver.execute_sql(connection, _OPENING.setdefault(text, text), params)


#: ``open_postgresql``'s texts (at most three), each one object.
_OPENING: dict[str, str] = {}


def _configure_sqlite(engine: Engine, synchronous: str) -> None:
    if synchronous.upper() not in ("FULL", "NORMAL"):
        raise ValueError(f"SQLite synchronous must be FULL or NORMAL, not {synchronous!r}")
    synchronous = synchronous.upper()

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: DBAPIConnection, _record: object) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        options = connection.get_execution_options()
        wait = options.get(LOCK_WAIT)
        busy = max(1, int(wait * 1000)) if wait else BUSY_TIMEOUT_MS
        if connection.info.get("busy_timeout", BUSY_TIMEOUT_MS) != busy:  # one PRAGMA per change
            connection.exec_driver_sql(f"PRAGMA busy_timeout={busy}")
            connection.info["busy_timeout"] = busy
        connection.exec_driver_sql("BEGIN DEFERRED" if options.get(READ_ONLY, False) else "BEGIN IMMEDIATE")


#: Execution option marking a connection whose transactions only read.
READ_ONLY = "smsgate_read_only"
#: Execution option: the longest a transaction may wait for a lock, in seconds (PostgreSQL
#: ``lock_timeout``, SQLite busy timeout). Unset: the defaults below, for jobs that may wait.
LOCK_WAIT = "smsgate_lock_wait"
BUSY_TIMEOUT_MS = 30000
#: A bounded transaction's statements may run this much longer than its lock wait.
STATEMENT_MARGIN_MS = 2000


#: The longest a bounded SQLite transaction queues for its turn among this process's writers
#: (each of which waits at most its own bound, or ``BLOCKED_WAIT``, for the database).
TURN_LIMIT = 30.0
#: A bounded SQLite transaction's wait while another process is known to hold the write lock.
BLOCKED_WAIT = 0.1


#: A group commit takes at most this many writers (the first one's answer waits for them all).
GROUP_LIMIT = 32
#: ... and stays open at most this long after its first writer began, in seconds.
GROUP_AGE = 0.25


@dataclass
class _Group:
    """One SQLite write transaction that several bounded writers of this process share.

    With ``synchronous=FULL`` every commit waits for the disk (2.5-8 ms measured, README
    "Deploying for a national election"), and SQLite has one writer at a time, so one commit per
    report caps a database at a few hundred reports per second whatever the CPU. Writers that
    queue for the write lock while another one works instead add their work to the same
    transaction (each in a SAVEPOINT) and are committed together by one sync; none of them
    returns, and so none of their webhooks answers, before that commit.

    Some SQLite errors end the whole transaction, not just the failing statement (a trigger's
    ``RAISE(ROLLBACK)``; SQLITE_FULL, IOERR and NOMEM may too): one member's failure then wipes
    the others' work while SQLAlchemy still counts the transaction as open. ``lost`` tells.
    """

    connection: Connection
    transaction: RootTransaction
    members: int = 0
    opened: float = field(default_factory=time.monotonic)
    committed: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None

    def full(self) -> bool:
        return self.members >= GROUP_LIMIT or time.monotonic() - self.opened > GROUP_AGE

    def lost(self) -> bool:
        """SQLite left the transaction that SQLAlchemy still holds open: it rolled it back.

        Only the driver knows (sqlite3's ``in_transaction``). Left undetected, the next member's
        SAVEPOINT would silently begin a new transaction, and the COMMIT of that one would
        report the earlier members' vanished work as stored.
        """
        if not self.transaction.is_active:
            return False
        driver = self.connection.connection.driver_connection
        return not getattr(driver, "in_transaction", True)


class GroupCommitFailed(Exception):
    """The group transaction holding this write was not committed; ``__cause__`` says why."""


class GroupRolledBack(Exception):
    """SQLite rolled back a group's whole transaction while one of its writers worked."""


class LockWaitTimeout(Exception):
    """A bounded transaction gave up waiting for its turn to write."""


def is_postgresql(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


@dataclass
class Database:
    """The app's engine and session factory, built once by ``create_app`` or a CLI command."""

    engine: Engine
    sessions: sessionmaker[Session]
    readers: sessionmaker[Session] | None = None
    _writers: threading.RLock = field(default_factory=threading.RLock, repr=False)
    _blocked_elsewhere: bool = field(default=False, repr=False)
    _group: _Group | None = field(default=None, repr=False)
    _queue_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _queued: int = field(default=0, repr=False)
    _depth: int = field(default=0, repr=False)

    @classmethod
    def from_url(cls, url: str, sqlite_synchronous: str = SQLITE_SYNCHRONOUS) -> Database:
        engine = make_engine(url, sqlite_synchronous)
        return cls(
            engine=engine,
            sessions=sessionmaker(engine, expire_on_commit=False),
            readers=sessionmaker(engine.execution_options(**{READ_ONLY: True}), expire_on_commit=False),
        )

    def _write_turn(self) -> AbstractContextManager[object]:
        return self._turn(None) if self.engine.dialect.name == "sqlite" else nullcontext()

    @contextmanager
    def begin(self, wait: float | None = None, *, serialise_on: str | None = None) -> Iterator[Session]:
        """A session inside one transaction: committed on success, rolled back on error.

        ``wait`` bounds the transaction's lock waits, in seconds: PostgreSQL's ``lock_timeout``
        (and a ``statement_timeout`` a little longer), SQLite's busy timeout. A request that
        must answer in time (a webhook) passes one; past it the transaction fails instead of
        waiting on. On SQLite, once a bounded transaction found the write lock held by another
        process for all of ``wait``, the next ones give up almost at once until one gets the
        lock again, so the threads queued behind it in this process answer in time too.
        """
        if wait is None:
            with self._write_turn():
                session = self.sessions()
                try:
                    with session.begin():
                        if serialise_on is not None and self.engine.dialect.name != "sqlite":
                            open_postgresql(session.connection(), None, serialise_on)
                        yield session
                finally:
                    _release(session)
            return
        if self.engine.dialect.name != "sqlite":
            session = self.sessions()
            try:
                with session.begin():
                    open_postgresql(session.connection(), wait, serialise_on)
                    yield session
            finally:
                _release(session)
            return
        with self._grouped(wait) as session:
            yield session

    @contextmanager
    def _grouped(self, wait: float) -> Iterator[Session]:
        """A bounded SQLite write inside the process's open group transaction (see ``_Group``).

        The first writer of a group runs in the group's transaction itself (its failure rolls
        the whole group back, which then holds nothing else); later ones each in a SAVEPOINT, so
        a failure undoes only their own work. A writer leaves its work for the next one in the
        queue to build on and commits only when nobody waits (or the group is full); either way
        this context exits only once the work is committed, and raises if the commit failed.
        """
        mine: _Group | None = None
        with self._turn(TURN_LIMIT, close_group=False):
            if self._depth > 1:  # a write begun inside another one of this thread: on its own
                with self._alone(wait) as session:
                    yield session
                return
            group = self._group
            if group is not None and group.full():
                self._commit_group()
                group = None
            if group is None:
                group = self._group = self._open_group(wait)
            session = self.sessions(
                bind=group.connection,
                join_transaction_mode="create_savepoint" if group.members else "rollback_only",
            )
            failure: BaseException | None = None
            try:
                with session.begin():
                    yield session
                mine = group
                group.members += 1
            except BaseException as error:
                failure = error
                raise
            finally:
                _release(session)
                if not group.transaction.is_active:  # the opener failed: nothing else was in it
                    self._discard_group(group)
                elif group.lost():  # this writer's statement took everyone's work with it
                    after = "" if failure is None else f" after {failure!r}"
                    self._fail_group(
                        group,
                        GroupRolledBack(
                            f"SQLite rolled back the group transaction of {group.members} writes{after}"
                        ),
                    )
                elif self._queued == 0 or group.full():
                    self._commit_group()
        assert mine is not None  # the body ran without raising
        while not mine.committed.wait(GROUP_AGE):
            self._commit_if_abandoned(mine)
        if mine.error is not None:
            # One exception per writer: the same instance raised in several threads would
            # gather all their tracebacks.
            raise GroupCommitFailed("the group commit holding this write failed") from mine.error

    def _commit_if_abandoned(self, group: _Group) -> None:
        """Commit ``group`` if the writer it was left open for never came (it gave up waiting
        for its turn just then) and nobody holds the turn."""
        if self._writers.acquire(blocking=False):
            try:
                if self._depth == 0 and self._group is group:
                    self._commit_group()
            finally:
                self._writers.release()

    @contextmanager
    def _alone(self, wait: float) -> Iterator[Session]:
        """A bounded SQLite transaction of its own (committed at its end), outside any group."""
        busy = BLOCKED_WAIT if self._blocked_elsewhere else wait
        with self.sessions.begin() as session:
            try:
                session.connection(execution_options={LOCK_WAIT: busy})
            except OperationalError:
                self._blocked_elsewhere = True
                raise
            self._blocked_elsewhere = False
            yield session

    @contextmanager
    def _turn(self, timeout: float | None, close_group: bool = True) -> Iterator[None]:
        """This process's turn to write on SQLite; ``close_group``: commit the open group first
        (a writer outside the group must not meet its uncommitted write lock)."""
        with self._queue_lock:
            self._queued += 1
        try:
            got = self._writers.acquire(timeout=-1 if timeout is None else timeout)
        finally:
            with self._queue_lock:
                self._queued -= 1
        if not got:
            raise LockWaitTimeout(f"no turn to write within {timeout:g} s")
        self._depth += 1
        try:
            if close_group and self._depth == 1 and self._group is not None:
                self._commit_group()
            yield
        finally:
            self._depth -= 1
            self._writers.release()

    def _open_group(self, wait: float) -> _Group:
        busy = BLOCKED_WAIT if self._blocked_elsewhere else wait
        connection = self.engine.connect().execution_options(**{LOCK_WAIT: busy})
        try:
            transaction = connection.begin()  # BEGIN IMMEDIATE with the busy timeout above
        except OperationalError:
            connection.close()
            self._blocked_elsewhere = True
            raise
        except BaseException:
            connection.close()
            raise
        self._blocked_elsewhere = False
        return _Group(connection, transaction)

    def _commit_group(self) -> None:
        """Commit the open group (one sync for all its writers) and wake them; a failure is
        raised in each of them, so none answers as if its work were stored."""
        group, self._group = self._group, None
        if group is None:
            return
        if group.lost():  # COMMIT would "succeed" on nothing
            self._fail_group(group, GroupRolledBack("SQLite rolled back the group transaction"))
            return
        try:
            group.transaction.commit()
        except BaseException as error:
            group.error = error
            log.error("SQLite group commit of %d writes failed: %s", group.members, error)
        finally:
            group.connection.close()
            group.committed.set()

    def _fail_group(self, group: _Group, error: BaseException) -> None:
        """Give every writer of ``group`` ``error`` and let no other one join it."""
        group.error = error
        log.error("SQLite group of %d writes not committed: %s", group.members, error)
        self._discard_group(group)

    def _discard_group(self, group: _Group) -> None:
        if self._group is group:
            self._group = None
        group.connection.close()
        group.committed.set()

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


def _release(session: Session) -> None:
    """Close ``session`` once its transaction is over and empty its ``info``.

    The report path keeps per-transaction state there (``station_lock`` the rows it locked,
    keyed by the ``SessionTransaction``, which refers back to the session): left in place, every
    request's session, transaction, connection and identity map (some 40 objects) form a
    reference cycle that only the garbage collector frees, and its young-generation passes
    then run every ten requests or so (about 28 µs of CPU a request, measured under
    ``bench/web_layer.py``'s setup). Nothing reads a session's ``info`` after its transaction.
    """
    session.close()
    session.info.clear()


def upsert_for(session: Session) -> Callable[..., postgresql.Insert | sqlite.Insert]:
    """The dialect's INSERT, which has ``on_conflict_do_nothing``/``_do_update``: PostgreSQL's or
    SQLite's, whichever the session is bound to."""
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
