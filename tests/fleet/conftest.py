"""The fleet tests run with the gateways configured exactly as in tests/gateways."""

from tests.gateways.conftest import settings

__all__ = ["settings"]
