"""Dashboard pages: thin views that check the session and scope, call ``queries`` and render."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from datetime import datetime
from functools import wraps
from typing import Any
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    g,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    session,
    stream_with_context,
    url_for,
)
from flask.typing import ResponseReturnValue
from sqlalchemy.orm import Session

from ..csv_cells import safe_row
from ..db import Database
from ..models import Region, Report, Station, User, utcnow
from ..regions import level_of, normalise_code, to_code, to_key
from ..services import outliers as outlier_service
from ..services import review as review_service
from . import accounts, activity, freshness, phone_search, queries
from .csrf_protect import csrf
from .i18n import DEFAULT, LANGUAGES, translate
from .shared import Shared

bp = Blueprint(
    "dashboard",
    __name__,
    url_prefix="/dashboard",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)


def database() -> Database:
    return current_app.extensions["smsgate.database"]


def lang() -> str:
    value = session.get("lang", DEFAULT)
    return value if value in LANGUAGES else DEFAULT


def t(key: str, **values: object) -> str:
    return translate(key, lang(), **values)


@bp.app_template_filter("num")
def number(value: Any) -> str:
    if value is None or value == "":
        return "–"
    text = f"{value:,}"
    return text.replace(",", ".") if lang() == "id" else text


@bp.app_template_filter("rate")
def rate(value: float | None) -> str:
    """A rate per minute for people: whole numbers (``2.274``, not ``2274.0``); one decimal
    only below 10 when it has one (``0,5``). Mirrored by ``fmtRate`` in dashboard.js."""
    n = float(value or 0)
    if n >= 10 or n == int(n):
        return number(round(n))
    text = f"{n:.1f}"
    return text.replace(".", ",") if lang() == "id" else text


@bp.app_template_filter("when")
def when(value: datetime | str | None, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    """A moment in the deployment's zone (SMSGATE_TIMEZONE), e.g. ``2024-02-14 19:05:00 WITA``."""
    if not value:
        return ""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    local = moment.astimezone(ZoneInfo(current_app.extensions["smsgate.settings"].timezone))
    return f"{local.strftime(fmt)} {local.tzname()}"


def _overview(db: Session, code: str, language: str) -> dict[str, Any]:
    """The overview document with its times also in the deployment's zone, for people."""
    now = utcnow()
    settings = current_app.extensions["smsgate.settings"]
    document = queries.overview(
        db,
        code,
        now,
        database=database(),
        card_seconds=settings.quickcount_card_seconds,
        card_grace=settings.quickcount_card_grace,
    )
    document["activity"] = activity.chart(database(), to_key(code), now, session=db)
    document["updated_local"] = when(document["updated_at"])
    for point in document["activity"]["points"]:
        point["label"] = when(point["t"], "%H:%M")
    quick = document.get("quick_count")
    if quick:
        _quick_count_texts(quick, language)
    return document


def _quick_count_texts(quick: dict[str, Any], language: str) -> None:
    """The quick-count card's words in the viewer's language (the page script shows them as
    they come, so the refresh needs no catalogue of its own)."""
    quick["warning_texts"] = [translate(f"qc_warning_{w}", language) for w in quick["warnings"]]
    lead, president = quick["lead"], quick["presidential"]
    if president is not None:
        runoff = president["runoff"] or ["", ""]
        outcome, status = (president[k].replace(" ", "_") for k in ("outcome", "status"))
        key = f"qc_presidential_{outcome}_{status}"
        quick["call_text"] = translate(
            key, language, winner=president["winner"], first=runoff[0], second=runoff[1]
        )
    elif lead is not None:
        quick["call_text"] = translate(
            f"qc_call_{quick['call'].replace(' ', '_')}", language, first=lead["first"]
        )
    else:
        quick["call_text"] = ""
    if lead is not None:
        margin = "" if lead["low"] is None else f" (95%: {lead['low']:.1f} – {lead['high']:.1f})"
        quick["lead_text"] = (
            translate(
                "qc_lead", language, first=lead["first"], second=lead["second"], value=f"{lead['value']:.1f}"
            )
            + margin
        )
    else:
        quick["lead_text"] = ""
    fresh = quick["freshness"]
    counted = f"{fresh['counted']:,}"
    quick["freshness_text"] = translate(
        "qc_freshness",
        language,
        time=when(fresh["computed_at"], "%H:%M:%S"),
        counted=counted.replace(",", ".") if language == "id" else counted,
    ) + (
        ""
        if fresh["current"]
        else " (" + translate("qc_freshness_pending", language, seconds=f"{fresh['interval']:g}") + ")"
    )
    history = quick["history"]
    history["first_label"] = when(history["first"], "%H:%M") if history["first"] else ""
    history["last_label"] = when(history["last"], "%H:%M") if history["last"] else ""


@bp.app_template_filter("pct")
def percent(value: float) -> str:
    text = f"{value:.1f}%"
    return text.replace(".", ",") if lang() == "id" else text


@bp.context_processor
def template_globals() -> dict[str, Any]:
    return {"t": t, "lang": lang(), "user": g.get("user"), "level_of": level_of}


@bp.before_request
def before() -> ResponseReturnValue | None:
    if request.method == "POST":
        csrf.protect()
    g.user = None
    user_id = session.get("user_id")
    if user_id is not None:
        with database().read() as db:
            user = db.get(User, user_id)
        if current_session(user):
            g.user = user
        else:
            language = lang()
            session.clear()
            session["lang"] = language
    return None


def current_session(user: User | None) -> bool:
    """Whether the signed cookie still names a live session: the account exists, is enabled, and
    has not ended its sessions since (logout, new password, ``smsgate user disable``)."""
    return (
        user is not None and user.disabled_at is None and session.get("generation") == user.session_generation
    )


def start_session(user: User) -> None:
    language = lang()
    session.clear()
    session.permanent = True
    session["user_id"] = user.id
    session["generation"] = user.session_generation
    session["lang"] = language


def login_required(view: Callable[..., ResponseReturnValue]) -> Callable[..., ResponseReturnValue]:
    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> ResponseReturnValue:
        if g.user is None:
            if request.path.startswith(url_for("dashboard.overview_json")):
                return jsonify(error="login required"), 401
            return redirect(url_for("dashboard.login", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)

    return wrapped


def safe_next(target: str | None) -> str:
    """Only redirect back into the dashboard (no open redirect)."""
    if target and target.startswith("/dashboard") and not target.startswith("//"):
        return target
    return url_for("dashboard.overview")


def client_ip() -> str:
    """The client's address; behind ``SMSGATE_TRUSTED_PROXIES`` proxies, ProxyFix has already
    replaced the proxy's own address with the one it forwarded."""
    return request.remote_addr or "unknown"


# -- session -------------------------------------------------------------------------------


def wait_message(seconds: int) -> str:
    return t("login_wait", minutes=max(1, -(-seconds // 60)))


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    error = None
    status = 200
    retry_after = 0
    if request.method == "POST":
        with database().begin() as db:
            result = accounts.authenticate(
                db, request.form.get("email", ""), request.form.get("password", ""), client_ip(), utcnow()
            )
            if result.user is not None:
                start_session(result.user)
                return redirect(safe_next(request.args.get("next")))
        retry_after = result.retry_after
        error = wait_message(retry_after) if retry_after else t("login_failed")
        status = 429 if retry_after else 401
    response = make_response(render_template("dashboard/login.html", error=error), status)
    if retry_after:
        response.headers["Retry-After"] = str(retry_after)
    return response


@bp.post("/logout")
@login_required
def logout() -> ResponseReturnValue:
    """Ends every session of this account on the server, not only this browser's cookie."""
    with database().begin() as db:
        user = db.get_one(User, g.user.id)
        accounts.end_sessions(user)
    language = lang()
    session.clear()
    session["lang"] = language
    return redirect(url_for("dashboard.login"))


@bp.route("/password", methods=["GET", "POST"])
@login_required
def password() -> ResponseReturnValue:
    """Change one's own password: every other session of the account ends, this one continues."""
    error = None
    status = 200
    if request.method == "POST":
        current = request.form.get("current", "")
        new = request.form.get("new", "")
        with database().begin() as db:
            result = accounts.authenticate(db, g.user.email, current, client_ip(), utcnow())
            if result.user is None:
                error = wait_message(result.retry_after) if result.throttled else t("password_wrong")
                status = 429 if result.throttled else 403
            elif new != request.form.get("repeat", ""):
                error, status = t("password_mismatch"), 400
            else:
                try:
                    accounts.set_password(result.user, new)
                except accounts.AccountError:
                    error, status = t("password_too_short", n=accounts.MIN_PASSWORD), 400
                else:
                    start_session(result.user)
        if error is None:
            flash(t("password_changed"))
            return redirect(url_for("dashboard.overview"))
    return render_template("dashboard/password.html", error=error), status


@bp.post("/lang")
def set_language() -> ResponseReturnValue:
    choice = request.form.get("lang", DEFAULT)
    session["lang"] = choice if choice in LANGUAGES else DEFAULT
    return redirect(safe_next(request.form.get("next")))


# -- scope ---------------------------------------------------------------------------------


def scope_code() -> str | None:
    return g.user.region_code


def region_in_scope(db: Session, code: str | None) -> str:
    """The dotted code asked for (the user's scope when empty); 404 unknown, 403 outside scope."""
    if not code:
        return scope_code() or ""
    try:
        dotted = normalise_code(code)
    except ValueError:
        abort(404)
    if db.get(Region, dotted) is None:
        abort(404)
    if not accounts.in_scope(g.user, to_key(dotted)):
        abort(403)
    return dotted


def station_in_scope(db: Session, station_id: str) -> Station:
    station = db.get(Station, station_id)
    if station is None:
        abort(404)
    if not accounts.in_scope(g.user, station.id):
        abort(403)
    return station


# -- overview ------------------------------------------------------------------------------


#: Overview documents being computed, shared by the viewers of a region who asked meanwhile.
_shared_overviews = Shared()


def documents() -> freshness.Documents:
    """This app's overview documents kept while their validity token holds (per process)."""
    return current_app.extensions.setdefault("smsgate.overview_documents", freshness.Documents())


def overview_token(db: Session, code: str) -> freshness.Token:
    settings = current_app.extensions["smsgate.settings"]
    return freshness.token(db, to_key(code), utcnow(), card_seconds=settings.quickcount_card_seconds)


def shared_overview(code: str, token: freshness.Token) -> freshness.Kept:
    """The overview document of ``code`` (already checked against the viewer's scope) at
    ``token`` (read in this request): the one this process kept while the token holds
    (``freshness``), else computed once for every viewer of that region in the viewer's
    language who asked while it had not started yet (``shared.Shared``: never older than the
    request). Read-only: it is shared."""
    language = lang()

    def compute() -> dict[str, Any]:
        with database().read() as db:
            return _overview(db, code, language)

    def shared() -> dict[str, Any]:
        document: dict[str, Any] = _shared_overviews.get((id(database()), code, language), compute)
        return document

    return documents().get((code, language), token, shared)


@bp.get("/")
@login_required
def overview() -> ResponseReturnValue:
    with database().read() as db:
        code = region_in_scope(db, request.args.get("region"))
        crumbs = queries.breadcrumbs(db, code, scope_code())
        warnings = fleet_warnings(db)
        token = overview_token(db, code)
    document = shared_overview(code, token).document
    return render_template(
        "dashboard/overview.html", doc=document, code=code, crumbs=crumbs, fleet_warnings=warnings
    )


@bp.get("/api/overview")
@login_required
def overview_json() -> ResponseReturnValue:
    """The overview document the page refreshes itself from. Tagged with an ``ETag`` of its
    validity token: a request with ``If-None-Match`` naming the current one gets ``304`` and no
    body (``Cache-Control: no-cache`` makes browsers revalidate every time, never reuse
    unasked)."""
    with database().read() as db:
        code = region_in_scope(db, request.args.get("region"))
        token = overview_token(db, code)
    kept = shared_overview(code, token)
    response = jsonify(kept.document)
    response.set_etag(kept.etag, weak=True)
    response.headers["Cache-Control"] = "private, no-cache"
    return response.make_conditional(request)


# -- drill-down ----------------------------------------------------------------------------


@bp.get("/regions/")
@bp.get("/regions/<code>")
@login_required
def region(code: str | None = None) -> ResponseReturnValue:
    with database().read() as db:
        dotted = region_in_scope(db, code)
        token = overview_token(db, dotted)
        kind, rows = queries.child_rows(db, dotted)
        crumbs = queries.breadcrumbs(db, dotted, scope_code())
        codes = queries.candidates(db)
    document = shared_overview(dotted, token).document
    return render_template(
        "dashboard/region.html", doc=document, code=dotted, kind=kind, rows=rows, crumbs=crumbs, codes=codes
    )


@bp.get("/stations/<station_id>")
@login_required
def station(station_id: str) -> ResponseReturnValue:
    with database().read() as db:
        station_in_scope(db, station_id)
        page = queries.station_page(db, station_id)
        if page is None:
            abort(404)
        crumbs = queries.breadcrumbs(db, page["station"].region_code, scope_code())
        codes = queries.candidates(db)
    return render_template("dashboard/station.html", page=page, crumbs=crumbs, codes=codes)


# -- review --------------------------------------------------------------------------------


@bp.get("/review")
@login_required
def review() -> ResponseReturnValue:
    """The review queue by impact, then the dissent under a standing majority (services/review.py),
    each a page of ``REVIEW_PAGE_SIZE`` cards (``?page=``, ``?dpage=``)."""
    size = queries.REVIEW_PAGE_SIZE
    page = max(1, min(request.args.get("page", 1, type=int) or 1, queries.MAX_PAGE))
    dpage = max(1, min(request.args.get("dpage", 1, type=int) or 1, queries.MAX_PAGE))
    with database().read() as db:
        key = accounts.scope_key(g.user)
        items = review_service.queue(db, key, size + 1, (page - 1) * size)
        dissent = review_service.dissent(db, key, size + 1, (dpage - 1) * size)
        groups = review_service.dissent_by_kecamatan(db, key)
        names = queries.region_names(db, {g["kecamatan"] for g in groups})
        desas = queries.region_names(db, {i["station_id"][:10] for i in items + dissent})
        codes = queries.candidates(db)
    for group in groups:
        group["code"] = to_code(group["kecamatan"])
        group["name"] = names.get(group["code"], group["code"])
    for item in items + dissent:  # people know a station as "TPS 012, Mantuil", not by its 13 digits
        item["tps"] = int(item["station_id"][10:])
        item["desa"] = desas.get(to_code(item["station_id"][:10]), "")
    return render_template(
        "dashboard/review.html",
        items=items[:size],
        more=len(items) > size,
        page=page,
        dissent=dissent[:size],
        dmore=len(dissent) > size,
        dpage=dpage,
        groups=groups,
        codes=[c for c, _ in codes],
    )


@bp.post("/review/dissent/clear")
@login_required
def clear_kecamatan_dissent() -> ResponseReturnValue:
    """Clear the minor dissent (no winner would change) of every verified station in a kecamatan."""
    with database().begin() as db:
        code = region_in_scope(db, request.form.get("region", "").strip() or "-")
        if level_of(code) < 3:
            abort(400)
        user = db.get_one(User, g.user.id)
        cleared = review_service.clear_dissent(
            db, to_key(code), f"{user.email} (dasbor)", utcnow(), minor_only=True
        )
    flash(t("dissent_cleared", count=len(cleared), region=code))
    return redirect(url_for(".review"))


@bp.post("/review/<station_id>/clear-dissent")
@login_required
def clear_station_dissent(station_id: str) -> ResponseReturnValue:
    """Clear one station's dissent, contested or not: the reviewer let its majority stand."""
    with database().begin() as db:
        station_in_scope(db, station_id)
        user = db.get_one(User, g.user.id)
        cleared = review_service.clear_dissent(
            db, station_id, f"{user.email} (dasbor)", utcnow(), minor_only=False
        )
    flash(t("dissent_cleared", count=len(cleared), region=station_id))
    return redirect(safe_next(request.form.get("next")) if request.form.get("next") else url_for(".review"))


def _decide_on_report(station_id: str, decide: Callable[..., Report], saved: str) -> ResponseReturnValue:
    """A reviewer's decision on one of a station's reports (``confirm_report`` or
    ``reject_override``): the form's ``report_id``, the station in the user's scope, then back
    to the review queue (or the form's ``next``) with ``saved`` or "no longer current"."""
    try:
        report_id = int(request.form.get("report_id", ""))
    except ValueError:
        abort(400)
    with database().begin() as db:
        station_in_scope(db, station_id)
        user = db.get_one(User, g.user.id)
        try:
            rule = current_app.extensions["smsgate.settings"].consensus
            report = decide(db, station_id, report_id, user, utcnow(), rule)
            message = t(saved, ref=report.ref)
        except queries.NotCurrent:
            message = t("report_not_current")
    flash(message)
    return redirect(safe_next(request.form.get("next")) if request.form.get("next") else url_for(".review"))


@bp.post("/review/<station_id>/confirm")
@login_required
def confirm(station_id: str) -> ResponseReturnValue:
    return _decide_on_report(station_id, queries.confirm_report, "decision_saved")


@bp.post("/review/<station_id>/reject")
@login_required
def reject(station_id: str) -> ResponseReturnValue:
    """Reject a coordinator's report that overrides the volunteers' agreement (the agreement
    counts again); accepting it is ``confirm`` on the coordinator's reading."""
    return _decide_on_report(station_id, queries.reject_override, "override_rejected")


@bp.post("/review/<station_id>/resolve")
@login_required
def resolve(station_id: str) -> ResponseReturnValue:
    """Mark a flagged station without readings reviewed (its open flags resolved by this user)."""
    with database().begin() as db:
        station_in_scope(db, station_id)
        user = db.get_one(User, g.user.id)
        rule = current_app.extensions["smsgate.settings"].consensus
        count = queries.resolve_flags(db, station_id, user, utcnow(), rule)
    flash(t("flags_resolved", count=count, station=station_id))
    return redirect(url_for(".review"))


# -- messages and volunteers ---------------------------------------------------------------


@bp.get("/messages")
@login_required
def messages() -> ResponseReturnValue:
    filters = queries.MessageFilter(
        phone=request.args.get("phone", ""),
        text=request.args.get("q", ""),
        station=request.args.get("station", ""),
        outcome=request.args.get("outcome", ""),
    )
    page = request.args.get("page", 1, type=int) or 1
    error = None
    with database().read() as db:
        if filters.station:
            station_in_scope(db, filters.station.strip())
        try:
            entries, more = queries.message_log(db, scope_code(), filters, page)
        except phone_search.InvalidPhoneSearch:
            entries, more, error = [], False, t("phone_search_invalid")
    return render_template(
        "dashboard/messages.html",
        error=error,
        entries=entries,
        more=more,
        page=max(1, min(page, queries.MAX_PAGE)),
        filters=filters,
        outcomes=queries.outcomes(),
    ), (400 if error else 200)


@bp.get("/volunteers/<path:phone>")
@login_required
def volunteer(phone: str) -> ResponseReturnValue:
    with database().read() as db:
        history = queries.volunteer_history(db, phone)
        if history is None:
            abort(404)
        contact = history["contact"]
        if scope_code() and not (
            contact.region_code and accounts.in_scope(g.user, to_key(contact.region_code))
        ):
            abort(403)
        entries, more = queries.message_log(db, None, queries.MessageFilter(phone=phone), 1)
        entries = [e for e in entries if e.phone == phone]
        record = outlier_service.record(db, contact)
    return render_template(
        "dashboard/volunteer.html",
        contact=contact,
        reports=history["reports"],
        entries=entries,
        more=more,
        record=record,
    )


@bp.get("/volunteers")
@login_required
def volunteers() -> ResponseReturnValue:
    with database().read() as db:
        rows = queries.volunteers_without_report(db, scope_code())
        outliers = outlier_service.outliers(db, accounts.scope_key(g.user))
    return render_template("dashboard/volunteers.html", rows=rows, outliers=outliers)


def csv_text(rows: Callable[[Session], Iterator[list[Any]]]) -> Iterator[str]:
    """The CSV of ``rows`` in chunks of about 16 kB, read in a session of its own."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    with database().read() as db:
        for row in rows(db):
            writer.writerow(safe_row(row))
            if buffer.tell() > 16384:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
    yield buffer.getvalue()


def csv_response(rows: Callable[[Session], Iterator[list[Any]]], filename: str) -> Response:
    """Stream a CSV from a generator, with its own session for the life of the response.

    Every dashboard export goes through here (or, for the results on PostgreSQL, through
    ``queries.results_csv_copy``, which applies the same rule in SQL), so no cell can reach a
    spreadsheet as a formula (``csv_cells.safe_row``)."""
    response = Response(stream_with_context(csv_text(rows)), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@bp.get("/volunteers.csv")
@login_required
def volunteers_csv() -> ResponseReturnValue:
    scope = scope_code()
    name = f"relawan-belum-lapor-{to_key(scope) if scope else 'nasional'}.csv"
    return csv_response(lambda db: queries.volunteers_csv_rows(db, scope), name)


@bp.get("/export/results.csv")
@login_required
def results_csv() -> ResponseReturnValue:
    with database().read() as db:
        code = region_in_scope(db, request.args.get("region"))
    key = to_key(code)
    zone = ZoneInfo(current_app.extensions["smsgate.settings"].timezone)
    filename = f"hasil-{key or 'nasional'}.csv"

    def copied() -> Iterator[bytes]:
        """PostgreSQL's own COPY output, else the same rows written by the ``csv`` module."""
        with database().read() as db:
            chunks = queries.results_csv_copy(db, key, zone)
            if chunks is not None:
                yield from chunks
                return
        yield from (text.encode() for text in csv_text(lambda db: queries.results_csv_rows(db, key, zone)))

    response = Response(stream_with_context(copied()), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@bp.get("/incidents")
@login_required
def incidents() -> ResponseReturnValue:
    with database().read() as db:
        rows = queries.incidents(db, accounts.scope_key(g.user))
    return render_template("dashboard/incidents.html", rows=rows)


# -- the gateway fleet --------------------------------------------------------------------------


def fleet_figures(db: Session) -> tuple[Any, str | None]:
    """The fleet's status, or ``None`` and the reason when the gateways file is wrong."""
    from ..outgoing.fleet import FleetError, load_fleet
    from ..outgoing.fleet_status import fleet_status

    try:
        fleet = load_fleet(current_app.extensions["smsgate.settings"])
    except FleetError as exc:
        return None, str(exc)
    return fleet_status(db, fleet, utcnow()), None


def fleet_warnings(db: Session) -> list[str]:
    """The fleet's warnings for the overview (without the traffic figures it does not show),
    or the reason the gateways file is wrong."""
    from ..outgoing.fleet import FleetError, load_fleet
    from ..outgoing.fleet_status import fleet_warnings as warnings

    try:
        fleet = load_fleet(current_app.extensions["smsgate.settings"])
    except FleetError as exc:
        return [str(exc)]
    return warnings(db, fleet, utcnow())


@bp.get("/gateways")
@login_required
def gateways() -> ResponseReturnValue:
    with database().read() as db:
        figures, error = fleet_figures(db)
    return render_template("dashboard/gateways.html", fleet=figures, error=error, now=utcnow())


@bp.errorhandler(403)
def forbidden(error: Exception) -> ResponseReturnValue:
    return render_template("dashboard/error.html", message=t("forbidden")), 403
