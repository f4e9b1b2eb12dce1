"""Signed notifications: accounts' webhooks, the durable delivery queue and the dispatcher.

Other packages use what is exported here (the facade registers and lists webhooks).
"""

from notifications.migrate import migrate
from notifications.registrations import (
    AccountDeleted,
    Registered,
    Registrations,
    TooManyWebhooks,
)
from notifications.routing import ROUTES, NotificationKind, Route
from notifications.sealing import SealingUnavailable, SecretBox
from notifications.settings import NotificationSettings
from notifications.targets import AddressPolicy, UnsafeTarget, parse_target

__all__ = [
    "ROUTES",
    "AccountDeleted",
    "AddressPolicy",
    "NotificationKind",
    "NotificationSettings",
    "Registered",
    "Registrations",
    "Route",
    "SealingUnavailable",
    "SecretBox",
    "TooManyWebhooks",
    "UnsafeTarget",
    "migrate",
    "parse_target",
]
