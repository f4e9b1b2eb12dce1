"""Fixity: every stored byte re-checked on a schedule (SPEC §3 Fixity; docs/fixity.md)."""

from storage_workers.fixity.budget import ReadBudget
from storage_workers.fixity.checks import (
    AuditItem,
    Auditor,
    AuditPolicy,
    KnownFile,
    UnknownObject,
    Verdict,
    plan_items,
)
from storage_workers.fixity.passes import PassRunner, commit_progress, new_pass_id
from storage_workers.fixity.schedule import ElementAuditor
from storage_workers.fixity.state import FixityState, StateStore
from storage_workers.fixity.tally import Announcer, Tally

__all__ = [
    "Announcer",
    "AuditItem",
    "AuditPolicy",
    "Auditor",
    "ElementAuditor",
    "FixityState",
    "KnownFile",
    "PassRunner",
    "ReadBudget",
    "StateStore",
    "Tally",
    "UnknownObject",
    "Verdict",
    "commit_progress",
    "new_pass_id",
    "plan_items",
]
