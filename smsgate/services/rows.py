"""Rows read with SQLAlchemy Core turned into the session's persistent ORM objects, cheaply.

The report path reads its rows in statements that do several things at once (insert and read,
lock and read), so they come back as plain rows, and the rules after them work on ORM objects
that the commit writes back. Building each object through its constructor fires an attribute
event per column (about twice the cost of the rest of attaching it); ``attach`` fills the
object's state directly, as the ORM's own loading does, and marks every value as loaded.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from sqlalchemy import inspect
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.attributes import instance_state

T = TypeVar("T")


def attach(session: Session, model: type[T], values: Mapping[str, Any]) -> T:
    """``model``'s row with ``values`` (every column, by attribute name) as a persistent object
    of ``session``, without a query: the one the session already holds, if any (as a query
    would return it), else a new one."""
    mapper = inspect(model)
    key = mapper.identity_key_from_primary_key([values[name] for name in _primary_key(model)])
    held = session.identity_map.get(key)
    if held is not None:
        return held  # type: ignore[no-any-return]
    instance = mapper.class_manager.new_instance()
    instance_state(instance).dict.update(values)
    make_transient_to_detached(instance)  # every value loaded, none pending
    session.add(instance)
    return instance  # type: ignore[no-any-return]


def held(session: Session, model: type[Any], *key: object) -> bool:
    """Whether ``session`` already holds ``model``'s row with primary key ``key``."""
    return inspect(model).identity_key_from_primary_key(list(key)) in session.identity_map


def _primary_key(model: type[Any]) -> tuple[str, ...]:
    names = _KEYS.get(model)
    if names is None:
        mapper = inspect(model)
        names = _KEYS[model] = tuple(mapper.get_property_by_column(c).key for c in mapper.primary_key)
    return names


_KEYS: dict[type[Any], tuple[str, ...]] = {}
