"""Settings, read once from the environment and an optional ``.env`` file, then passed down."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import (
    Field,
    HttpUrl,
    SecretStr,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.domain.quota import CostTable, Limits, QuotaPolicy
from bot.errors import ConfigError

_SQLITE = "sqlite:///"
_POSTGRES = ("postgresql://", "postgres://")
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
_HTTP_URL: TypeAdapter[HttpUrl] = TypeAdapter(HttpUrl)
# discord.py 2.x speaks REST API v10 (pyproject pins it); a proxy URL must say the same.
DISCORD_API_PATH = "/api/v10"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
    )

    # --- secrets (only the commands that need them require them) ---
    discord_token: SecretStr | None = None
    wan_api_key: SecretStr | None = None

    # --- crun API ---
    wan_api_base: str = "https://api.crun.ai"
    wan_request_timeout: float = Field(30.0, gt=0, le=600)
    wan_connect_timeout: float = Field(10.0, gt=0, le=120)
    wan_get_retries: int = Field(3, ge=0, le=10)
    api_rate_limit: float = Field(5.0, gt=0, le=100, description="crun requests per second")
    # JSON object, concept -> input field path (or null): wins over the live schema.
    wan_field_map: str | None = None
    wan_schema_refresh: float = Field(
        6 * 3600.0, ge=60, le=7 * 86_400, description="seconds between live-schema reads"
    )

    # --- storage ---
    database_url: str = "sqlite:///data/wanbot.sqlite3"

    # --- tracking ---
    poll_interval_min: float = Field(5.0, gt=0, le=300)
    poll_interval_max: float = Field(15.0, gt=0, le=900)
    poll_soft_deadline: float = Field(600.0, gt=0, description="tell the user it is slow")
    poll_hard_deadline: float = Field(6 * 3600.0, gt=0, description="give up tracking")

    # --- callbacks (optional; polling always stays on as a fallback) ---
    callback_public_url: str | None = None
    callback_listen: str = "127.0.0.1:8080"

    # --- operations: /healthz and /metrics (on the callback server when that is on) ---
    health_listen: str | None = None

    # --- concurrency ---
    max_concurrent_jobs: int = Field(20, ge=1, le=10_000, description="tasks running at crun")
    max_concurrent_submits: int = Field(4, ge=1, le=64)
    # How long a process holds a job without renewing (renewed every quarter of it); a dead
    # process's jobs are taken over once it lapses.
    job_lease_seconds: float = Field(60.0, ge=1.0, le=3600.0)

    # --- media ---
    download_max_bytes: int = Field(64 * 1024 * 1024, ge=1024)
    allow_http_results: bool = False

    # --- discord ---
    dev_guild_id: int | None = None
    allow_dms: bool = True
    # Comma-separated user ids; they pass every admin check and alone switch DMs on/off.
    bot_owner_ids: Annotated[list[int], NoDecode] = Field(default_factory=list)

    # --- scaling out: shards, command sync, a shared REST proxy (docs/operations.md) ---
    # Unset: one gateway connection (shard 0 of 1), as a bot that fits in one process needs.
    shard_count: int | None = Field(None, ge=1, le=100_000, description="shards in total")
    # Comma-separated shard numbers this process owns; unset = all of SHARD_COUNT's shards.
    shard_ids: Annotated[list[int] | None, NoDecode] = None
    # Unset: the process that owns shard 0 syncs the commands; the others leave it to it.
    sync_commands: bool | None = None
    # A rate-limiting REST proxy every process shares (nirn-proxy, twilight-http-proxy).
    discord_api_base: str | None = None

    # --- quotas and costs (credits) ---
    quota_daily_default: float | None = Field(
        None, ge=0, description="per member; unset = unlimited"
    )
    quota_monthly_default: float | None = Field(None, ge=0)
    global_daily_cap: float | None = Field(None, ge=0, description="whole bot, per UTC day")
    # Running limits hold jobs back in the fair queue; the queue limits refuse requests.
    user_concurrent_jobs: int = Field(2, ge=1, le=100, description="a member's jobs at crun")
    guild_concurrent_jobs: int = Field(10, ge=1, le=10_000, description="a server's jobs at crun")
    user_queue_limit: int = Field(5, ge=1, le=1000, description="a member's jobs waiting")
    guild_queue_limit: int = Field(200, ge=1, le=100_000, description="a server's jobs waiting")
    queue_limit: int = Field(2000, ge=1, le=1_000_000, description="all jobs waiting")
    cooldown_seconds: float = Field(0.0, ge=0, le=86_400)
    cost_per_image: float = Field(1.0, ge=0)
    cost_weight_1k: float = Field(0.5, ge=0)
    cost_weight_2k: float = Field(1.0, ge=0)
    cost_weight_4k: float = Field(2.0, ge=0)
    cost_weight_thinking: float = Field(1.5, ge=0)
    low_balance_threshold: float = Field(100.0, ge=0, description="alert below this balance")
    retention_days: int = Field(90, ge=1, le=3650, description="keep prompts and jobs this long")

    log_level: LogLevel = "INFO"
    log_format: Literal["text", "json"] = "text"

    @field_validator("wan_api_base", "callback_public_url", "discord_api_base")
    @classmethod
    def _http_url(cls, v: str | None) -> str | None:
        if v is None or v == "":
            return None if v == "" else v
        try:  # pydantic's URL type judges it (scheme, host, port), we keep a plain string
            url = _HTTP_URL.validate_python(v.strip())
        except ValidationError as exc:
            raise ValueError(f"must be an http:// or https:// URL ({_first_error(exc)})") from None
        return str(url).rstrip("/")

    @field_validator("wan_field_map")
    @classmethod
    def _field_map(cls, v: str | None) -> str | None:
        if v is None or not v.strip():
            return None
        try:
            doc = json.loads(v)
        except ValueError:
            doc = None
        if not isinstance(doc, dict) or not all(
            isinstance(p, str | type(None)) for p in doc.values()
        ):
            raise ValueError(
                'must be a JSON object of concept -> field path, e.g. {"images": "refs"}'
            )
        return v.strip()

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, v: str) -> str:
        v = v.strip()
        if not v.startswith((_SQLITE, *_POSTGRES)):
            raise ValueError(
                "must be sqlite:///PATH (e.g. sqlite:///data/wanbot.sqlite3) or "
                "postgresql://USER@HOST:PORT/DATABASE"
            )
        return v

    @field_validator("callback_listen")
    @classmethod
    def _callback_listen(cls, v: str) -> str:
        return _listen_address(v, example="0.0.0.0:8080", lowest_port=1)

    @field_validator("health_listen")
    @classmethod
    def _health_listen(cls, v: str | None) -> str | None:
        if v is None or not v.strip():
            return None
        # Port 0 (any free port) is allowed here: tests use it; the log shows the real port.
        return _listen_address(v, example="0.0.0.0:8081", lowest_port=0)

    @field_validator("log_format", mode="before")
    @classmethod
    def _log_format(cls, v: Any) -> Any:
        return v.strip().lower() if isinstance(v, str) else v

    @field_validator("log_level", mode="before")
    @classmethod
    def _log_level(cls, v: Any) -> Any:
        return v.strip().upper() if isinstance(v, str) else v

    @field_validator("bot_owner_ids", mode="before")
    @classmethod
    def _id_list(cls, v: Any) -> Any:
        if isinstance(v, str):
            return [part.strip() for part in v.split(",") if part.strip()]
        if isinstance(v, int):
            return [v]
        return v

    @field_validator("shard_ids", mode="before")
    @classmethod
    def _shard_ids(cls, v: Any) -> Any:
        if not isinstance(v, str):
            return v
        parts = [part.strip() for part in v.split(",") if part.strip()]
        if not all(part.isdigit() for part in parts):
            raise ValueError(f"must be comma-separated shard numbers, e.g. 0,1 (got {v!r})")
        return [int(part) for part in parts] or None

    @field_validator("discord_api_base")
    @classmethod
    def _discord_api_base(cls, url: str | None) -> str | None:
        """Runs after ``_http_url`` (declared first), on the normalised URL."""
        if url is not None and not url.endswith(DISCORD_API_PATH):
            raise ValueError(
                f"must end with {DISCORD_API_PATH} (the Discord API version wanbot speaks), "
                f"e.g. http://nirn-proxy:8080{DISCORD_API_PATH}"
            )
        return url

    @model_validator(mode="after")
    def _poll_order(self) -> Settings:
        if self.poll_interval_max < self.poll_interval_min:
            raise ValueError("POLL_INTERVAL_MAX must be >= POLL_INTERVAL_MIN")
        return self

    @model_validator(mode="after")
    def _shards(self) -> Settings:
        ids = self.shard_ids
        if ids is None:
            return self
        if self.shard_count is None:
            raise ValueError("SHARD_IDS needs SHARD_COUNT (how many shards there are in total)")
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise ValueError(f"SHARD_IDS lists shard {_ids(twice)} more than once")
        beyond = [i for i in ids if i < 0 or i >= self.shard_count]
        if beyond:
            raise ValueError(
                f"SHARD_IDS: {_ids(beyond)} is not below SHARD_COUNT={self.shard_count} "
                f"(shards are numbered 0 to {self.shard_count - 1})"
            )
        return self

    # --- helpers ---

    def quota_policy(self) -> QuotaPolicy:
        return QuotaPolicy(
            default_limits=Limits(self.quota_daily_default, self.quota_monthly_default),
            global_daily_cap=self.global_daily_cap,
            user_concurrent=self.user_concurrent_jobs,
            guild_concurrent=self.guild_concurrent_jobs,
            cooldown_seconds=self.cooldown_seconds,
            user_queue_limit=self.user_queue_limit,
            guild_queue_limit=self.guild_queue_limit,
            queue_limit=self.queue_limit,
        )

    def cost_table(self) -> CostTable:
        return CostTable(
            per_image=self.cost_per_image,
            weight_1k=self.cost_weight_1k,
            weight_2k=self.cost_weight_2k,
            weight_4k=self.cost_weight_4k,
            weight_thinking=self.cost_weight_thinking,
        )

    @property
    def database_engine(self) -> Literal["sqlite", "postgresql"]:
        """Which store DATABASE_URL selects."""
        return "postgresql" if self.database_url.startswith(_POSTGRES) else "sqlite"

    @property
    def database_path(self) -> Path:
        """The SQLite file (only for a sqlite:/// URL)."""
        if self.database_engine != "sqlite":
            raise ValueError("DATABASE_URL names a PostgreSQL database, not a SQLite file")
        return Path(self.database_url.removeprefix(_SQLITE))

    @property
    def database_label(self) -> str:
        """The database for people to read: the SQLite file, or the URL without its password
        and query (either may carry secrets)."""
        if self.database_engine == "sqlite":
            return str(self.database_path)
        parts = urlsplit(self.database_url)
        host = parts.netloc.rpartition("@")[2]
        user = f"{parts.username}@" if parts.username else ""
        return urlunsplit((parts.scheme, user + host, parts.path, "", ""))

    @property
    def owned_shards(self) -> tuple[int, ...]:
        """The gateway shards this process connects: SHARD_IDS, else all of SHARD_COUNT's,
        else shard 0 of 1 (a bot that is not sharded)."""
        if self.shard_ids:
            return tuple(self.shard_ids)
        return tuple(range(self.shard_count or 1))

    @property
    def syncs_commands(self) -> bool:
        """Syncing is global to the application and rate limited, so exactly one process does
        it: the one that owns shard 0 (every split of the shards has one), unless overridden."""
        if self.sync_commands is not None:
            return self.sync_commands
        return 0 in self.owned_shards

    @property
    def callback_host_port(self) -> tuple[str, int]:
        host, _, port = self.callback_listen.rpartition(":")
        return host.strip("[]"), int(port)

    def require(self, *names: str) -> None:
        """Raise one ConfigError naming every required variable that is unset."""
        missing = [n.upper() for n in names if not _secret_value(getattr(self, n))]
        if missing:
            raise ConfigError(
                f"Missing setting{'s' if len(missing) > 1 else ''}: {', '.join(missing)}. "
                "Set it in the environment or in a .env file (see .env.example)."
            )

    def api_key(self) -> str:
        self.require("wan_api_key")
        assert self.wan_api_key is not None
        return self.wan_api_key.get_secret_value()

    def discord_token_value(self) -> str:
        self.require("discord_token")
        assert self.discord_token is not None
        return self.discord_token.get_secret_value()


def _listen_address(v: str, *, example: str, lowest_port: int) -> str:
    """``HOST:PORT`` (``[::]:8080`` for IPv6) with a port in range; a stdlib parser would need a
    made-up scheme and still pass an empty host, so this stays a few lines of our own."""
    v = v.strip()
    host, sep, port = v.rpartition(":")
    if not sep or not host or not port.isdigit() or not lowest_port <= int(port) < 65536:
        raise ValueError(f"must look like HOST:PORT, e.g. {example}")
    return v


def _ids(ids: list[int]) -> str:
    return ",".join(str(i) for i in ids)


def _first_error(exc: ValidationError) -> str:
    return str(exc.errors()[0].get("msg", "invalid URL"))


def _secret_value(v: Any) -> str:
    if isinstance(v, SecretStr):
        return v.get_secret_value().strip()
    return str(v or "").strip()


def load_settings(**overrides: Any) -> Settings:
    """Build Settings, turning pydantic's report into one message that names each variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = err.get("loc") or ()
            name = str(loc[0]).upper() if loc else "SETTINGS"
            msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
            problems.append(f"{name}: {msg}")
        raise ConfigError("Invalid configuration: " + "; ".join(problems)) from None
