from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Scalar(_message.Message):
    __slots__ = ("keyword", "integer", "boolean")
    KEYWORD_FIELD_NUMBER: _ClassVar[int]
    INTEGER_FIELD_NUMBER: _ClassVar[int]
    BOOLEAN_FIELD_NUMBER: _ClassVar[int]
    keyword: str
    integer: int
    boolean: bool
    def __init__(self, keyword: _Optional[str] = ..., integer: _Optional[int] = ..., boolean: _Optional[bool] = ...) -> None: ...

class Condition(_message.Message):
    __slots__ = ("field", "match", "any", "gte", "gt", "lte", "lt", "has_vector")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    MATCH_FIELD_NUMBER: _ClassVar[int]
    ANY_FIELD_NUMBER: _ClassVar[int]
    GTE_FIELD_NUMBER: _ClassVar[int]
    GT_FIELD_NUMBER: _ClassVar[int]
    LTE_FIELD_NUMBER: _ClassVar[int]
    LT_FIELD_NUMBER: _ClassVar[int]
    HAS_VECTOR_FIELD_NUMBER: _ClassVar[int]
    field: str
    match: Scalar
    any: _containers.RepeatedCompositeFieldContainer[Scalar]
    gte: float
    gt: float
    lte: float
    lt: float
    has_vector: str
    def __init__(self, field: _Optional[str] = ..., match: _Optional[_Union[Scalar, _Mapping]] = ..., any: _Optional[_Iterable[_Union[Scalar, _Mapping]]] = ..., gte: _Optional[float] = ..., gt: _Optional[float] = ..., lte: _Optional[float] = ..., lt: _Optional[float] = ..., has_vector: _Optional[str] = ...) -> None: ...

class Filter(_message.Message):
    __slots__ = ("must", "must_not", "should")
    MUST_FIELD_NUMBER: _ClassVar[int]
    MUST_NOT_FIELD_NUMBER: _ClassVar[int]
    SHOULD_FIELD_NUMBER: _ClassVar[int]
    must: _containers.RepeatedCompositeFieldContainer[Condition]
    must_not: _containers.RepeatedCompositeFieldContainer[Condition]
    should: _containers.RepeatedCompositeFieldContainer[Condition]
    def __init__(self, must: _Optional[_Iterable[_Union[Condition, _Mapping]]] = ..., must_not: _Optional[_Iterable[_Union[Condition, _Mapping]]] = ..., should: _Optional[_Iterable[_Union[Condition, _Mapping]]] = ...) -> None: ...

class RecommendRequest(_message.Message):
    __slots__ = ("collection", "user_id", "n", "filter", "diversity", "exclude", "prompt", "examples", "explain")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    N_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    DIVERSITY_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    EXAMPLES_FIELD_NUMBER: _ClassVar[int]
    EXPLAIN_FIELD_NUMBER: _ClassVar[int]
    collection: str
    user_id: str
    n: int
    filter: Filter
    diversity: float
    exclude: _containers.RepeatedScalarFieldContainer[str]
    prompt: str
    examples: _containers.RepeatedScalarFieldContainer[str]
    explain: bool
    def __init__(self, collection: _Optional[str] = ..., user_id: _Optional[str] = ..., n: _Optional[int] = ..., filter: _Optional[_Union[Filter, _Mapping]] = ..., diversity: _Optional[float] = ..., exclude: _Optional[_Iterable[str]] = ..., prompt: _Optional[str] = ..., examples: _Optional[_Iterable[str]] = ..., explain: _Optional[bool] = ...) -> None: ...

class HistoryContribution(_message.Message):
    __slots__ = ("id", "label", "share", "modalities")
    class ModalitiesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    SHARE_FIELD_NUMBER: _ClassVar[int]
    MODALITIES_FIELD_NUMBER: _ClassVar[int]
    id: str
    label: str
    share: float
    modalities: _containers.ScalarMap[str, float]
    def __init__(self, id: _Optional[str] = ..., label: _Optional[str] = ..., share: _Optional[float] = ..., modalities: _Optional[_Mapping[str, float]] = ...) -> None: ...

class Explanation(_message.Message):
    __slots__ = ("sentence", "reason", "history", "modalities", "shares")
    class ModalitiesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class SharesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    SENTENCE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    MODALITIES_FIELD_NUMBER: _ClassVar[int]
    SHARES_FIELD_NUMBER: _ClassVar[int]
    sentence: str
    reason: str
    history: _containers.RepeatedCompositeFieldContainer[HistoryContribution]
    modalities: _containers.ScalarMap[str, float]
    shares: _containers.ScalarMap[str, float]
    def __init__(self, sentence: _Optional[str] = ..., reason: _Optional[str] = ..., history: _Optional[_Iterable[_Union[HistoryContribution, _Mapping]]] = ..., modalities: _Optional[_Mapping[str, float]] = ..., shares: _Optional[_Mapping[str, float]] = ...) -> None: ...

class Recommended(_message.Message):
    __slots__ = ("id", "score", "payload", "signals", "explanation")
    class SignalsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    SIGNALS_FIELD_NUMBER: _ClassVar[int]
    EXPLANATION_FIELD_NUMBER: _ClassVar[int]
    id: str
    score: float
    payload: _struct_pb2.Struct
    signals: _containers.ScalarMap[str, float]
    explanation: Explanation
    def __init__(self, id: _Optional[str] = ..., score: _Optional[float] = ..., payload: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., signals: _Optional[_Mapping[str, float]] = ..., explanation: _Optional[_Union[Explanation, _Mapping]] = ...) -> None: ...

class RecommendResponse(_message.Message):
    __slots__ = ("user_id", "items", "reason", "model_version", "timings_ms")
    class TimingsMsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_MS_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    items: _containers.RepeatedCompositeFieldContainer[Recommended]
    reason: str
    model_version: str
    timings_ms: _containers.ScalarMap[str, float]
    def __init__(self, user_id: _Optional[str] = ..., items: _Optional[_Iterable[_Union[Recommended, _Mapping]]] = ..., reason: _Optional[str] = ..., model_version: _Optional[str] = ..., timings_ms: _Optional[_Mapping[str, float]] = ...) -> None: ...

class EventIn(_message.Message):
    __slots__ = ("user_id", "item_id", "type", "timestamp", "value", "event_id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    item_id: str
    type: str
    timestamp: float
    value: float
    event_id: str
    def __init__(self, user_id: _Optional[str] = ..., item_id: _Optional[str] = ..., type: _Optional[str] = ..., timestamp: _Optional[float] = ..., value: _Optional[float] = ..., event_id: _Optional[str] = ...) -> None: ...

class RecordEventsRequest(_message.Message):
    __slots__ = ("collection", "events")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    collection: str
    events: _containers.RepeatedCompositeFieldContainer[EventIn]
    def __init__(self, collection: _Optional[str] = ..., events: _Optional[_Iterable[_Union[EventIn, _Mapping]]] = ...) -> None: ...

class Rejection(_message.Message):
    __slots__ = ("index", "id", "reason")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    index: int
    id: str
    reason: str
    def __init__(self, index: _Optional[int] = ..., id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class RecordEventsResponse(_message.Message):
    __slots__ = ("written", "duplicates", "rejected")
    WRITTEN_FIELD_NUMBER: _ClassVar[int]
    DUPLICATES_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    written: int
    duplicates: int
    rejected: _containers.RepeatedCompositeFieldContainer[Rejection]
    def __init__(self, written: _Optional[int] = ..., duplicates: _Optional[int] = ..., rejected: _Optional[_Iterable[_Union[Rejection, _Mapping]]] = ...) -> None: ...

class HistoryRequest(_message.Message):
    __slots__ = ("collection", "user_id", "limit")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    collection: str
    user_id: str
    limit: int
    def __init__(self, collection: _Optional[str] = ..., user_id: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class RecordedEvent(_message.Message):
    __slots__ = ("user_id", "item_id", "type", "timestamp", "value", "context")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    item_id: str
    type: str
    timestamp: float
    value: float
    context: str
    def __init__(self, user_id: _Optional[str] = ..., item_id: _Optional[str] = ..., type: _Optional[str] = ..., timestamp: _Optional[float] = ..., value: _Optional[float] = ..., context: _Optional[str] = ...) -> None: ...

class HistoryResponse(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[RecordedEvent]
    def __init__(self, events: _Optional[_Iterable[_Union[RecordedEvent, _Mapping]]] = ...) -> None: ...

class ForgetUserRequest(_message.Message):
    __slots__ = ("collection", "user_id")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    collection: str
    user_id: str
    def __init__(self, collection: _Optional[str] = ..., user_id: _Optional[str] = ...) -> None: ...

class ForgetReceipt(_message.Message):
    __slots__ = ("user_id", "events_erased", "cached_state_dropped", "trained_model")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    EVENTS_ERASED_FIELD_NUMBER: _ClassVar[int]
    CACHED_STATE_DROPPED_FIELD_NUMBER: _ClassVar[int]
    TRAINED_MODEL_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    events_erased: int
    cached_state_dropped: bool
    trained_model: str
    def __init__(self, user_id: _Optional[str] = ..., events_erased: _Optional[int] = ..., cached_state_dropped: _Optional[bool] = ..., trained_model: _Optional[str] = ...) -> None: ...

class SearchRequest(_message.Message):
    __slots__ = ("collection", "text", "image", "audio", "item_id", "space", "limit", "filter", "exclude")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    SPACE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_FIELD_NUMBER: _ClassVar[int]
    collection: str
    text: str
    image: bytes
    audio: bytes
    item_id: str
    space: str
    limit: int
    filter: Filter
    exclude: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, collection: _Optional[str] = ..., text: _Optional[str] = ..., image: _Optional[bytes] = ..., audio: _Optional[bytes] = ..., item_id: _Optional[str] = ..., space: _Optional[str] = ..., limit: _Optional[int] = ..., filter: _Optional[_Union[Filter, _Mapping]] = ..., exclude: _Optional[_Iterable[str]] = ...) -> None: ...

class SimilarRequest(_message.Message):
    __slots__ = ("collection", "item_id", "space", "limit", "filter")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    SPACE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    collection: str
    item_id: str
    space: str
    limit: int
    filter: Filter
    def __init__(self, collection: _Optional[str] = ..., item_id: _Optional[str] = ..., space: _Optional[str] = ..., limit: _Optional[int] = ..., filter: _Optional[_Union[Filter, _Mapping]] = ...) -> None: ...

class ScoredItem(_message.Message):
    __slots__ = ("id", "score", "payload")
    ID_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    id: str
    score: float
    payload: _struct_pb2.Struct
    def __init__(self, id: _Optional[str] = ..., score: _Optional[float] = ..., payload: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class SearchResponse(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[ScoredItem]
    def __init__(self, items: _Optional[_Iterable[_Union[ScoredItem, _Mapping]]] = ...) -> None: ...

class GetItemRequest(_message.Message):
    __slots__ = ("collection", "item_id")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    collection: str
    item_id: str
    def __init__(self, collection: _Optional[str] = ..., item_id: _Optional[str] = ...) -> None: ...

class ItemIn(_message.Message):
    __slots__ = ("id", "title", "description", "tags", "image", "image_bytes", "audio", "audio_bytes", "payload")
    ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    IMAGE_BYTES_FIELD_NUMBER: _ClassVar[int]
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    AUDIO_BYTES_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    id: str
    title: str
    description: str
    tags: _containers.RepeatedScalarFieldContainer[str]
    image: str
    image_bytes: bytes
    audio: str
    audio_bytes: bytes
    payload: _struct_pb2.Struct
    def __init__(self, id: _Optional[str] = ..., title: _Optional[str] = ..., description: _Optional[str] = ..., tags: _Optional[_Iterable[str]] = ..., image: _Optional[str] = ..., image_bytes: _Optional[bytes] = ..., audio: _Optional[str] = ..., audio_bytes: _Optional[bytes] = ..., payload: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class UpsertItemsRequest(_message.Message):
    __slots__ = ("collection", "items")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    collection: str
    items: _containers.RepeatedCompositeFieldContainer[ItemIn]
    def __init__(self, collection: _Optional[str] = ..., items: _Optional[_Iterable[_Union[ItemIn, _Mapping]]] = ...) -> None: ...

class UpsertItemsResponse(_message.Message):
    __slots__ = ("upserted", "rejected")
    UPSERTED_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    upserted: _containers.RepeatedScalarFieldContainer[str]
    rejected: _containers.RepeatedCompositeFieldContainer[Rejection]
    def __init__(self, upserted: _Optional[_Iterable[str]] = ..., rejected: _Optional[_Iterable[_Union[Rejection, _Mapping]]] = ...) -> None: ...

class DeleteItemsRequest(_message.Message):
    __slots__ = ("collection", "ids")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    IDS_FIELD_NUMBER: _ClassVar[int]
    collection: str
    ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, collection: _Optional[str] = ..., ids: _Optional[_Iterable[str]] = ...) -> None: ...

class DeleteItemsResponse(_message.Message):
    __slots__ = ("deleted", "missing", "events_erased")
    DELETED_FIELD_NUMBER: _ClassVar[int]
    MISSING_FIELD_NUMBER: _ClassVar[int]
    EVENTS_ERASED_FIELD_NUMBER: _ClassVar[int]
    deleted: _containers.RepeatedScalarFieldContainer[str]
    missing: _containers.RepeatedScalarFieldContainer[str]
    events_erased: int
    def __init__(self, deleted: _Optional[_Iterable[str]] = ..., missing: _Optional[_Iterable[str]] = ..., events_erased: _Optional[int] = ...) -> None: ...

class ListCollectionsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListCollectionsResponse(_message.Message):
    __slots__ = ("collections",)
    COLLECTIONS_FIELD_NUMBER: _ClassVar[int]
    collections: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, collections: _Optional[_Iterable[str]] = ...) -> None: ...

class CollectionInfoRequest(_message.Message):
    __slots__ = ("collection",)
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    collection: str
    def __init__(self, collection: _Optional[str] = ...) -> None: ...

class VectorSpace(_message.Message):
    __slots__ = ("dim", "encoder", "distance")
    DIM_FIELD_NUMBER: _ClassVar[int]
    ENCODER_FIELD_NUMBER: _ClassVar[int]
    DISTANCE_FIELD_NUMBER: _ClassVar[int]
    dim: int
    encoder: str
    distance: str
    def __init__(self, dim: _Optional[int] = ..., encoder: _Optional[str] = ..., distance: _Optional[str] = ...) -> None: ...

class CollectionInfoResponse(_message.Message):
    __slots__ = ("tenant", "collection", "points", "events", "vectors", "payload_indexes", "search_index", "trained_model", "details")
    class VectorsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: VectorSpace
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[VectorSpace, _Mapping]] = ...) -> None: ...
    class PayloadIndexesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TENANT_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    VECTORS_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_INDEXES_FIELD_NUMBER: _ClassVar[int]
    SEARCH_INDEX_FIELD_NUMBER: _ClassVar[int]
    TRAINED_MODEL_FIELD_NUMBER: _ClassVar[int]
    DETAILS_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    collection: str
    points: int
    events: int
    vectors: _containers.MessageMap[str, VectorSpace]
    payload_indexes: _containers.ScalarMap[str, str]
    search_index: str
    trained_model: _struct_pb2.Struct
    details: _struct_pb2.Struct
    def __init__(self, tenant: _Optional[str] = ..., collection: _Optional[str] = ..., points: _Optional[int] = ..., events: _Optional[int] = ..., vectors: _Optional[_Mapping[str, VectorSpace]] = ..., payload_indexes: _Optional[_Mapping[str, str]] = ..., search_index: _Optional[str] = ..., trained_model: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., details: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class TrainRequest(_message.Message):
    __slots__ = ("collection", "settings")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    collection: str
    settings: _struct_pb2.Struct
    def __init__(self, collection: _Optional[str] = ..., settings: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class TrainResponse(_message.Message):
    __slots__ = ("version", "validation_ndcg", "validation_users", "counts", "blend", "seconds")
    class CountsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class BlendEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    VERSION_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_NDCG_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_USERS_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    BLEND_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    version: str
    validation_ndcg: float
    validation_users: int
    counts: _containers.ScalarMap[str, int]
    blend: _containers.ScalarMap[str, float]
    seconds: float
    def __init__(self, version: _Optional[str] = ..., validation_ndcg: _Optional[float] = ..., validation_users: _Optional[int] = ..., counts: _Optional[_Mapping[str, int]] = ..., blend: _Optional[_Mapping[str, float]] = ..., seconds: _Optional[float] = ...) -> None: ...

class HealthRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class HealthResponse(_message.Message):
    __slots__ = ("status", "ready", "reasons")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    READY_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    status: str
    ready: bool
    reasons: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, status: _Optional[str] = ..., ready: _Optional[bool] = ..., reasons: _Optional[_Iterable[str]] = ...) -> None: ...
