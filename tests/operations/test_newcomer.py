"""What a newcomer meets: the demo's port clash and signals (real processes), the server's
front page, and import files with the usual mistakes."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from smsgate.cli import main

from .conftest import SMSGATE, smsgate

DEMO = ["demo", "--region", "63.72", "--messages", "20", "--rate", "200"]


def test_the_front_page_sends_people_to_the_dashboard(client) -> None:
    response = client.get("/")
    assert response.status_code == 302 and response.headers["Location"].endswith("/dashboard/")


def _import(database_url: str, tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "volunteers.csv"
    path.write_text(text, encoding="utf-8")
    return CliRunner().invoke(
        main, ["import", "volunteers", str(path)], env={"SMSGATE_DATABASE_URL": database_url}
    )


HEADER = "phone,name,role,region_code,tps,lang\n"


def test_volunteer_phones_with_a_letter_or_a_landline_are_refused_by_line(
    database_url, world, tmp_path
) -> None:
    result = _import(
        database_url,
        tmp_path,
        HEADER + "0812 3456 7890,Ani,volunteer,63.71.01.1001,1,\n"
        "0812 3456 789O,Budi,volunteer,63.71.01.1001,1,\n"
        "(0511) 3252100,Citra,volunteer,63.71.01.1001,1,\n",
    )
    assert result.exit_code == 1
    assert "line 3: not a phone number: '0812 3456 789O'" in result.output
    assert "line 4: '(0511) 3252100' is not a mobile number" in result.output
    assert "nothing imported" in result.output


def test_a_duplicate_phone_names_both_lines(database_url, world, tmp_path) -> None:
    result = _import(
        database_url,
        tmp_path,
        HEADER + "0812 3456 7890,Ani,volunteer,63.71.01.1001,1,\n"
        "0813 1111 2222,Budi,volunteer,63.71.01.1001,1,\n"
        "+62 812-3456-7890,Citra,volunteer,63.71.01.1001,1,\n",
    )
    assert result.exit_code == 1
    assert "line 4: phone +6281234567890 is already on line 2" in result.output


def test_a_semicolon_file_gets_a_hint(database_url, world, tmp_path) -> None:
    result = _import(
        database_url, tmp_path, HEADER.replace(",", ";") + "081234567890;Ani;volunteer;63.71.01.1001;1;\n"
    )
    assert result.exit_code == 1
    assert "separated by ';'" in result.output


def test_the_demo_stops_on_a_port_that_is_taken(tmp_path: Path) -> None:
    with socket.socket() as stranger:
        stranger.bind(("127.0.0.1", 0))
        stranger.listen(1)
        port = stranger.getsockname()[1]
        result = smsgate(
            *DEMO, "--dir", str(tmp_path / "demo"), "--port", str(port), "--exit", env={}, cwd=tmp_path
        )
    assert result.returncode == 1, result
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr and "--port 0" in result.stderr
    assert "server up" not in result.stdout and "sent " not in result.stdout


def _start_demo(tmp_path: Path) -> subprocess.Popen[str]:
    """``smsgate demo`` in ``tmp_path`` on a free port, left running, as a newcomer starts it
    (no ``SMSGATE_`` or ``TWILIO_`` variable of ours in its environment); its output, stderr
    included, on ``stdout``."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SMSGATE_", "TWILIO_"))}
    return subprocess.Popen(
        [*SMSGATE, *DEMO, "--dir", str(tmp_path / "demo"), "--port", "0"],
        env=base,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL])
def test_the_server_dies_with_the_demo(tmp_path: Path, stop: signal.Signals) -> None:
    demo = _start_demo(tmp_path)
    output, url = [], None
    try:
        deadline = time.monotonic() + 300
        assert demo.stdout is not None
        for line in demo.stdout:
            output.append(line)
            found = re.search(r"server:\s+(http://127\.0\.0\.1:\d+)", line)
            url = found.group(1) if found else url
            if "the server keeps running" in line:
                break
            assert time.monotonic() < deadline, "".join(output)
        assert url and requests.get(url + "/livez", timeout=5).status_code == 200, "".join(output)
        demo.send_signal(stop)
        demo.wait(60)
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(url + "/livez", timeout=1)
            except requests.ConnectionError:
                break  # nobody listens any more
            assert time.monotonic() < deadline, f"the server outlived the demo ({stop.name})"
            time.sleep(0.5)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()


def test_the_printed_commands_run_in_a_fresh_shell(tmp_path: Path) -> None:
    """``tally`` and ``check`` as the demo prints them, through ``sh -c`` with no venv on PATH."""
    result = smsgate(
        *DEMO, "--dir", str(tmp_path / "demo"), "--port", "0", "--exit", env={}, cwd=tmp_path, timeout=600
    )
    assert result.returncode == 0, result.stderr
    commands = {
        name: line.split(":", 1)[1].strip()
        for line in result.stdout.splitlines()
        for name in ("tally", "check")
        if line.strip().startswith(f"{name}:")
    }
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    tally = subprocess.run(
        ["sh", "-c", commands["tally"]], env=env, capture_output=True, text=True, timeout=120
    )
    assert tally.returncode == 0 and "Kalimantan Selatan" in tally.stdout, tally
    check = subprocess.run(
        ["sh", "-c", commands["check"]], env=env, capture_output=True, text=True, timeout=120
    )
    assert check.returncode == 0 and "error:" not in check.stdout, check  # warnings allowed
    assert "0 error(s)" in check.stderr


def test_the_printed_simulate_command_runs_again_at_once(tmp_path: Path) -> None:
    """The demo's ``more SMS`` line, twice in a row in a fresh shell against the running demo
    (flood control on, as the demo serves it): each run sends only texts flood control lets
    through, ends ``result: OK`` and exits 0. Fewer messages than printed, to stay quick."""
    demo = _start_demo(tmp_path)
    output, command = [], None
    try:
        assert demo.stdout is not None
        for line in demo.stdout:
            output.append(line)
            if line.strip().startswith("more SMS:"):
                command = line.split(":", 1)[1].strip()
            if "the server keeps running" in line:
                break
        assert command and "--messages 1000" in command, "".join(output)
        command = command.replace("--messages 1000", "--messages 60")
        env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
        for run in ("first", "again"):
            shell = ["sh", "-c", command]
            result = subprocess.run(shell, env=env, capture_output=True, text=True, timeout=300)
            assert result.returncode == 0, (run, result.stdout, result.stderr)
            assert result.stdout.rstrip().endswith("result: OK"), (run, result.stdout)
            assert "flood control: held " in result.stdout
    finally:
        demo.terminate()
        demo.wait(60)


def test_the_demo_exits_1_when_its_night_is_not_answered_as_planned(tmp_path: Path) -> None:
    """With one reply per phone and hour (SMSGATE_FLOOD_REPLIES_PER_HOUR=1 in the server's
    environment), a volunteer's ``CEK`` after their report goes unanswered: the demo lists it
    and exits 1 instead of printing a tally as if all was well."""
    result = smsgate(
        *DEMO[:-4],
        "--messages",
        "80",
        "--rate",
        "200",
        "--dir",
        str(tmp_path / "demo"),
        "--port",
        "0",
        "--exit",
        env={"SMSGATE_FLOOD_REPLIES_PER_HOUR": "1"},
        cwd=tmp_path,
        timeout=600,
    )
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "handled without a reply (reply_limit)" in result.stdout
    assert "result: FAILED: " in result.stdout
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("Error: the simulated night failed: ")
    assert "answered otherwise than planned" in line
