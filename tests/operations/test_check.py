"""``smsgate check``: one line per problem, error or warning, with its fix; exit 1 on errors."""

from __future__ import annotations

from click.testing import CliRunner

from smsgate.cli import main

READY = {
    "TWILIO_AUTH_TOKEN": "token",
    "TWILIO_ACCOUNT_SID": "AC00000000000000000000000000000000",
    "TWILIO_FROM": "+15005550006",
    "SMSGATE_PUBLIC_URL": "https://sms.example.org",
    "SMSGATE_SECRET_KEY": "a-long-random-secret",
    "SMSGATE_POLLS_CLOSE": "2999-02-14T13:00+08:00",
    "SMSGATE_TIMEZONE": "Asia/Makassar",
}


def check(database_url: str, **env: str):  # type: ignore[no-untyped-def]
    variables = {"SMSGATE_DATABASE_URL": database_url, **READY, **env}
    result = CliRunner().invoke(main, ["check"], env={k: v or None for k, v in variables.items()})
    lines = [line for line in result.output.splitlines() if line.startswith(("error: ", "warning: "))]
    return result, lines


def test_a_ready_deployment_has_no_problems(database_url, world) -> None:
    result, lines = check(database_url)
    assert result.exit_code == 0, result.output
    assert lines == [], result.output
    assert "0 error(s), 0 warning(s)" in result.output


def test_an_empty_database_lists_what_to_import(database_url) -> None:
    result, lines = check(database_url)
    assert result.exit_code == 1
    text = "\n".join(lines)
    for expected in (
        "error: no regions",
        "error: no candidates imported",
        "error: no polling stations",
        "error: no volunteers and no open invite codes",
    ):
        assert expected in text, result.output
    assert all(" Fix: " in line for line in lines)
    assert "smsgate import candidates" in text


def test_configuration_problems(database_url, world) -> None:
    _, lines = check(database_url, TWILIO_AUTH_TOKEN="", TWILIO_ACCOUNT_SID="", TWILIO_FROM="")
    assert any(line.startswith("error: no inbound SMS provider") for line in lines)
    _, lines = check(database_url, TWILIO_AUTH_TOKEN="")
    assert any(
        line.startswith("error: TWILIO_ACCOUNT_SID or TWILIO_FROM is set but TWILIO_AUTH_TOKEN")
        for line in lines
    )
    _, lines = check(
        database_url, TWILIO_AUTH_TOKEN="", SMSGATE_ANDROID_SECRET="s", TWILIO_ACCOUNT_SID="", TWILIO_FROM=""
    )
    assert any(
        line.startswith("error: SMS Gateway for Android") and "SMSGATE_ANDROID_URL" in line for line in lines
    )
    assert any(line.startswith("warning: the default outbound provider 'twilio'") for line in lines)
    _, lines = check(database_url, SMSGATE_PUBLIC_URL="")
    assert any(line.startswith("warning: SMSGATE_PUBLIC_URL is unset") for line in lines)
    _, lines = check(database_url, SMSGATE_PUBLIC_URL="http://sms.example.org")
    assert any("is not https" in line for line in lines)
    _, lines = check(database_url, SMSGATE_SECRET_KEY="")
    assert any(line.startswith("warning: SMSGATE_SECRET_KEY is unset") for line in lines)
    _, lines = check(database_url, SMSGATE_POLLS_CLOSE="2019-04-17T13:00+07:00")
    assert any(line.startswith("warning: SMSGATE_POLLS_CLOSE") and "in the past" in line for line in lines)
    _, lines = check(database_url, SMSGATE_POLLS_CLOSE="")
    assert any(line.startswith("warning: SMSGATE_POLLS_CLOSE is unset") for line in lines)
    _, lines = check(database_url, SMSGATE_TIMEZONE="Asia/Jakarta")
    assert any("SMSGATE_TIMEZONE=Asia/Makassar" in line for line in lines)


def test_an_unreachable_database_is_an_error_and_the_rest_still_runs(tmp_path) -> None:
    result, lines = check(f"sqlite:///{tmp_path / 'none.db'}", TWILIO_AUTH_TOKEN="")
    assert result.exit_code == 1
    assert lines[0].startswith("error: no database at") and lines[0].endswith("Fix: run smsgate init")
    assert any(line.startswith("error: TWILIO_ACCOUNT_SID") for line in lines)
    assert not (tmp_path / "none.db").exists()


def test_a_missing_prefix_index_is_a_warning_on_postgresql(database_url, database, world) -> None:
    """Region filters scan whole tables without the pattern-ops indexes ``init`` creates."""
    import pytest
    from sqlalchemy import text

    from smsgate.models.postgres_indexes import PREFIX_INDEXES

    if not database.is_postgresql:
        pytest.skip("PostgreSQL's prefix indexes")
    table, expression, _ = PREFIX_INDEXES["ix_contacts_region_prefix"]
    with database.engine.begin() as connection:
        connection.execute(text("DROP INDEX ix_contacts_region_prefix"))
    try:
        _, lines = check(database_url)
        assert any(
            line.startswith("warning: 1 prefix index(es) are missing (ix_contacts_region_prefix)")
            and "smsgate init" in line
            for line in lines
        ), lines
    finally:
        with database.engine.begin() as connection:
            connection.execute(text(f"CREATE INDEX ix_contacts_region_prefix ON {table} ({expression})"))
