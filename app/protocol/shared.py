"""What every live lab's socket speaks: strict messages, the control verbs, `state` and `error`.

A lab's own module adds its config, its `data` and `frame` messages (on the bases here), and
`mirror()`: the constants its `static/js/protocol/<slug>.js` exports. Its `config` message and its
message sets are derived here (`messages()`).
"""

import json
from types import UnionType
from typing import Annotated, Generic, Literal, TypeVar, Union, get_args, get_origin

from annotated_types import Ge, Le
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    create_model,
    model_validator,
)
from pydantic_core import PydanticCustomError

MAX_SEED = 2**31 - 1


class StrictMessage(BaseModel):
    # Unknown fields are errors (a typo must not be silently ignored); NaN/inf never pass.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True)


def _distinct(items: list) -> list:
    if len(set(items)) != len(items):
        # A custom error type, so pydantic does not prefix the message with "Value error, ".
        raise PydanticCustomError("not_distinct", "must not repeat an item")
    return items


# A list field whose items must differ (a config's choice of features).
Distinct = AfterValidator(_distinct)


class PartialConfig(StrictMessage):
    """Base of `config` messages: only the fields present change, checked later against the
    lab's full config model. Integers are fine where floats go (JSON has one number type); bools
    are not numbers."""

    @model_validator(mode="before")
    @classmethod
    def _ints_are_floats(cls, data: object) -> object:
        if not isinstance(data, dict):
            return data
        floats = {n for n, f in cls.model_fields.items() if f.annotation == (float | None)}
        return {k: float(v) if k in floats and type(v) is int else v for k, v in data.items()}

    def changes(self) -> dict:
        """The fields this message sets."""
        return self.model_dump(exclude={"type"}, exclude_unset=True)


class PlayMessage(StrictMessage):
    type: Literal["play"]


class PauseMessage(StrictMessage):
    type: Literal["pause"]


class StepMessage(StrictMessage):
    """Train one frame's worth of steps at the chosen speed, then pause."""

    type: Literal["step"]


class ResetMessage(StrictMessage):
    """Back to step 0 with the initial weights the seed gives."""

    type: Literal["reset"]


CONTROL_MESSAGES = (PlayMessage, PauseMessage, StepMessage, ResetMessage)
Config = TypeVar("Config", bound=StrictMessage)


class StateMessage(StrictMessage, Generic[Config]):
    """The session's whole config and status: sent on connect and after every control message."""

    type: Literal["state"] = "state"
    version: int
    config: Config
    running: bool
    diverged: bool
    limits: dict


class BaseDataMessage(StrictMessage):
    """Base of a lab's `data` message: what its session learns from, sent on connect and whenever
    it changes."""

    type: Literal["data"] = "data"
    version: int


class BaseFrameMessage(StrictMessage):
    """Base of a lab's `frame` message: where training stands after one frame's steps."""

    type: Literal["frame"] = "frame"
    version: int
    step: int
    diverged: bool
    running: bool


class ErrorMessage(StrictMessage):
    type: Literal["error"] = "error"
    message: str
    field: str | None = None


def type_name(message: type[BaseModel]) -> str:
    """The `type` literal of a message class."""
    (name,) = get_args(message.model_fields["type"].annotation)
    return name


# Every lab's client messages are its `config` and the four control verbs.
CLIENT_TYPES = ", ".join(["config", *map(type_name, CONTROL_MESSAGES)])


def config_message(config: type[StrictMessage]) -> type[PartialConfig]:
    """A lab's `config` message: every field of `config`, optional and without its ranges.

    Ranges are checked on the merged config instead, whose error names the field, the value and
    what is allowed (`app.live.channel.describe_config_error`).
    """
    fields = {
        n: (_unconstrained(f.annotation) | None, None) for n, f in config.model_fields.items()
    }
    return create_model(
        f"{config.__name__}Message",
        __base__=PartialConfig,
        __doc__=f"A partial config: only the fields present change; checked against `{config.__name__}`.",
        type=(Literal["config"], ...),
        **fields,
    )


def _unconstrained(annotation):
    """`annotation` without the constraints inside it: `list[Annotated[int, Field(ge=1)]]` → `list[int]`."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return _unconstrained(args[0])
    if origin is list:
        return list[_unconstrained(args[0])]
    if origin in (Union, UnionType):
        return Union[tuple(_unconstrained(a) for a in args)]  # noqa: UP007 (from a tuple)
    return annotation


def messages(config, data, frame, *more_client):
    """A lab's message types: `(client, parser, server)`.

    The client sends `config` messages (derived from the lab's `config`), the control verbs and
    `more_client`; `parser` reads one of them. The server sends `state`, `data`, `frame`, `error`.
    """
    client = (config_message(config), *CONTROL_MESSAGES, *more_client)
    parser = TypeAdapter(Annotated[Union[client], Field(discriminator="type")])  # noqa: UP007
    return client, parser, (StateMessage[config], data, frame, ErrorMessage)


# -- what a JS mirror exports --------------------------------------------------------------------
def mirror(config: type[BaseModel], client, server, namespace: dict, names) -> dict[str, object]:
    """A lab's JS mirror as JSON values: its message types, the constants `names` of `namespace`
    (its protocol module's `globals()`), and its config's defaults (`CONFIG_DEFAULTS`) and ranges
    (`LIMITS`)."""
    return {
        "CLIENT_MESSAGES": message_names(client),
        "SERVER_MESSAGES": message_names(server),
        **json.loads(json.dumps({name: namespace[name] for name in names})),  # tuples → lists
        "CONFIG_DEFAULTS": config().model_dump(),
        "LIMITS": ranges(config),
    }


def message_names(messages) -> dict[str, str]:
    """`{"CONFIG": "config", …}`: the message types, named as the JS mirror names them."""
    return {type_name(m).upper(): type_name(m) for m in messages}


def ranges(config: type[BaseModel]) -> dict[str, list]:
    """`{field: [ge, le]}` for every field of `config` bounded on both sides, in field order."""
    out = {}
    for name, f in config.model_fields.items():
        ge = next((m.ge for m in f.metadata if isinstance(m, Ge)), None)
        le = next((m.le for m in f.metadata if isinstance(m, Le)), None)
        if ge is not None and le is not None:
            out[name] = [ge, le]
    return out
