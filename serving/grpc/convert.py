"""Conversions between the messages of ``mosaicrec.proto`` and the pydantic schemas.

The messages mirror :mod:`mosaicrec.serving.schemas` field for field, so the conversion is
generic: a request becomes the dict of the fields it sets (proto3 ``optional`` fields and
message fields have presence, so an unset field takes the schema's default) and is validated
by the schema's model exactly as a REST body is; a response is built from the model's dump.
Three special cases: ``google.protobuf.Struct`` (payloads, settings) becomes a plain dict whose
whole numbers are ints again (Struct numbers are doubles), ``Scalar`` becomes its value, and
unknown fields are refused (REST refuses unknown JSON fields the same way).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any, TypeVar

from google.protobuf import struct_pb2, unknown_fields
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError, Message
from pydantic import BaseModel

from mosaicrec.errors import RequestError
from mosaicrec.serving import schemas as s
from mosaicrec.serving.grpc import mosaicrec_pb2 as pb

__all__ = ["fields", "history_out", "limit", "maybe_message", "message", "model", "parse", "plain",
           "rejection", "required"]

M = TypeVar("M", bound=BaseModel)
_STRUCT = struct_pb2.Struct.DESCRIPTOR.full_name
_LIST = struct_pb2.ListValue.DESCRIPTOR.full_name
_SCALAR = pb.Scalar.DESCRIPTOR.full_name
_EXACT = 2.0 ** 53  # doubles hold every integer up to here exactly


def plain(value: Any) -> Any:
    """A Struct, ListValue or value as plain Python: whole numbers as ints."""
    if isinstance(value, struct_pb2.Struct):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, struct_pb2.ListValue):
        return [plain(v) for v in value]
    if isinstance(value, float) and value.is_integer() and abs(value) <= _EXACT:
        return int(value)
    return value


def parse(cls: type[Message], data: bytes) -> Any:
    """A request message from the wire; ``RequestError`` when it is not one of ``cls``."""
    try:
        msg = cls.FromString(data)
    except DecodeError as err:
        raise RequestError(f"the request is not a valid {cls.DESCRIPTOR.full_name} message: "
                           f"{err}") from None
    _refuse_unknown(msg)
    return msg


def fields(msg: Message, skip: Iterable[str] = ("collection",)) -> dict[str, Any]:
    """The fields ``msg`` sets, as a dict for a pydantic model (nested messages too)."""
    out: dict[str, Any] = {}
    for field, value in msg.ListFields():
        if field.name in skip:
            continue
        if field.message_type is None:
            out[field.name] = list(value) if field.is_repeated else value
        elif field.message_type.GetOptions().map_entry:
            out[field.name] = dict(value)
        elif field.is_repeated:
            out[field.name] = [_nested(field, v) for v in value]
        else:
            out[field.name] = _nested(field, value)
    return out


def _nested(field: FieldDescriptor, value: Message) -> Any:
    kind = field.message_type.full_name
    if kind in (_STRUCT, _LIST):
        return plain(value)
    if kind == _SCALAR:
        which = value.WhichOneof("kind")
        return None if which is None else getattr(value, which)
    return fields(value, skip=())


def _refuse_unknown(msg: Message) -> None:
    """Unknown fields anywhere in ``msg`` are refused, naming the message and field numbers."""
    unknown = unknown_fields.UnknownFieldSet(msg)
    if len(unknown):
        numbers = sorted({f.field_number for f in unknown})
        raise RequestError(
            f"{msg.DESCRIPTOR.full_name} has fields this server does not know (numbers "
            f"{numbers}): was it built for another message or a newer mosaicrec.proto?")
    for field, value in msg.ListFields():
        if field.message_type is None:
            continue
        if field.message_type.GetOptions().map_entry:
            if field.message_type.fields_by_name["value"].message_type is not None:
                for v in value.values():
                    _refuse_unknown(v)
        elif field.is_repeated:
            for v in value:
                _refuse_unknown(v)
        else:
            _refuse_unknown(value)


def model(msg: Message, cls: type[M]) -> M:
    """The schema request ``cls`` from a request message (``RequestError`` naming the field)."""
    return cls(**fields(msg))


def message(cls: type[Message], data: BaseModel) -> Any:
    """A response message from a schema model; None fields stay unset."""
    return cls(**data.model_dump())


def maybe_message(cls: type[Message], data: BaseModel | None) -> Any:
    """``message`` of ``data``, or None when there is none."""
    return None if data is None else message(cls, data)


def required(msg: Message, name: str) -> str:
    """A string field that names something (a path segment in REST): it must be given."""
    value = getattr(msg, name)
    if not value:
        raise RequestError(f"{name}: field required")
    return value


def limit(msg: Message, default: int) -> int:
    value = msg.limit if msg.HasField("limit") else default
    if value < 1:
        raise RequestError("limit: Input should be greater than or equal to 1")
    return value


def history_out(events: Iterable[Any]) -> pb.HistoryResponse:
    return pb.HistoryResponse(events=[dataclasses.asdict(e) for e in events])


def rejection(index: int, item_id: str | None, err: Exception) -> s.Rejection:
    """A batch element refused while converting (used by the streaming RPCs)."""
    return s.Rejection(index=index, id=item_id or None, reason=str(err))
