"""The in-memory platform for the shell and tests."""

from bots.local.group import LocalGroup
from bots.local.platform import LocalMessage, LocalPlatform

__all__ = ["LocalGroup", "LocalMessage", "LocalPlatform"]
