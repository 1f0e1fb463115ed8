"""Rows read with SQLAlchemy Core turned into the session's persistent ORM objects, cheaply.

The report path reads its rows in statements that do several things at once (insert and read,
lock and read), so they come back as plain rows, and the rules after them work on ORM objects
that the commit writes back. Building each object through its constructor fires an attribute
event per column (about twice the cost of the rest of attaching it); ``attach`` fills the
object's state directly, as the ORM's own loading does, and marks every value as loaded.

For a model without relationships, given every column, ``attach`` and ``detach`` go to the
session's identity map directly (``Session._update_impl``, ``_expunge_states``): what
``make_transient_to_detached``, ``Session.add`` and ``Session.expunge`` add on top is
expiring the attributes not given (there are none), and walking the relationships for
cascades (there are none), which cost about as much as the rest of attaching an object.
Any other model or row takes the public way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import inspect
from sqlalchemy.orm import Mapper, Session, make_transient_to_detached
from sqlalchemy.orm.attributes import instance_state

T = TypeVar("T")


def attach(session: Session, model: type[T], values: Mapping[str, Any]) -> T:
    """``model``'s row with ``values`` (every column, by attribute name) as a persistent object
    of ``session``, without a query: the one the session already holds, if any (as a query
    would return it), else a new one."""
    known = _known(model)
    key = known.mapper.identity_key_from_primary_key(tuple(values[name] for name in known.primary_key))
    held = session.identity_map.get(key)
    if held is not None:
        return held  # type: ignore[no-any-return]
    instance = known.mapper.class_manager.new_instance()
    state = instance_state(instance)
    state.dict.update(values)
    if known.plain and values.keys() == known.columns:
        # What make_transient_to_detached and Session.add come to here: the identity key, and
        # the state in the identity map (no attribute to expire, no relationship to cascade).
        state.key = key
        session._update_impl(state)
    else:
        make_transient_to_detached(instance)  # every value loaded, none pending
        session.add(instance)
    return instance  # type: ignore[no-any-return]


def detach(session: Session, objects: Iterable[Any]) -> None:
    """``Session.expunge`` each of ``objects`` (all in ``session``), at once for the models
    without relationships (nothing to cascade to)."""
    plain = []
    for obj in objects:
        if _known(type(obj)).plain:
            plain.append(instance_state(obj))
        else:
            session.expunge(obj)
    if plain:
        session._expunge_states(plain)


def held(session: Session, model: type[Any], *key: object) -> bool:
    """Whether ``session`` already holds ``model``'s row with primary key ``key``."""
    return inspect(model).identity_key_from_primary_key(list(key)) in session.identity_map


@dataclass(frozen=True)
class _Known:
    """What ``attach`` needs of a model, computed once: its mapper, the attribute names of its
    primary key and of all its columns, and whether it is plain (no relationship, no listener
    of the ``expire`` event)."""

    mapper: Mapper[Any]
    primary_key: tuple[str, ...]
    columns: frozenset[str]
    plain: bool


def _known(model: type[Any]) -> _Known:
    known = _MODELS.get(model)
    if known is None:
        mapper = inspect(model)
        known = _MODELS[model] = _Known(
            mapper=mapper,
            primary_key=tuple(mapper.get_property_by_column(c).key for c in mapper.primary_key),
            columns=frozenset(attr.key for attr in mapper.column_attrs),
            plain=not mapper.relationships and not mapper.class_manager.dispatch.expire,
        )
    return known


_MODELS: dict[type[Any], _Known] = {}
