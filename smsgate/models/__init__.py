"""All models, imported here so ``Base.metadata`` knows every table."""

from .base import Base, utcnow
from .contacts import COORDINATOR, VOLUNTEER, Contact
from .messages import InboundMessage
from .regions import Candidate, Region, Station
from .reports import Flag, RegionCounter, Report, StationResult

__all__ = [
    "COORDINATOR",
    "VOLUNTEER",
    "Base",
    "Candidate",
    "Contact",
    "Flag",
    "InboundMessage",
    "Region",
    "RegionCounter",
    "Report",
    "Station",
    "StationResult",
    "utcnow",
]
