"""What Kafka transactions (facts + consumer offsets in one) would cost the storage worker.

    python -m bench.bench_transactions                  # 6,000 commands, batches of 10 and 200
    python -m bench.bench_transactions --commands 20000 --batch 500

Both sides read the same backlog of commands (1 KB each, 6 partitions) as a consumer group, and
for every batch publish one fact per command (1 KB) and commit the batch's offsets:

- baseline, what the worker does today: the idempotent producer sends the batch's facts, all
  awaited together, then the consumer commits the offsets;
- transactional: a transactional producer begins a transaction, sends the facts, adds the
  offsets to it (``send_offsets_to_transaction``) and commits it.

Each side has a consumer group of its own and reads from the start; rounds alternate which side
goes first, and medians are compared. The ratio is facts/s with transactions over facts/s
without. The embedded broker grants no transactional producers: there it reports that and
measures nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from artstore.stack import ensure_stack
from bench.results import BenchResult, report

PARTITIONS = 6
RECORD = b"x" * 1024
ROUNDS = 3

Batch = dict[TopicPartition, list[Any]]
"""A fetched batch: each partition's records."""
Handle = Callable[[AIOKafkaProducer, AIOKafkaConsumer, str, str, Batch], Awaitable[None]]
"""Publish a batch's facts (to a topic) and commit its offsets (for a group)."""


def next_offsets(batch: Batch) -> dict[TopicPartition, int]:
    """The offsets to commit once ``batch`` is handled."""
    return {tp: records[-1].offset + 1 for tp, records in batch.items() if records}


async def make_topics(bootstrap: str, names: list[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(n, PARTITIONS, 1) for n in names])
        while True:
            described = await admin.describe_topics(names)
            if all(len(t.get("partitions") or []) == PARTITIONS for t in described):
                return
            await asyncio.sleep(0.1)
    finally:
        await admin.close()


async def load_backlog(bootstrap: str, topic: str, count: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all")
    await producer.start()
    try:
        sent = [
            await producer.send(topic, RECORD, key=str(i).encode(), partition=i % PARTITIONS)
            for i in range(count)
        ]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


async def idempotent(
    producer: AIOKafkaProducer, consumer: AIOKafkaConsumer, facts: str, _group: str, batch: Batch
) -> None:
    """Publish the batch's facts, await them all, then commit the offsets."""
    sent = [
        await producer.send(facts, RECORD, partition=tp.partition)
        for tp, records in batch.items()
        for _ in records
    ]
    await asyncio.gather(*sent)
    await consumer.commit(next_offsets(batch))


async def transactional(
    producer: AIOKafkaProducer, _consumer: AIOKafkaConsumer, facts: str, group: str, batch: Batch
) -> None:
    """Facts and offsets in one transaction."""
    async with producer.transaction():
        for tp, records in batch.items():
            for _ in records:
                await producer.send(facts, RECORD, partition=tp.partition)
        await producer.send_offsets_to_transaction(next_offsets(batch), group)


async def run_side(
    bootstrap: str,
    commands: str,
    facts: str,
    count: int,
    batch: int,
    handle: Handle,
    *,
    transactions: bool,
) -> float:
    """Seconds to turn the whole backlog into facts, ``batch`` commands at a time."""
    group = f"txbench-{uuid.uuid4().hex[:8]}"
    consumer = AIOKafkaConsumer(
        commands,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=batch,
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        enable_idempotence=True,
        transactional_id=f"{group}-tx" if transactions else None,
        linger_ms=1,
    )
    await producer.start()
    await consumer.start()
    try:
        while not consumer.assignment():
            await consumer.getmany(timeout_ms=100, max_records=1)
            consumer.seek_to_beginning()
        done = 0
        started = time.perf_counter()
        while done < count:
            fetched = await consumer.getmany(timeout_ms=1000, max_records=batch)
            if fetched:
                await handle(producer, consumer, facts, group, fetched)
                done += sum(len(records) for records in fetched.values())
        return time.perf_counter() - started
    finally:
        await consumer.stop()
        await producer.stop()


async def main(args: argparse.Namespace) -> None:
    env = ensure_stack()
    bootstrap = env.kafka_bootstrap
    probe = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id="txbench-probe")
    try:
        await asyncio.wait_for(probe.start(), 20)
    except (KafkaError, TimeoutError) as exc:
        print(f"this broker grants no transactional producer ({exc!r}): nothing measured")
        return
    finally:
        await probe.stop()
    results: list[BenchResult] = []
    for batch in args.batch:
        prefix = f"txbench{uuid.uuid4().hex[:8]}"
        commands, facts = f"{prefix}.commands", f"{prefix}.facts"
        await make_topics(bootstrap, [commands, facts])
        await load_backlog(bootstrap, commands, args.commands)
        plain: list[float] = []
        with_tx: list[float] = []
        for round_ in range(ROUNDS):
            order = [False, True] if round_ % 2 == 0 else [True, False]
            for transactions in order:
                handle = transactional if transactions else idempotent
                seconds = await run_side(
                    bootstrap,
                    commands,
                    facts,
                    args.commands,
                    batch,
                    handle,
                    transactions=transactions,
                )
                (with_tx if transactions else plain).append(seconds)
        t_plain, t_tx = statistics.median(plain), statistics.median(with_tx)
        results.append(
            BenchResult(
                "transactions",
                f"facts/s, transactional, batches of {batch}",
                args.commands / t_tx,
                "facts/s",
                "idempotent + commit",
                args.commands / t_plain,
            )
        )
    report(results)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=6000)
    parser.add_argument("--batch", type=int, nargs="+", default=[10, 200])
    asyncio.run(main(parser.parse_args()))
