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
