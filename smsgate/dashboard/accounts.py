"""Dashboard accounts: creating users, checking passwords with a lockout, and scopes.

Failed logins are counted in the database (several app servers share them): an account is
locked for ``LOCKOUT`` after ``ACCOUNT_LIMIT`` failures within ``WINDOW``, and an IP address
that failed ``IP_LIMIT`` times within ``WINDOW`` is refused before any password is checked.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from ..models import LoginFailure, Region, User
from ..models.users import ADMIN, USER_ROLES
from ..regions import normalise_code, to_key

WINDOW = timedelta(minutes=15)
LOCKOUT = timedelta(minutes=15)
ACCOUNT_LIMIT = 5
IP_LIMIT = 20
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
        failed_logins=0,
    )
    session.add(user)
    session.flush()
    return user


@dataclass(frozen=True)
class LoginResult:
    user: User | None
    locked: bool = False


def authenticate(session: Session, email: str, password: str, ip: str, now: datetime) -> LoginResult:
    """Check a login; record a failure (per account and per IP) when it is wrong."""
    email = normalise_email(email)[:254]
    ip_failures = session.scalar(
        select(func.count()).where(LoginFailure.ip == ip, LoginFailure.created_at > now - WINDOW)
    )
    if (ip_failures or 0) >= IP_LIMIT:
        return LoginResult(None, locked=True)
    user = session.scalars(select(User).where(User.email == email).with_for_update()).first()
    if user is not None and user.locked_until is not None and user.locked_until > now:
        return LoginResult(None, locked=True)
    if user is not None and check_password_hash(user.password_hash, password):
        user.failed_logins = 0
        user.locked_until = None
        user.last_login_at = now
        return LoginResult(user)
    if user is None:
        check_password_hash(_DUMMY_HASH, password)
    session.add(LoginFailure(email=email, ip=ip[:64], created_at=now))
    session.execute(delete(LoginFailure).where(LoginFailure.created_at < now - timedelta(days=1)))
    if user is None:
        return LoginResult(None)
    if user.last_failed_at is None or user.last_failed_at <= now - WINDOW:
        user.failed_logins = 0
    user.failed_logins += 1
    user.last_failed_at = now
    if user.failed_logins >= ACCOUNT_LIMIT:
        user.locked_until = now + LOCKOUT
        user.failed_logins = 0
        return LoginResult(None, locked=True)
    return LoginResult(None)


def scope_key(user: User) -> str:
    """The undotted prefix every region key and station ID in the user's scope starts with."""
    return to_key(user.region_code) if user.region_code else ""


def in_scope(user: User, key: str) -> bool:
    """Whether a region key or station ID (both undotted) lies inside the user's scope."""
    return key.startswith(scope_key(user))
