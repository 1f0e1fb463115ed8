"""SQLite group commit: writers that queue behind one another share one commit (one sync with
``synchronous=FULL``), and none of them returns before that commit, so no webhook answers for
work that is not yet on disk. A writer's failure undoes only its own work.

Each writer checks, right after its ``with database.begin(...)`` ends, through a separate
connection, that its row is committed: that is the guarantee a webhook relies on.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import event, text

from smsgate.db import Database


@pytest.fixture
def sqlite_database(database: Database) -> Iterator[Database]:
    if database.engine.dialect.name != "sqlite":
        pytest.skip("group commit is SQLite's (PostgreSQL commits concurrent sessions together itself)")
    with database.begin() as session:
        session.execute(text("CREATE TABLE grouped (writer INTEGER PRIMARY KEY)"))
    yield database


def committed(database: Database) -> set[int]:
    """The rows another connection sees: only what is committed."""
    path = database.engine.url.database
    assert path
    with sqlite3.connect(path) as connection:
        return {row[0] for row in connection.execute("SELECT writer FROM grouped")}


def count_commits(database: Database) -> list[int]:
    commits: list[int] = []
    event.listen(database.engine, "commit", lambda _conn: commits.append(1))
    return commits


def wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


class Writer(threading.Thread):
    """Writes its number in a bounded transaction, then records whether it was committed."""

    def __init__(
        self, database: Database, number: int, hold: threading.Event | None = None, fail: bool = False
    ) -> None:
        super().__init__(daemon=True)
        self.database, self.number, self.hold, self.fail = database, number, hold, fail
        self.error: BaseException | None = None
        self.visible_on_return: bool | None = None
        self.inside = threading.Event()

    def run(self) -> None:
        try:
            with self.database.begin(wait=5) as session:
                session.execute(text("INSERT INTO grouped (writer) VALUES (:n)"), {"n": self.number})
                self.inside.set()
                if self.hold is not None:
                    assert self.hold.wait(10)
                if self.fail:
                    raise RuntimeError(f"writer {self.number} fails")
            self.visible_on_return = self.number in committed(self.database)
        except BaseException as error:  # the test inspects it
            self.error = error


def queue_behind_first(database: Database, others: list[Writer]) -> Writer:
    """Writer 1 holds the turn until ``others`` all queue for it; then everyone runs."""
    hold = threading.Event()
    first = Writer(database, 1, hold)
    first.start()
    assert first.inside.wait(10)
    for writer in others:
        writer.start()
    wait_until(lambda: database._queued == len(others))
    hold.set()
    for writer in [first, *others]:
        writer.join(10)
        assert not writer.is_alive()
    return first


def test_writers_queued_behind_one_share_one_commit_and_return_only_after_it(sqlite_database) -> None:  # type: ignore[no-untyped-def]
    commits = count_commits(sqlite_database)
    others = [Writer(sqlite_database, n) for n in (2, 3, 4)]
    first = queue_behind_first(sqlite_database, others)
    for writer in [first, *others]:
        assert writer.error is None
        assert writer.visible_on_return is True, f"writer {writer.number} returned before its commit"
    assert committed(sqlite_database) == {1, 2, 3, 4}
    assert len(commits) == 1


def test_a_failing_writer_in_a_group_undoes_only_its_own_work(sqlite_database) -> None:  # type: ignore[no-untyped-def]
    failing, fine = Writer(sqlite_database, 2, fail=True), Writer(sqlite_database, 3)
    first = queue_behind_first(sqlite_database, [failing, fine])
    assert isinstance(failing.error, RuntimeError)
    assert first.error is None and fine.error is None
    assert first.visible_on_return and fine.visible_on_return
    assert committed(sqlite_database) == {1, 3}


def test_the_first_writer_failing_leaves_nothing_behind(sqlite_database) -> None:  # type: ignore[no-untyped-def]
    first = Writer(sqlite_database, 1, fail=True)
    first.run()
    assert isinstance(first.error, RuntimeError)
    second = Writer(sqlite_database, 2)
    second.run()
    assert second.error is None and second.visible_on_return
    assert committed(sqlite_database) == {2}


def test_a_writer_outside_the_group_commits_it_before_its_own_transaction(sqlite_database) -> None:  # type: ignore[no-untyped-def]
    """An unbounded write (a job, the dashboard) queued behind a group must not wait on the
    group's uncommitted write lock: it commits the group first."""
    done: list[set[int]] = []

    class Job(Writer):
        def run(self) -> None:
            with self.database.begin() as session:
                done.append(committed(self.database))  # the group is committed before this begins
                session.execute(text("INSERT INTO grouped (writer) VALUES (9)"))

    first = queue_behind_first(sqlite_database, [Job(sqlite_database, 9)])
    assert first.error is None and first.visible_on_return
    assert done == [{1}]
    assert committed(sqlite_database) == {1, 9}


def rollback_trigger_for(database: Database, writer: int) -> None:
    """Writer ``writer``'s insert makes SQLite roll back the WHOLE transaction, not only the
    statement (as SQLITE_FULL, IOERR or NOMEM may do): earlier members' work goes with it."""
    with database.begin() as session:
        session.execute(
            text(
                f"CREATE TRIGGER wipe BEFORE INSERT ON grouped WHEN NEW.writer = {writer} "
                "BEGIN SELECT RAISE(ROLLBACK, 'whole transaction gone'); END"
            )
        )


class HeldWriter(Writer):
    """Takes its turn, then waits for ``hold`` BEFORE its insert (so the test can queue the next
    writer behind it first)."""

    def run(self) -> None:
        try:
            with self.database.begin(wait=5) as session:
                self.inside.set()
                assert self.hold is not None and self.hold.wait(10)
                session.execute(text("INSERT INTO grouped (writer) VALUES (:n)"), {"n": self.number})
            self.visible_on_return = self.number in committed(self.database)
        except BaseException as error:  # the test inspects it
            self.error = error


def run_in_turn(database: Database, writers: list[Writer]) -> None:
    """Each writer takes the turn after the previous one: it queues while the previous one holds
    the turn (inside its transaction), which lets it go only then; the last one goes at once."""
    for previous, writer in zip([None, *writers[:-1]], writers, strict=True):
        writer.start()
        if previous is None:
            assert writer.inside.wait(10)
            continue
        wait_until(lambda: database._queued == 1)
        assert previous.hold is not None
        previous.hold.set()
        if writer.hold is not None:
            assert writer.inside.wait(10)
    if writers[-1].hold is not None:
        writers[-1].hold.set()
    for writer in writers:
        writer.join(15)
        assert not writer.is_alive()


def test_a_member_that_rolls_back_the_whole_transaction_fails_the_members_before_it(sqlite_database) -> None:  # type: ignore[no-untyped-def]
    """Writer 2's statement wipes the group's transaction, writer 3 (queued behind it) fails on
    its own. Writer 1's row is gone: writer 1 must raise, not return as if it were committed
    (the commit of an empty transaction used to succeed)."""
    rollback_trigger_for(sqlite_database, 2)
    first = Writer(sqlite_database, 1, threading.Event())
    wiping = HeldWriter(sqlite_database, 2, threading.Event())
    failing = Writer(sqlite_database, 3, fail=True)
    run_in_turn(sqlite_database, [first, wiping, failing])
    assert wiping.error is not None
    assert isinstance(failing.error, RuntimeError)
    assert first.error is not None, f"writer 1 returned OK (committed: {first.visible_on_return})"
    assert committed(sqlite_database) == set()
    after = Writer(sqlite_database, 4)  # the next write starts a group of its own
    after.run()
    assert after.error is None and after.visible_on_return
    assert committed(sqlite_database) == {4}


def test_every_member_of_a_lost_group_gets_an_error_of_its_own(sqlite_database) -> None:  # type: ignore[no-untyped-def]
    """Writers 1 and 2 are in the group when writer 3 wipes it: each raises its own exception
    (one instance raised in many threads would pile up their tracebacks), caused by the group's."""
    rollback_trigger_for(sqlite_database, 3)
    first = Writer(sqlite_database, 1, threading.Event())
    second = Writer(sqlite_database, 2, threading.Event())
    wiping = HeldWriter(sqlite_database, 3, threading.Event())
    run_in_turn(sqlite_database, [first, second, wiping])
    assert wiping.error is not None
    assert first.error is not None and second.error is not None
    assert first.error is not second.error
    assert first.error.__cause__ is not None and first.error.__cause__ is second.error.__cause__
    assert committed(sqlite_database) == set()
