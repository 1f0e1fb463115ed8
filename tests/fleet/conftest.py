"""The fleet tests run with the gateways configured exactly as in tests/gateways, with the
dashboard's users for the gateways page."""

from tests.dashboard.conftest import users
from tests.gateways.conftest import settings

__all__ = ["settings", "users"]
