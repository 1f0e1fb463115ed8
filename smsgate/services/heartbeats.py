"""Device heartbeats: the latest ``system:ping`` of each gateway device.

The Android app sends ``system:ping`` every N seconds when Settings > Ping is on. The worker
treats a device configured with ``heartbeat = true`` as down when no ping came for the fleet's
``silent_after_seconds``, and fails its replies over to another device. One row per device,
overwritten, so a ping costs one small write.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from ..db import upsert_for
from ..inbound import Heartbeat
from ..models import GatewayPing


def record(session: Session, beat: Heartbeat, now: datetime) -> None:
    insert = upsert_for(session)
    values = {"last_ping_at": now, "health": beat.health[:8], "battery": beat.battery}
    session.execute(
        insert(GatewayPing)
        .values(provider=beat.provider, device=beat.device[:64], **values)
        .on_conflict_do_update(index_elements=["provider", "device"], set_=values)
    )
