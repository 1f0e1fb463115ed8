"""All models, imported here so ``Base.metadata`` knows every table."""

from .activity import ActivityMark, ActivityMinute
from .base import Base, utcnow
from .contacts import COORDINATOR, VOLUNTEER, Contact, PinFailure
from .messages import InboundMessage
from .official import OfficialResult
from .outbound import Broadcast, GatewayDevice, GatewayPing, OutboundMessage, OutboundStatusCount
from .outbox import OutboxDelivery, OutboxEvent
from .quickcount import (
    PreviousResult,
    QuickcountCard,
    SampleDesign,
    SampleResultChange,
    SampleStation,
    SampleStratum,
)
from .regions import Candidate, Region, Station
from .reports import Flag, RegionCounter, Report, StationResult
from .users import AppSecret, LoginFailure, StationDecision, User
from .verification import Incident, Invite, RegistrationFailure

__all__ = [
    "COORDINATOR",
    "VOLUNTEER",
    "ActivityMark",
    "ActivityMinute",
    "AppSecret",
    "Base",
    "Broadcast",
    "Candidate",
    "Contact",
    "Flag",
    "GatewayDevice",
    "GatewayPing",
    "InboundMessage",
    "Incident",
    "Invite",
    "LoginFailure",
    "OfficialResult",
    "OutboundMessage",
    "OutboundStatusCount",
    "OutboxDelivery",
    "OutboxEvent",
    "PinFailure",
    "PreviousResult",
    "QuickcountCard",
    "Region",
    "RegionCounter",
    "RegistrationFailure",
    "Report",
    "SampleDesign",
    "SampleResultChange",
    "SampleStation",
    "SampleStratum",
    "Station",
    "StationDecision",
    "StationResult",
    "User",
    "utcnow",
]
