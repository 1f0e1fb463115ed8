"""Fake gateway devices on localhost, answering each provider's real send API.

One WSGI server plays a whole fleet:

- ``POST /android/<name>/message``: SMS Gateway for Android's local server (basic auth, JSON
  ``{"textMessage": {"text"}, "phoneNumbers": [...], "id", "deviceId"?, "simNumber"?}``,
  answered ``202`` with the message state; a known ``id`` is ``409``). Shapes from
  capcom6/android-sms-gateway ``modules/localserver/routes/MessagesRoutes.kt`` (route
  ``/message``, ``HttpStatusCode.Accepted``, ``ConflictException`` -> ``409``) and
  ``app/src/main/assets/api/swagger.json``. The cloud API (``POST /3rdparty/v1/messages``
  with ``deviceId`` choosing the phone, docs-web ``docs/features/multi-device.md``) is served at
  ``/cloud/3rdparty/v1/messages``.
- ``GET /cgi-bin/sendsms``: Kannel's smsbox (``username``, ``password``, ``to``, ``text``,
  ``from``, ``smsc``; ``202 0: Accepted for delivery``), the ``smsc`` naming the modem (Kannel
  user guide, "SMS Push (send-sms) CGI Variables").
- ``POST /2010-04-01/Accounts/<sid>/Messages.json``: Twilio's Messages API (form ``To``,
  ``From``, ``Body``; ``201`` with the message resource, ``sid`` ``SM...``).

Each device has a radio that transmits one SMS every ``1/rate`` seconds of the clock it is
given (the bench's compressed night), in arrival order, and can be made to fail.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response


@dataclass
class Sent:
    device: str
    to: str
    text: str
    ref: str
    accepted_at: datetime
    #: When the radio transmits it: the device's queue drains at its own rate.
    transmitted_at: datetime


@dataclass
class FakeDevice:
    name: str
    kind: str  # android | kannel | twilio
    identifier: str = ""
    rate: float = 1000.0
    #: While set, every request gets this status (a phone whose app crashed, a modem off the network).
    failing: int | None = None
    busy_until: datetime | None = None
    refs: set[str] = field(default_factory=set)


@dataclass
class FakeFleet:
    clock: Callable[[], datetime]
    user: str = "sms"
    password: str = "secret-pw"
    devices: dict[str, FakeDevice] = field(default_factory=dict)
    sent: list[Sent] = field(default_factory=list)
    refused: list[tuple[str, int]] = field(default_factory=list)
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, name: str, kind: str, identifier: str = "", rate: float = 1000.0) -> FakeDevice:
        device = FakeDevice(name, kind, identifier or name, rate)
        self.devices[name] = device
        return device

    def by_device(self) -> dict[str, list[Sent]]:
        found: dict[str, list[Sent]] = {name: [] for name in self.devices}
        for item in self.sent:
            found[item.device].append(item)
        return found

    def to(self, phone: str) -> list[Sent]:
        return [s for s in self.sent if s.to == phone]

    # -- the WSGI app ----------------------------------------------------------------------

    def __call__(self, environ, start_response):  # type: ignore[no-untyped-def]
        request = Request(environ)
        response = self.answer(request)
        return response(environ, start_response)

    def answer(self, request: Request) -> Response:
        path = request.path
        if path.startswith("/android/") and path.endswith("/message") and request.method == "POST":
            return self._android(request, self.devices.get(path.split("/")[2]))
        if path == "/cloud/3rdparty/v1/messages" and request.method == "POST":
            body = request.get_json(silent=True) or {}
            device = next(
                (
                    d
                    for d in self.devices.values()
                    if d.kind == "android" and d.identifier == body.get("deviceId")
                ),
                None,
            )
            return self._android(request, device)
        if path == "/cgi-bin/sendsms":
            return self._kannel(request)
        if path.endswith("/Messages.json") and request.method == "POST":
            return self._twilio(request)
        return Response("not found", status=404)

    def _authorised(self, request: Request) -> bool:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        return (user, password) == (self.user, self.password)

    def _accept(self, device: FakeDevice, to: str, text: str, ref: str) -> None:
        now = self.clock()
        start = max(now, device.busy_until or now)
        device.busy_until = start + _seconds(1 / device.rate)
        self.sent.append(Sent(device.name, to, text, ref, now, start))

    def _android(self, request: Request, device: FakeDevice | None) -> Response:
        if device is None:
            return _json({"message": "device not found"}, 404)
        if not self._authorised(request):
            return _json({"message": "Unauthorized"}, 401)
        with self.lock:
            if device.failing:
                self.refused.append((device.name, device.failing))
                return _json({"message": "failing"}, device.failing)
            body = request.get_json(silent=True) or {}
            ref = str(body.get("id") or f"gen-{len(self.sent)}")
            if ref in device.refs:
                return _json({"message": f"message with id {ref} already exists"}, 409)
            device.refs.add(ref)
            to = (body.get("phoneNumbers") or [""])[0]
            self._accept(device, to, (body.get("textMessage") or {}).get("text", ""), ref)
        state = {
            "id": ref,
            "deviceId": device.identifier,
            "state": "Pending",
            "isHashed": False,
            "isEncrypted": False,
            "recipients": [{"phoneNumber": to, "state": "Pending"}],
        }
        return _json(state, 202)

    def _kannel(self, request: Request) -> Response:
        args = request.args
        if (args.get("username"), args.get("password")) != (self.user, self.password):
            return Response("Authorization failed for sendsms", status=403)
        device = next(
            (d for d in self.devices.values() if d.kind == "kannel" and d.identifier == args.get("smsc")),
            None,
        )
        if device is None:
            return Response("3: Queued for later delivery", status=202)  # no such smsc: Kannel queues it
        with self.lock:
            if device.failing:
                self.refused.append((device.name, device.failing))
                return Response("Internal error", status=device.failing)
            self._accept(device, args.get("to", ""), args.get("text", ""), "")
        return Response("0: Accepted for delivery", status=202)

    def _twilio(self, request: Request) -> Response:
        form = request.form
        device = next(
            (d for d in self.devices.values() if d.kind == "twilio" and d.identifier == form.get("From")),
            None,
        )
        if device is None:
            return _json(
                {"code": 21606, "message": "The From phone number is not a valid number", "status": 400}, 400
            )
        with self.lock:
            if device.failing:
                self.refused.append((device.name, device.failing))
                return _json(
                    {"code": 20500, "message": "Internal Server Error", "status": 500}, device.failing
                )
            sid = f"SM{len(self.sent):032x}"
            self._accept(device, form.get("To", ""), form.get("Body", ""), sid)
        body = {
            "sid": sid,
            "status": "queued",
            "to": form.get("To"),
            "from": form.get("From"),
            "body": form.get("Body"),
        }
        return _json(body, 201)


def _json(body: object, status: int) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")


def _seconds(value: float):  # type: ignore[no-untyped-def]
    from datetime import timedelta

    return timedelta(seconds=value)


@contextmanager
def fake_fleet(clock: Callable[[], datetime]) -> Iterator[FakeFleet]:
    fleet = FakeFleet(clock)
    server = make_server("127.0.0.1", 0, fleet, threaded=True)
    fleet.url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fleet
    finally:
        server.shutdown()
        thread.join(5)
