"""Whether this element consumes its class's upload topic now (SPEC §3 placement), and the
joining and leaving that follow: decided every heartbeat interval, or at once when something
changed (a mode, an upload handed back). The decision itself is pure
(:func:`storage_workers.placement.should_consume`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from faststream.kafka import KafkaBroker

from events import CapacityStatus, TopicNames
from events.modes import UPLOAD_TOPIC, upload_topic
from storage_workers.claims import ClaimsUnavailable
from storage_workers.config import WorkerConfig
from storage_workers.dependencies import OWN_DEPENDENCIES
from storage_workers.groups import storage_group
from storage_workers.metrics import StorageMetrics
from storage_workers.outages import Outages
from storage_workers.peer_watch import PeerWatch
from storage_workers.placement import PeerStatus, should_consume
from storage_workers.redelivery import RETRIED_IN_PLACE
from storage_workers.settlement import reconcile_claims
from storage_workers.upload_consumer import UploadConsumer
from storage_workers.worker import Announce, ElementWorker

log = logging.getLogger(__name__)


class UploadPlacement:
    """Starts and stops the element's :class:`UploadConsumer` as placement says."""

    def __init__(
        self,
        *,
        worker: ElementWorker,
        broker: KafkaBroker,
        topics: TopicNames,
        config: WorkerConfig,
        metrics: StorageMetrics,
        outages: Outages,
        announce: Announce,
        peers: PeerWatch,
        claims_settled: bool,
    ) -> None:
        self.worker = worker
        self.broker = broker
        self.topics = topics
        self.config = config
        self.metrics = metrics
        self.outages = outages
        self.announce = announce
        self.peers = peers
        self.claims_settled = claims_settled
        """Until the upload claims are settled after a start, no upload is consumed."""
        self.uploads: UploadConsumer | None = None
        """The upload subscription while this element consumes its class's upload topic."""
        self.due = asyncio.Event()
        """Set to decide at once rather than at the next heartbeat interval."""
        self.refusal = ""
        """Why the element last handed uploads back."""
        self._refused_at_free: int | None = None
        """Free bytes when the element last handed uploads back for want of room: it takes
        uploads again only once it has more room than that (no ping-pong)."""

    @property
    def element_id(self) -> str:
        return self.config.element_id

    def accepting(self) -> bool:
        """Whether this element takes uploads now (mode, capacity, no refusal standing, its
        own storage answering: an element whose storage is away stands aside, so that under
        sequential fill the next element of its class takes the uploads, the held ones
        included, until it answers again)."""
        worker = self.worker
        if worker.state.mode not in UPLOAD_TOPIC or self.standing_aside():
            return False
        capacity = worker.capacity()
        if self._refused_at_free is not None:
            if capacity.free_bytes <= self._refused_at_free:
                return False
            self._refused_at_free = None  # room was freed since: try again
        return capacity.status is not CapacityStatus.FULL

    def standing_aside(self) -> bool:
        """Whether the element's own storage (or writer lease) is away: it takes no uploads
        meanwhile, though it is not full."""
        return bool(OWN_DEPENDENCIES & self.outages.away.keys())

    def step_aside(self, why: str) -> None:
        """The element handed uploads back: it can't take what is offered. When that is for
        want of room, it refuses uploads until it has more room than now (and says so with
        ElementFull), so placement does not hand the topic back and forth."""
        if self.worker.state.mode in UPLOAD_TOPIC:
            self._refused_at_free = self.worker.capacity().free_bytes
            self.refusal = why
        self.due.set()

    async def run(self) -> None:
        """Decide placement every heartbeat interval, or at once when something changed.

        Runs on its own: heartbeats and commands keep flowing whatever placement does, and
        every join or leave is bounded in time, then retried here."""
        while True:
            try:
                await self.place()
            except Exception:
                log.exception("placement failed; retrying")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.config.heartbeat_interval_s):
                    await self.due.wait()
            self.due.clear()

    async def place(self) -> None:
        """Start or stop consuming uploads as placement says."""
        if not self.claims_settled:
            try:
                async with asyncio.timeout(self.config.placement_timeout_s):
                    settled = await reconcile_claims(self.worker)
            except (TimeoutError, ClaimsUnavailable, *RETRIED_IN_PLACE) as exc:
                log.warning("upload claims not settled yet", extra={"error": str(exc)})
                return
            self.claims_settled = True
            if settled:
                log.warning("settled unfinished upload claims", extra={"claims": settled})
        me = PeerStatus(
            self.element_id,
            self.worker.state.mode,
            self.config.priority,
            self.accepting(),
            time.monotonic(),
        )
        consume = should_consume(
            me,
            self.peers.table.all(),
            strategy=self.config.placement,
            now=time.monotonic(),
            timeout=self.config.peer_timeout,
        )
        if consume and self.uploads is None:
            await self.join()
        elif not consume and self.uploads is not None:
            await self.leave()

    async def join(self) -> None:
        """Start consuming the class's upload topic; bounded in time (retried by placement)."""
        topic = upload_topic(self.worker.state.mode)
        uploads = UploadConsumer(
            broker=self.broker,
            worker=self.worker,
            topic=topic,
            topics=self.topics,
            group=storage_group(self.topics, self.element_id, topic),
            config=self.config,
            metrics=self.metrics,
            announce=self.announce,
            step_aside=self.step_aside,
            outages=self.outages,
        )
        try:
            async with asyncio.timeout(self.config.placement_timeout_s):
                await uploads.start()
        except TimeoutError:
            self.metrics.placement_timeouts.inc()
            log.error(
                "joining the upload group took too long; retrying",
                extra={"timeout_s": self.config.placement_timeout_s},
            )
            with contextlib.suppress(Exception):
                async with asyncio.timeout(self.config.placement_timeout_s):
                    await uploads.subscriber.stop()
            return
        self.uploads = uploads
        self.metrics.consuming_uploads.set(1)
        log.info("consuming uploads", extra={"topic": topic.value})

    async def leave(self) -> None:
        """Stop consuming uploads (the batch being stored finishes first); bounded in time."""
        uploads, self.uploads = self.uploads, None
        if uploads is None:
            return
        self.metrics.consuming_uploads.set(0)
        try:
            async with asyncio.timeout(self.config.placement_timeout_s):
                await uploads.stop()
        except TimeoutError:
            self.metrics.placement_timeouts.inc()
            log.error(
                "leaving the upload group took too long; its session expires on the broker",
                extra={"timeout_s": self.config.placement_timeout_s},
            )
        except Exception:
            log.exception("leaving the upload group failed")
        log.info("stopped consuming uploads")
