"""What the web layer costs a webhook, apart from the core: CPU per request outside ``Ingest.receive``.

``bench/webhook.py`` measures whole requests through gunicorn; this one isolates the part of a
request that is neither gunicorn nor the core. It calls the real app (``create_app``, on a
scratch database populated like the webhook bench, Prometheus in multiprocess mode and the log
line written, as under ``smsgate serve``) as a WSGI application, one signed Twilio webhook after
another in this one thread, and reads this thread's CPU time around each call and around the
core's ``Ingest.receive`` inside it. What is left is the web layer: Flask's contexts and hooks
(the size limit, CSRF, the session, the security headers), the form, the signature check and
the TwiML. The bare endpoint of ``bench/webhook.py`` is called the same way as the baseline.

    .venv/bin/python bench/web_layer.py                      # SQLite, 2,000 requests
    .venv/bin/python bench/web_layer.py --postgresql postgresql+psycopg://postgres@127.0.0.1:5432/postgres

A few tens of microseconds are below the noise of CPU times on a shared machine. With
``--instructions`` it counts instead what the interpreter executes, under valgrind's callgrind
(Debian's ``valgrind``), which the load does not change: the same requests, each subject in a
child process of its own, instrumented only around the timed loop (after the warm-up and a
``gc.freeze`` as under ``smsgate serve``): the web layer alone (the core replaced by a fixed
reply), the whole request, and the bare endpoint. It takes minutes (callgrind runs the
interpreter some fifty times slower).

    .venv/bin/python bench/web_layer.py --instructions --requests 300 --senders 400

To measure another checkout's code (``git archive REV | tar -x -C DIR``), copy this file,
``webhook.py`` and ``floor.py`` into ``DIR/bench/`` and run it there: the bench's helpers put
their own checkout first on ``sys.path``, so that checkout's ``smsgate`` and ``webhooks`` are the
ones measured (the first line printed says which).
"""

from __future__ import annotations

import argparse
import gc
import io
import logging
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="bench-web-layer-metrics-"))
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from consensus import body_for, scratch_database  # noqa: E402
from twilio.request_validator import RequestValidator  # noqa: E402
from webhook import ACCOUNT_SID, AUTH_TOKEN, TO_NUMBER, WEBHOOK_PATH, bare_app, populate  # noqa: E402
from werkzeug.test import EnvironBuilder  # noqa: E402

import smsgate  # noqa: E402
from smsgate import logs  # noqa: E402
from smsgate.app import create_app  # noqa: E402
from smsgate.config import Settings  # noqa: E402

PUBLIC = "https://bench.example.org"


def environs(senders: list[tuple[str, str]], count: int) -> list[dict[str, Any]]:
    """``count`` signed webhooks as WSGI environments, each a new message (built before timing)."""
    validator = RequestValidator(AUTH_TOKEN)
    out = []
    for i in range(count):
        phone, station = senders[i % len(senders)]
        sid = f"SM{uuid.uuid4().hex}"
        form = {
            "MessageSid": sid,
            "SmsSid": sid,
            "AccountSid": ACCOUNT_SID,
            "From": phone,
            "To": TO_NUMBER,
            "Body": body_for(station, {"01": 60 + i // len(senders), "02": 50, "03": 40}, 3),
            "NumMedia": "0",
            "ApiVersion": "2010-04-01",
        }
        signature = validator.compute_signature(PUBLIC + WEBHOOK_PATH, form)
        body = urlencode(form).encode()
        builder = EnvironBuilder(
            path=WEBHOOK_PATH,
            method="POST",
            data=body,
            content_type="application/x-www-form-urlencoded",
            headers={"X-Twilio-Signature": signature},
        )
        environ = builder.get_environ()
        environ["bench.body"] = body
        out.append(environ)
    return out


def call(app: Callable[..., Any], environ: dict[str, Any]) -> None:
    environ = dict(environ, **{"wsgi.input": io.BytesIO(environ["bench.body"])})
    status: list[str] = []
    result = app(environ, lambda s, _headers, _exc=None: status.append(s))
    b"".join(result)
    getattr(result, "close", lambda: None)()
    if not status[0].startswith("200"):
        raise RuntimeError(f"webhook answered {status[0]}")


def cpu_per_call(app: Callable[..., Any], requests: list[dict[str, Any]]) -> list[float]:
    times = []
    for environ in requests:
        started = time.thread_time()
        call(app, environ)
        times.append(time.thread_time() - started)
    return times


#: What ``--instructions`` counts, each in a process of its own.
SUBJECTS = {
    "web": "web layer alone (the core replaced by a fixed reply)",
    "whole": "whole request (the real core)",
    "bare": "bare Flask endpoint",
}


def counted_child(args: argparse.Namespace) -> int:
    """Under callgrind: set up ``args.subject``, warm it up, say so through ``args.flags`` and
    run the timed requests once the parent has switched the instrumentation on."""
    from smsgate.inbound import Reply

    flags = Path(args.flags)
    logs.configure("text")
    logging.getLogger().handlers[-1].setStream(open(os.devnull, "w"))  # noqa: SIM115 - as in main()
    with scratch_database(args.postgresql) as (database, _kind):
        senders, _spare = populate(database, args.senders, 16)
        url = database.engine.url.render_as_string(hide_password=False)
        settings = Settings.from_env(
            {"SMSGATE_DATABASE_URL": url, "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "SMSGATE_PUBLIC_URL": PUBLIC}
        )
        app: Callable[..., Any] = bare_app()
        if args.subject != "bare":
            app = create_app(settings, database=database)
        if args.subject == "web":
            fixed = Reply("OK TPS 012 01=123 02=98 03=150 Ref ABC123 / received & stored")
            app.extensions["smsgate.gateway"].receive = lambda _sms: fixed  # type: ignore[attr-defined]
        requests = environs(senders, args.warmup + args.requests)
        cpu_per_call(app, requests[: args.warmup])
        gc.collect()
        gc.freeze()  # as smsgate serve's workers do once the app is loaded
        (flags / "ready").touch()
        while not (flags / "go").exists():
            time.sleep(0.05)
        time.sleep(0.5)  # the instrumentation is on before the first timed request
        cpu_per_call(app, requests[args.warmup :])
        os._exit(0)  # nothing after the timed loop is counted: no teardown


def instructions(args: argparse.Namespace, subject: str) -> int:
    """Instructions executed by ``args.requests`` requests of ``subject`` (see ``counted_child``)."""
    with tempfile.TemporaryDirectory(prefix="bench-web-layer-callgrind-") as folder:
        out = Path(folder) / "callgrind.out"
        command = [
            "valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
            sys.executable, str(Path(__file__).resolve()), "--counted-child", subject, "--flags", folder,
            "--requests", str(args.requests), "--warmup", str(args.warmup), "--senders", str(args.senders),
        ]  # fmt: skip
        if args.postgresql:
            command += ["--postgresql", args.postgresql]
        with open(Path(folder) / "child.log", "w") as log:
            child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
            while not (Path(folder) / "ready").exists():
                if child.poll() is not None:
                    raise RuntimeError((Path(folder) / "child.log").read_text()[-3000:])
                time.sleep(0.5)
            subprocess.run(["callgrind_control", "-i", "on", str(child.pid)], check=True, capture_output=True)
            (Path(folder) / "go").touch()
            child.wait()
        for line in out.read_text(errors="replace").splitlines():
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    raise RuntimeError("callgrind wrote no totals")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--postgresql", help="server to make the scratch database on (default: SQLite)")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--senders", type=int, default=5000)
    parser.add_argument(
        "--instructions", action="store_true", help="count instructions per request under callgrind"
    )
    parser.add_argument("--counted-child", dest="subject", choices=sorted(SUBJECTS), help=argparse.SUPPRESS)
    parser.add_argument("--flags", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.subject:
        return counted_child(args)
    if args.instructions:
        print(f"$ .venv/bin/python bench/web_layer.py {shlex.join(sys.argv[1:])}")
        code, kind = Path(smsgate.__file__).resolve().parent.parent, args.postgresql or "sqlite"
        print(f"code: {code}; database: {kind}")
        print(f"instructions a webhook under callgrind, {args.requests} signed reports after {args.warmup}:")
        for subject, label in SUBJECTS.items():
            print(f"  {label:<52} {instructions(args, subject) / args.requests:>12,.0f}", flush=True)
        return 0
    logs.configure("text")
    logging.getLogger().handlers[-1].setStream(open(os.devnull, "w"))  # noqa: SIM115 - the log line is formatted and written, to nowhere
    with scratch_database(args.postgresql) as (database, kind):
        senders, _spare = populate(database, args.senders, 16)
        url = database.engine.url.render_as_string(hide_password=False)
        settings = Settings.from_env(
            {"SMSGATE_DATABASE_URL": url, "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "SMSGATE_PUBLIC_URL": PUBLIC}
        )
        app = create_app(settings, database=database)
        ingest = app.extensions["smsgate.gateway"]
        core: list[float] = []
        receive = ingest.receive

        def timed_receive(sms: Any) -> Any:
            started = time.thread_time()
            try:
                return receive(sms)
            finally:
                core.append(time.thread_time() - started)

        ingest.receive = timed_receive
        requests = environs(senders, args.warmup + args.requests)
        cpu_per_call(app, requests[: args.warmup])
        core.clear()
        total = cpu_per_call(app, requests[args.warmup :])
        bare = bare_app()
        bare_times = cpu_per_call(bare, requests[: args.warmup] * (1 + args.requests // max(1, args.warmup)))
    web = [t - c for t, c in zip(total, core, strict=True)]

    def ms(values: list[float]) -> str:
        median, mean = 1000 * statistics.median(values), 1000 * statistics.fmean(values)
        return f"median {median:.3f} ms, mean {mean:.3f} ms"

    print(f"$ .venv/bin/python bench/web_layer.py {shlex.join(sys.argv[1:])}")
    print(f"code: {Path(smsgate.__file__).resolve().parent.parent}; database: {kind}")
    print("load average (1/5/15 min): {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    print(f"CPU per webhook, {len(total)} signed Twilio reports, one thread, WSGI call (no gunicorn):")
    print(f"  whole request            {ms(total)}")
    print(f"  inside Ingest.receive    {ms(core)}")
    print(f"  web layer (the rest)     {ms(web)}")
    print(f"  bare Flask endpoint      {ms(bare_times)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
