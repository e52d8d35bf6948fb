"""Configuration from the environment (``ESCALERA_*``, plus ``DATABASE_URL`` and ``REDIS_URL``).

Defaults are the embedded ones: a SQLite file in the working directory, Redis on localhost, the
bundled policy presets. Secrets (API tokens, webhook secrets) are `SecretStr`: they print as
``**********`` and never reach a log.
"""

from __future__ import annotations

import re
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Literal, NamedTuple

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

_PRESETS = Path(__file__).resolve().parent.parent / "deploy" / "policies"
WEBHOOK_PORTALS = ("zendesk", "freshdesk", "jira")  # the sources of POST /v1/webhooks/{source}
MIN_TOKEN_CHARS = 16


class WholeNumber(NamedTuple):
    """A whole-number setting: its variable, its default and its least value."""

    variable: str
    default: int
    minimum: int

    def parse(self, value: object) -> int:
        """An int, or the variable's text (blank: the default); refused, naming the variable,
        if it is no whole number or below the least value."""
        if isinstance(value, int) and not isinstance(value, bool) and value >= self.minimum:
            return value
        raw = value.strip() if isinstance(value, str) else value
        if raw == "":
            return self.default
        if not isinstance(raw, str) or not raw.isdigit() or int(raw) < self.minimum:
            raise ValueError(
                f"{self.variable}={raw!r}: write a whole number, at least {self.minimum}"
            )
        return int(raw)


# Storm coalescing (`worker.notify.storm`).
STORM_THRESHOLD = WholeNumber("ESCALERA_STORM_THRESHOLD", 10, 0)
STORM_DIGEST_MAX = WholeNumber("ESCALERA_STORM_DIGEST_MAX", 200, 2)
_STORM = {"storm_threshold": STORM_THRESHOLD, "storm_digest_max": STORM_DIGEST_MAX}


class ApiKey(BaseModel):
    """One entry of ``ESCALERA_API_KEYS``: a named token and what it may do."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]*$")
    token: SecretStr
    scopes: list[Literal["write", "read", "ack"]] = Field(min_length=1)
    sources: list[str] = Field(["api"], min_length=1)  # what a write-scoped key may write as

    @field_validator("token")
    @classmethod
    def _token_long(cls, token: SecretStr) -> SecretStr:
        if len(token.get_secret_value()) < MIN_TOKEN_CHARS:
            raise ValueError(f"a token has at least {MIN_TOKEN_CHARS} characters")
        return token

    @field_validator("sources")
    @classmethod
    def _sources_named(cls, sources: list[str]) -> list[str]:
        if any(not source or len(source) > 64 or source != source.strip() for source in sources):
            raise ValueError("each source is a name of 1 to 64 characters, no surrounding spaces")
        return sources


def check_keys_apart(keys: list[ApiKey], legacy: list[SecretStr]) -> None:
    """Names and tokens unique across ``ESCALERA_API_KEYS`` and the legacy tokens: a token left
    in ``ESCALERA_API_TOKENS`` would keep every scope whatever its key says."""
    names = [f"api-token-{n}" for n in range(1, len(legacy) + 1)]
    tokens = {token.get_secret_value(): name for token, name in zip(legacy, names, strict=True)}
    for index, key in enumerate(keys):
        if key.name in names:
            raise ValueError(f"ESCALERA_API_KEYS[{index}]: the name {key.name!r} is taken")
        names.append(key.name)
        other = tokens.setdefault(key.token.get_secret_value(), key.name)
        if other != key.name:
            legacy_one = other in names[: len(legacy)]
            where = " of ESCALERA_API_TOKENS: remove it there" if legacy_one else ""
            raise ValueError(
                f"ESCALERA_API_KEYS[{index}] ({key.name!r}) has the token of {other!r}{where}"
            )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="ESCALERA_", extra="ignore", hide_input_in_errors=True
    )

    database_url: str = Field(
        "sqlite:///escalera.db",
        validation_alias=AliasChoices("DATABASE_URL", "ESCALERA_DATABASE_URL"),
    )
    redis_url: str = Field(
        "redis://127.0.0.1:6379/0", validation_alias=AliasChoices("REDIS_URL", "ESCALERA_REDIS_URL")
    )
    # Redis key prefix for everything Escalera stores besides the Celery queues.
    redis_prefix: str = "escalera"

    policy_dir: Path = _PRESETS
    # Which policy file (by stem) each source uses, as JSON: {"zendesk": "athento"}.
    source_policies: dict[str, str] = {}
    default_policy: str = "soporte-completo"
    # How often each process looks at the policy folder's files (sizes, modification times);
    # 0: never, only SIGHUP reloads (docs/operations.md "Changing policies").
    policy_poll_s: float = Field(5.0, ge=0)

    api_tokens: list[SecretStr] = []  # bearer tokens for POST /v1/events (several, for rotation)
    api_hmac_secret: SecretStr | None = None
    # Keys with scopes (docs/security.md).
    # ESCALERA_API_KEYS: a JSON list of {"name", "token", "scopes", "sources"}; each legacy
    # ESCALERA_API_TOKENS entry is a key `api-token-N` with every scope, writing source `api` only.
    api_keys: list[ApiKey] = []
    api_hmac_sources: list[str] = ["api"]  # the sources an HMAC-signed POST /v1/events may write
    api_docs: bool = True  # /docs, /redoc and /openapi.json (the schema is not secret)
    zendesk_secret: SecretStr | None = None
    jira_secret: SecretStr | None = None
    freshdesk_secret: SecretStr | None = None
    # The portals' integration settings file (docs/integrations.md): priority, status and group
    # maps, where customer, plan and time zone come from. Unset: every portal maps by default.
    integrations: Path | None = None
    # Who is told where for a route's `to: [assignee, group]` (shared/directory.py): groups
    # and agents -> channel names, read at start. Unset: only the policies' own `directory`.
    directory: Path | None = None

    # Acknowledgement links in pages: https://escalera.example.com/v1/notifications/7/ack?sig=…
    public_url: str | None = None
    ack_secret: SecretStr | None = None
    # How long an acknowledgement link works (docs/security.md, "Acknowledgements").
    # ESCALERA_ACK_LINK_TTL: seconds ("86400") or a duration ("90m", "24h", "2d"); 24 h unset.
    ack_link_ttl: timedelta = timedelta(hours=24)

    @field_validator("ack_link_ttl", mode="before")
    @classmethod
    def _ack_link_ttl(cls, value: object) -> timedelta:
        return parse_link_ttl(value)

    max_body_bytes: int = 1024 * 1024
    max_batch: int = 1000
    # An event dated further back or ahead of the server's clock than this is refused (422):
    # a year covers any ticket still open and a portal's retries; five minutes, clock skew.
    max_event_age_days: int = Field(365, ge=1)
    max_event_lead_s: int = Field(300, ge=0)
    # Bounded ticket reads (GET /v1/tickets; bench/read_load_bench.py).
    # `at` lies between the ticket's first event and this many days past max(now, its last
    # event), or the read is refused (422): evaluating at that edge costs milliseconds on every
    # preset, where `at=9999-12-30` cost 31 s of a core.
    ticket_read_horizon_days: int = Field(366, ge=1, le=3660)
    # Reads evaluated at once per process, and reads waiting for a turn; a read beyond both is
    # answered 503 with Retry-After. An evaluation is pure Python: a second one in the same
    # process shares the same GIL (no faster) and makes /healthz wait for it (p99 95 ms with 2,
    # 26 ms with 1); run more ingest processes (--workers) for more reads at once.
    ticket_reads_at_once: int = Field(1, ge=1)
    ticket_reads_waiting: int = Field(64, ge=0)
    events_queue: str = "events"
    # A task a killed worker had taken (acks_late, unacknowledged) goes back on its queue after
    # this long (kombu's Redis visibility timeout). Keep it above the longest retry countdown
    # (a delivery backs off up to 7.5 minutes): a task still waiting on its countdown past it is
    # handed out a second time (harmless, as every task is idempotent, but wasteful).
    broker_visibility_timeout_s: int = 3600
    fire_queue: str = "fire"
    # The durability of a 202 (docs/reliability.md, "What a 202 means").
    # local: answered once the events are on the Redis primary (its append-only file holds them
    # within a second). replica: also once `durability_replicas` replicas confirmed them (Redis
    # WAIT), else 503 with Retry-After after `durability_timeout_ms`; kept under the ingest's
    # 5 s Redis socket timeout.
    durability: Literal["local", "replica"] = "local"
    durability_replicas: int = Field(1, ge=1)
    durability_timeout_ms: int = Field(1000, ge=1, le=4000)
    # Backpressure (docs/reliability.md, "When the events queue is full"): with this many events
    # waiting on the events queue, a write is refused whole with 503 and Retry-After instead of
    # filling Redis; 0: never. 100,000 queued messages take about 160 MB of Redis (1.6 KB each)
    # and about two minutes of one worker's applying (bench/apply_bench.py: 820 events/s).
    ingest_max_queue: int = Field(100_000, ge=0)
    # How long an applier lets a batch of fewer than 100 events fill before applying it
    # (worker.events.applier.FILL): an event is applied up to this much later, and a desk's
    # steady trickle costs far less per event in bigger transactions. 0: apply at once.
    apply_linger_ms: int = Field(100, ge=0, le=1000)
    # How much lower than the rest of the worker the appliers' threads run (Linux nice, added to
    # the process's own): when the machine is saturated the pool's firing and delivery, which
    # must be on time, take the CPU first and applying events waits (nothing is lost: they stay
    # on the events queue). Idle CPU is still used in full. 0: the same priority.
    apply_nice: int = Field(5, ge=0, le=19)
    # Storms (docs/notifications-storms.md): this many notifications for one channel in one
    # delivery pass make a storm (0: never), sent as digests listing this many at most. Read
    # with the others, so a bad value stops the process at start, not when a page fires.
    storm_threshold: int = STORM_THRESHOLD.default
    storm_digest_max: int = STORM_DIGEST_MAX.default

    @field_validator("storm_threshold", "storm_digest_max", mode="before")
    @classmethod
    def _storm_count(cls, value: object, info: ValidationInfo) -> int:
        assert info.field_name is not None
        return _STORM[info.field_name].parse(value)

    @model_validator(mode="after")
    def _queues_apart(self) -> Settings:
        # The worker's appliers take every message of the events queue and send any other task
        # on to the fire queue: one queue for both would pass fire tasks round in circles.
        if self.events_queue == self.fire_queue:
            raise ValueError(
                f"ESCALERA_EVENTS_QUEUE and ESCALERA_FIRE_QUEUE must differ "
                f"(both are {self.events_queue!r})"
            )
        return self

    @field_validator("api_keys")
    @classmethod
    def _keys_apart(cls, keys: list[ApiKey], info: ValidationInfo) -> list[ApiKey]:
        check_keys_apart(keys, info.data.get("api_tokens", []))
        return keys

    def metric_sources(self) -> frozenset[str]:
        """The sources counted under their own metric label: ``api``, the portals with a webhook
        adapter, and every source a policy, a key or the HMAC names (any other is ``other``)."""
        named = {source for key in self.api_keys for source in key.sources}
        return frozenset(
            {"api", *WEBHOOK_PORTALS, *self.source_policies, *self.api_hmac_sources, *named}
        )


@lru_cache(maxsize=1)
def settings() -> Settings:
    """The process's settings, read once; tests call ``settings.cache_clear()`` to re-read."""
    return Settings()


def explain(exc: ValidationError) -> list[str]:
    """Each problem of a `Settings` refusal on one line, named by its environment variable
    (``ESCALERA_API_KEYS[0].scopes: Field required``), never with the value given."""
    lines = []
    for error in exc.errors():
        name, *rest = error["loc"] or ("",)
        variable = _variable(str(name))
        where = variable + "".join(
            f"[{part}]" if isinstance(part, int) else f".{part}" for part in rest
        )
        message = str(error["msg"]).removeprefix("Value error, ")
        lines.append(message if message.startswith(variable) else f"{where}: {message}")
    return lines


def unreadable(exc: Exception) -> str:
    """A JSON setting that is not JSON (pydantic-settings names the field, not the variable)."""
    found = re.search(r'field "(\w+)"', str(exc))
    if found is None:
        return str(exc)
    return f"{_variable(found[1])}: not valid JSON (write a JSON list or object)"


def _variable(field: str) -> str:
    """The environment variable a `Settings` field is read from (its first alias, if any)."""
    info = Settings.model_fields.get(field)
    alias = info.validation_alias if info is not None else None
    if isinstance(alias, AliasChoices) and isinstance(alias.choices[0], str):
        return alias.choices[0]
    return f"ESCALERA_{field.upper()}"


_TTL = re.compile(r"^\s*(\d{1,9})\s*([smhd]?)\s*$")
_TTL_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_link_ttl(value: object) -> timedelta:
    """``ESCALERA_ACK_LINK_TTL``: a `timedelta`, whole seconds, or ``90s``, ``30m``, ``24h``,
    ``2d``; longer than zero."""
    if isinstance(value, timedelta):
        ttl = value
    elif isinstance(value, int) and not isinstance(value, bool):
        ttl = timedelta(seconds=value)
    elif isinstance(value, str) and (match := _TTL.match(value)):
        ttl = timedelta(seconds=int(match[1]) * _TTL_SECONDS[match[2]])
    else:
        raise ValueError(f"{value!r} is not a link lifetime: write seconds, or 30m, 24h, 2d")
    if ttl <= timedelta(0):
        raise ValueError(f"{value!r}: a link must live longer than zero")
    return ttl
