"""``artstore dev`` (every service on one machine, supervised) and ``artstore demo`` (its tour)."""

from artstore.dev.cli import demo, dev
from artstore.dev.supervisor import ChildSpec, CrashHistory, RestartPolicy, Supervisor

__all__ = ["ChildSpec", "CrashHistory", "RestartPolicy", "Supervisor", "demo", "dev"]
