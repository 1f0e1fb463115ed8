"""Dashboard accounts: creating users, checking passwords, slowing guessers down, and scopes.

Failed logins are counted in the database (several app servers share them) per email *and*
client address. Nobody can lock an account: after ``ACCOUNT_FREE`` failures for one email from
one address within ``WINDOW``, that address waits ``FIRST_DELAY``, doubling up to ``MAX_DELAY``,
before its next attempt at that email is checked; after ``ADDRESS_FREE`` failures from one
address for any emails, the same applies to all its attempts. The right password from another
address is never held up. Unknown emails are counted and answered exactly like known ones.
The client address is the real one behind ``SMSGATE_TRUSTED_PROXIES`` proxies (``ProxyFix``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from ..models import LoginFailure, Region, User
from ..models.users import ADMIN, USER_ROLES
from ..regions import normalise_code, to_key

WINDOW = timedelta(minutes=15)
ACCOUNT_FREE = 5
ADDRESS_FREE = 50
FIRST_DELAY = timedelta(seconds=30)
MAX_DELAY = timedelta(minutes=15)
MIN_PASSWORD = 8
#: Checked when the email is unknown, so a wrong email costs as long as a wrong password.
_DUMMY_HASH = generate_password_hash("smsgate-no-such-user")


class AccountError(ValueError):
    pass


def normalise_email(email: str) -> str:
    return email.strip().lower()


def create_user(
    session: Session, *, email: str, password: str, role: str, region: str | None, now: datetime
) -> User:
    email = normalise_email(email)
    if "@" not in email or len(email) > 254:
        raise AccountError(f"not an email address: {email!r}")
    if role not in USER_ROLES:
        raise AccountError(f"role must be one of {', '.join(USER_ROLES)}")
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"password must have at least {MIN_PASSWORD} characters")
    region_code = None
    if region:
        try:
            region_code = normalise_code(region)
        except ValueError:
            raise AccountError(f"unknown region {region!r}") from None
        if session.get(Region, region_code) is None:
            raise AccountError(f"unknown region {region!r}")
    elif role != ADMIN:
        raise AccountError("a coordinator needs --region (an admin without one sees the whole country)")
    if session.scalars(select(User).where(User.email == email)).first() is not None:
        raise AccountError(f"a user {email} exists already")
    user = User(
        email=email,
        password_hash=generate_password_hash(password),
        role=role,
        region_code=region_code,
        created_at=now,
        session_generation=0,
    )
    session.add(user)
    session.flush()
    return user


@dataclass(frozen=True)
class LoginResult:
    """``user`` when the password was right; otherwise ``retry_after`` (seconds) is set when the
    attempt came too soon after earlier failures and was not checked at all."""

    user: User | None
    retry_after: int = 0

    @property
    def throttled(self) -> bool:
        return self.retry_after > 0


def wait_after(failures: int, free: int) -> timedelta:
    """How long after the latest failure the next attempt is checked: nothing for the first
    ``free`` failures, then ``FIRST_DELAY`` doubling with each further failure up to ``MAX_DELAY``."""
    if failures < free:
        return timedelta(0)
    return min(FIRST_DELAY * 2 ** min(failures - free, 16), MAX_DELAY)


def _failures(session: Session, *conditions: Any, now: datetime) -> tuple[int, datetime | None]:
    count, latest = session.execute(
        select(func.count(), func.max(LoginFailure.created_at)).where(
            *conditions, LoginFailure.created_at > now - WINDOW
        )
    ).one()
    return count or 0, latest


def throttle(session: Session, email: str, ip: str, now: datetime) -> int:
    """Seconds this address must still wait before a password for ``email`` is checked (0: none).

    Known and unknown emails are counted alike, so the answers do not tell them apart.
    """
    ip = ip[:64]
    waits = []
    for conditions, free in (
        ((LoginFailure.email == email, LoginFailure.ip == ip), ACCOUNT_FREE),
        ((LoginFailure.ip == ip,), ADDRESS_FREE),
    ):
        count, latest = _failures(session, *conditions, now=now)
        if latest is not None:
            waits.append(latest + wait_after(count, free) - now)
    longest = max(waits, default=timedelta(0))
    return math.ceil(longest.total_seconds()) if longest > timedelta(0) else 0


def authenticate(session: Session, email: str, password: str, ip: str, now: datetime) -> LoginResult:
    """Check a login; a wrong one is recorded for this email and this address.

    Nothing locks an account: too many failures only make *this address* wait before its next
    attempt at *this email* (or at any email, after ``ADDRESS_FREE`` failures), so the right
    password from another address always works. A disabled account answers like a wrong password.
    """
    email = normalise_email(email)[:254]
    wait = throttle(session, email, ip, now)
    if wait:
        return LoginResult(None, retry_after=wait)
    user = session.scalars(select(User).where(User.email == email)).first()
    right = check_password_hash(user.password_hash if user else _DUMMY_HASH, password)
    if user is not None and right and user.disabled_at is None:
        user.last_login_at = now
        return LoginResult(user)
    session.add(LoginFailure(email=email, ip=ip[:64], created_at=now))
    session.execute(delete(LoginFailure).where(LoginFailure.created_at < now - timedelta(days=1)))
    return LoginResult(None)


def find_user(session: Session, email: str) -> User:
    user = session.scalars(select(User).where(User.email == normalise_email(email))).first()
    if user is None:
        raise AccountError(f"no user {normalise_email(email)}")
    return user


def end_sessions(user: User) -> None:
    """Every session cookie issued to ``user`` so far stops working (see ``session_generation``)."""
    user.session_generation = (user.session_generation or 0) + 1


def set_password(user: User, password: str) -> None:
    """A new password ends every session of the account (a stolen cookie dies with the old password)."""
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"password must have at least {MIN_PASSWORD} characters")
    user.password_hash = generate_password_hash(password)
    end_sessions(user)


def disable(user: User, now: datetime) -> None:
    user.disabled_at = now
    end_sessions(user)


def enable(user: User) -> None:
    user.disabled_at = None


def scope_key(user: User) -> str:
    """The undotted prefix every region key and station ID in the user's scope starts with."""
    return to_key(user.region_code) if user.region_code else ""


def in_scope(user: User, key: str) -> bool:
    """Whether a region key or station ID (both undotted) lies inside the user's scope."""
    return key.startswith(scope_key(user))
