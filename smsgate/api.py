"""The JSON API under ``/api``: off unless ``SMSGATE_API_TOKEN`` is set, then bearer-token only."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Any

from flask import Blueprint, abort, current_app, jsonify, request
from flask.typing import ResponseReturnValue
from sqlalchemy.orm import Session

from .db import Database
from .services import official as official_service
from .services import tally as tally_service

bp = Blueprint("api", __name__, url_prefix="/api")


def database() -> Database:
    return current_app.extensions["smsgate.database"]


@bp.before_request
def require_token() -> ResponseReturnValue | None:
    token = current_app.extensions["smsgate.settings"].api_token
    if not token:
        abort(404)
    supplied = request.headers.get("Authorization", "")
    if not hmac.compare_digest(supplied.encode(), f"Bearer {token}".encode()):
        return jsonify(error="unauthorized"), 401
    return None


@bp.get("/tally")
def tally() -> ResponseReturnValue:
    with database().read() as session:
        try:
            return jsonify(tally_service.tally(session, request.args.get("region")))
        except tally_service.UnknownRegion:
            return jsonify(error="unknown region", region=request.args.get("region")), 404


@bp.get("/stations/<station_id>")
def station(station_id: str) -> ResponseReturnValue:
    with database().read() as session:
        document = tally_service.station_document(session, station_id.replace(".", "").replace("/", ""))
    if document is None:
        return jsonify(error="unknown station", id=station_id), 404
    return jsonify(document)


@bp.get("/quickcount")
def quickcount() -> ResponseReturnValue:
    """The quick-count estimate for ``region`` (smsgate/quickcount/service.py)."""
    from .quickcount import service as quickcount_service

    region = request.args.get("region")
    with database().read() as session:
        try:
            return jsonify(quickcount_service.quickcount(session, region))
        except tally_service.UnknownRegion:
            return jsonify(error="unknown region", region=region), 404
        except quickcount_service.NoDesign:
            return jsonify(error="no sample design", hint="smsgate sample draw"), 404


@bp.get("/quickcount/history")
def quickcount_history() -> ResponseReturnValue:
    """The quick-count estimate through the night for ``region`` (smsgate/quickcount/service.py)."""
    from .quickcount import service as quickcount_service

    region = request.args.get("region")
    with database().read() as session:
        try:
            return jsonify(quickcount_service.history(session, region))
        except tally_service.UnknownRegion:
            return jsonify(error="unknown region", region=region), 404
        except quickcount_service.NoDesign:
            return jsonify(error="no sample design", hint="smsgate sample draw"), 404


@bp.get("/discrepancies")
def discrepancies() -> ResponseReturnValue:
    """Stations whose official results differ from ours, largest first (services/official.py)."""
    region, status = request.args.get("region"), request.args.get("status", "verified")
    limit = request.args.get("limit", str(official_service.DEFAULT_LIMIT))
    if not limit.isdigit() or not 1 <= int(limit) <= official_service.MAX_LIMIT:
        return jsonify(error=f"limit must be 1..{official_service.MAX_LIMIT}", limit=limit), 400
    if status not in official_service.STATUS_CHOICES:
        return jsonify(error="status must be verified or all", status=status), 400
    with database().read() as session:
        try:
            return jsonify(official_service.discrepancies(session, region, limit=int(limit), status=status))
        except tally_service.UnknownRegion:
            return jsonify(error="unknown region", region=region), 404


def _region_key() -> tuple[str, str | None]:
    """The undotted key of ``?region=`` (``""`` for the whole country); raises UnknownRegion."""
    code = request.args.get("region")
    with database().read() as session:
        return tally_service.region_info(session, code).key, code


def _limit() -> int | None:
    raw = request.args.get("limit", "500")
    return int(raw) if raw.isdigit() and 1 <= int(raw) <= 5000 else None


def _region_listing(name: str, listing: Callable[[Session, str, int], list[Any]]) -> ResponseReturnValue:
    """``{"region": code, name: listing(session, key, limit)}`` for ``?region=&limit=``."""
    return _region_answer(lambda session, key, limit: {name: listing(session, key, limit)})


def _region_answer(answer: Callable[[Session, str, int], dict[str, Any]]) -> ResponseReturnValue:
    """``{"region": code, **answer(session, key, limit)}`` for ``?region=&limit=``: 400 for a
    limit outside 1..5000, 404 for an unknown region."""
    limit = _limit()
    if limit is None:
        return jsonify(error="limit must be 1..5000"), 400
    try:
        key, code = _region_key()
    except tally_service.UnknownRegion:
        return jsonify(error="unknown region", region=request.args.get("region")), 404
    with database().read() as session:
        return jsonify({"region": code or "", **answer(session, key, limit)})


@bp.get("/flags")
def flags() -> ResponseReturnValue:
    """The review queue: open flags of stations in ``region``, newest first (services/checks.py)."""
    from .services import checks

    return _region_listing("flags", checks.open_flags)


@bp.get("/incidents")
def incidents() -> ResponseReturnValue:
    """Incidents (``LAPOR``) in ``region``, newest first (services/incidents.py)."""
    from .services import incidents as incident_service

    return _region_listing("incidents", incident_service.listing)


@bp.get("/review")
def review_queue() -> ResponseReturnValue:
    """Disputed and flagged stations of ``region``, largest impact first (services/review.py)."""
    from .services import review

    return _region_listing("stations", review.queue)


@bp.get("/dissent")
def dissent() -> ResponseReturnValue:
    """Verified stations of ``region`` with dissent nobody cleared, largest impact first."""
    from .services import review

    return _region_listing("stations", review.dissent)


@bp.get("/outliers")
def outliers() -> ResponseReturnValue:
    """Volunteers reporting in ``region`` who are often outvoted (services/outliers.py)."""
    from .services import outliers as outlier_service

    return _region_answer(lambda session, key, limit: outlier_service.outliers(session, key, limit=limit))
