"""Which element of a class consumes its upload topic (SPEC §3 placement). Pure."""

from __future__ import annotations

from dataclasses import dataclass

from events import ElementHeartbeat, ElementRegistered, Mode
from storage_workers.config import Placement


@dataclass(frozen=True, slots=True)
class PeerStatus:
    """The last word from an element's worker."""

    element_id: str
    mode: Mode
    priority: int
    accepting: bool
    seen_at: float
    """Monotonic seconds when we heard it."""

    @property
    def rank(self) -> tuple[int, str]:
        """Lower ranks fill first; the id breaks ties."""
        return (self.priority, self.element_id)


def should_consume(
    me: PeerStatus,
    peers: list[PeerStatus],
    *,
    strategy: Placement,
    now: float,
    timeout: float,
) -> bool:
    """True when ``me`` should consume its class's upload topic now.

    Sequential fill: only the accepting, live element of the class with the lowest rank.
    Spread: every accepting element.
    """
    if not me.accepting:
        return False
    if strategy is Placement.SPREAD:
        return True
    return not any(
        peer.element_id != me.element_id
        and peer.mode is me.mode
        and peer.accepting
        and now - peer.seen_at <= timeout
        and peer.rank < me.rank
        for peer in peers
    )


class PeerTable:
    """What we heard from the other elements on the elements topic."""

    def __init__(self) -> None:
        self._peers: dict[str, PeerStatus] = {}

    def heard(self, fact: ElementHeartbeat | ElementRegistered, at: float) -> None:
        """Record a heartbeat or registration."""
        if isinstance(fact, ElementHeartbeat):
            accepting = fact.accepting_uploads
        else:
            accepting = fact.mode in (Mode.EDIT, Mode.RW)
        self._peers[fact.element_id] = PeerStatus(
            fact.element_id, fact.mode, fact.priority, accepting, at
        )

    def all(self) -> list[PeerStatus]:
        """Every peer we know of."""
        return list(self._peers.values())
