"""Configuration from environment variables (SPEC.md "Interfaces")."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///smsgate.db"
    public_url: str | None = None
    twilio_auth_token: str | None = None
    twilio_account_sid: str | None = None
    twilio_from: str | None = None
    api_token: str | None = None
    #: Hours after polls close (13:00 WIB) after which a report is flagged as late.
    extra: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        return cls(
            database_url=get("SMSGATE_DATABASE_URL") or cls.database_url,
            public_url=get("SMSGATE_PUBLIC_URL"),
            twilio_auth_token=get("TWILIO_AUTH_TOKEN"),
            twilio_account_sid=get("TWILIO_ACCOUNT_SID"),
            twilio_from=get("TWILIO_FROM"),
            api_token=get("SMSGATE_API_TOKEN"),
            extra={k: v for k, v in env.items() if k.startswith("SMSGATE_")},
        )
