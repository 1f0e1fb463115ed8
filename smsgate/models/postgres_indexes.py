"""Indexes that exist only on PostgreSQL, created by migration ``2001``.

Regions are found by the prefix of a Kemendagri key: ``station_id LIKE '6371%'``. PostgreSQL
serves such a prefix from a plain btree index only when the column's collation is ``C``;
under any language collation (``C.UTF-8`` and ``en_US.UTF-8`` included, on PostgreSQL 15) it
scans the table instead. An index with the ``varchar_pattern_ops`` operator class compares
bytes whatever the collation, so ``LIKE 'prefix%'`` (and ``=``) become index range scans on
every database, however it was created.

The dashboard's message log searches text anywhere in a message (``LIKE '%…%'``); a trigram
index (the ``pg_trgm`` extension, part of PostgreSQL's contrib and trusted since PostgreSQL
13) serves that. Phone numbers are searched by their start or their end (``PHONE_INDEXES``).

The review queue and the dissent list are read in the order of partial indexes
(``ORDERED_INDEXES``): a national queue holds ~80,000 disputed or flagged stations, and
sorting all of them for each page of 25 took half a second.

None of these exist on SQLite, whose ``LIKE`` is case-insensitive and uses no index either
way; SQLite serves a kabupaten or a province, where the scans are small. The models do not
declare them, so the comparison of models and migrations skips them by name
(``include_object``, used by Alembic's environment and by the project tests).
"""

from __future__ import annotations

from typing import Any

#: name -> (table, indexed expression, partial-index condition or None)
PREFIX_INDEXES: dict[str, tuple[str, str, str | None]] = {
    "ix_stations_id_prefix": ("stations", "id varchar_pattern_ops", None),
    "ix_station_results_id_prefix": ("station_results", "station_id varchar_pattern_ops", None),
    "ix_reports_station_prefix_created": ("reports", "station_id varchar_pattern_ops, created_at", None),
    "ix_flags_open_station_prefix": ("flags", "station_id varchar_pattern_ops", "resolved_at IS NULL"),
    "ix_incidents_place_prefix_created": ("incidents", "place_key varchar_pattern_ops, created_at", None),
    "ix_contacts_region_prefix": ("contacts", "region_code varchar_pattern_ops", None),
    "ix_official_results_station_prefix": ("official_results", "station_id varchar_pattern_ops", None),
    "ix_region_counters_key_prefix": ("region_counters", "region_key varchar_pattern_ops", None),
}

#: name -> (table, indexed expression): GIN trigram indexes for ``LIKE '%text%'`` searches.
SEARCH_INDEXES: dict[str, tuple[str, str]] = {
    "ix_inbound_messages_body_trgm": ("inbound_messages", "lower(body) gin_trgm_ops"),
    "ix_outbound_messages_text_trgm": ("outbound_messages", "lower(text) gin_trgm_ops"),
}

#: name -> (table, indexed expression): the message log's phone search
#: (``smsgate.dashboard.phone_search``): numbers starting with what was typed (a range on the
#: number) or ending with it (a range on the reversed number). They replaced trigram indexes
#: on the numbers, which every digit string matched by the hundred thousand.
PHONE_INDEXES: dict[str, tuple[str, str]] = {
    # Also flood control's index: a sender's recent messages newest first (``services.flood``),
    # which SQLite reads from ``ix_inbound_messages_from_received`` (not created here).
    "ix_inbound_messages_from_prefix": (
        "inbound_messages",
        "from_number varchar_pattern_ops, received_at, id",
    ),
    "ix_inbound_messages_from_suffix": ("inbound_messages", "reverse(from_number) text_pattern_ops"),
    "ix_outbound_messages_to_prefix": ("outbound_messages", "to_number varchar_pattern_ops"),
    "ix_outbound_messages_to_suffix": ("outbound_messages", "reverse(to_number) text_pattern_ops"),
}

#: The review queue's condition, as its partial index states it: PostgreSQL uses a partial index
#: only when it can prove the query's WHERE implies the index's, so ``services.review.queue``
#: writes the same SQL (literal values, the bare boolean; ``flagged IS true`` or a bound
#: parameter would not prove it).
REVIEW_QUEUE_CONDITION = "status IN ('disputed', 'overridden') OR flagged"

#: name -> (table, indexed columns in order, partial-index condition): btree indexes whose order
#: is the order a page shows, so its first page is the first entries of the index, not a sort.
#: The queue's is ordered by ``review_at`` (``updated_at`` inside the queue, NULL outside), not
#: ``updated_at``: no column of these indexes changes when a report leaves a station's status,
#: flag and dissent as they were, so PostgreSQL updates its result row in place (HOT).
ORDERED_INDEXES: dict[str, tuple[str, str, str]] = {
    "ix_station_results_review_queue": (
        "station_results",
        "impact DESC, review_at DESC, station_id",
        REVIEW_QUEUE_CONDITION,
    ),
    "ix_station_results_dissent_impact": ("station_results", "impact DESC, station_id", "dissent_open > 0"),
    # The volunteers without a report, in the page's order (dashboard.queries).
    "ix_contacts_volunteers_in_order": (
        "contacts",
        "region_code, tps, phone",
        "role = 'volunteer' AND active",
    ),
}

#: name -> (table, indexed expression): the results export joins a region's desa by the prefix
#: of their dotted code (``code LIKE '35.78%'``) instead of reading all ~91,000 regions.
EXPORT_INDEXES: dict[str, tuple[str, str]] = {
    "ix_regions_code_prefix": ("regions", "code varchar_pattern_ops"),
}

POSTGRESQL_ONLY_INDEXES = (
    frozenset(PREFIX_INDEXES)
    | frozenset(SEARCH_INDEXES)
    | frozenset(ORDERED_INDEXES)
    | frozenset(PHONE_INDEXES)
    | frozenset(EXPORT_INDEXES)
)


#: Indexes of the models that exist on SQLite only: on PostgreSQL an index above does their work
#: (flood control's is the phone search's prefix index; a station's reports are found by
#: ``ix_reports_station_prefix_created``, migration ``2022``).
SQLITE_ONLY_INDEXES = frozenset({"ix_inbound_messages_from_received", "ix_reports_station_created"})


#: (table, column) kept by PostgreSQL's triggers alone, which the models do not map: whether a
#: result row's station is sampled, so the sampled stations' change log fires for those only
#: (migration ``2024``).
POSTGRESQL_ONLY_COLUMNS = frozenset({("station_results", "sampled")})


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """Alembic's ``include_object`` hook: leave the PostgreSQL-only indexes and columns out of
    comparisons, and the SQLite-only indexes where they are missing (PostgreSQL)."""
    if type_ == "column" and reflected and compare_to is None:
        return (obj.table.name, name) not in POSTGRESQL_ONLY_COLUMNS
    if type_ != "index" or compare_to is not None:
        return True
    return name not in (POSTGRESQL_ONLY_INDEXES if reflected else SQLITE_ONLY_INDEXES)
