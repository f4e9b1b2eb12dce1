"""The consumer groups an element's worker reads in: named in one place, because the dead
letters, the lag report and the subscriptions must agree on them."""

from __future__ import annotations

from events import Topic, TopicNames

#: Every element of a class shares one group per upload topic (placement decides who consumes).
_SHARED = {Topic.UPLOADS_EDIT: "uploads.edit", Topic.UPLOADS_RW: "uploads.rw"}


def storage_group(topics: TopicNames, element_id: str, topic: Topic) -> str:
    """The group ``element_id``'s worker reads ``topic`` in: shared by the class for uploads,
    the element's own for its commands."""
    what = _SHARED.get(topic) or f"{element_id}.{topic.value}"
    return f"{topics.prefix}.storage.{what}"


def storage_group_of(topics: TopicNames, element_id: str, physical_topic: str) -> str:
    """:func:`storage_group` for a broker-side topic name (empty when it is not one of ours)."""
    topic = topics.logical(physical_topic)
    return "" if topic is None else storage_group(topics, element_id, topic)
