"""The CloudEvents-1.0-shaped envelope every ArtStore message travels in."""

from __future__ import annotations

from typing import Annotated, Generic, Literal, TypeVar
from uuid import uuid4

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

DataT = TypeVar("DataT", bound=BaseModel)

EventType = Annotated[
    str, StringConstraints(pattern=r"^artstore(\.[a-z][a-z-]*)+\.v[0-9]+$", max_length=128)
]


def new_event_id() -> str:
    """A fresh, globally unique event id."""
    return str(uuid4())


class Envelope(BaseModel, Generic[DataT]):
    """CloudEvents 1.0 attributes (structured mode) plus ``correlation_id``.

    ``subject`` is the id the event is about (file_id or element_id) and equals the record key.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    specversion: Literal["1.0"] = "1.0"
    id: Annotated[str, StringConstraints(min_length=1, max_length=128)] = Field(
        default_factory=new_event_id
    )
    type: EventType
    source: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    time: AwareDatetime
    subject: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    datacontenttype: Literal["application/json"] = "application/json"
    correlation_id: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    data: DataT
