"""The service's settings: one pydantic class that reads the environment."""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    """Everything the service reads from the environment, with embedded defaults.

    ``XYD_HOME`` holds all state (default ``./var``); ``XYD_DATABASE_URL`` defaults to a SQLite
    file under it; ``MLFLOW_TRACKING_URI`` names the model registry (default the project's
    ``mlruns/``)."""

    model_config = SettingsConfigDict(env_prefix="XYD_", extra="ignore")

    home: Path = Field(default=Path("var"))
    database_url: str | None = None
    model_alias: str = "champion"
    model_check_seconds: float = 30.0
    max_body_bytes: int = 1_048_576
    max_batch: int = 1_000
    threads_per_worker: int = 2
    checkpoint_every_decisions: int = Field(default=1_000, ge=1)
    checkpoint_every_seconds: float = Field(default=10.0, gt=0)
    checkpoint_grace_seconds: float = Field(default=3600.0, gt=0, description=(
        "rows older than this that no checkpoint covers are NOT VERIFIED: the service signs within seconds"))
    access_log: str = Field(default="", description="the access log's file (default XYD_HOME/logs/access.jsonl); "
                                                    "'-' for standard output, 'off' for none")
    access_log_max_bytes: int = Field(default=50 * 2**20, ge=4096)
    access_log_backups: int = Field(default=10, ge=1)
    auth_failures_allowed: int = Field(default=20, ge=1)
    auth_failure_window_seconds: float = Field(default=60.0, gt=0)
    max_header_bytes: int = Field(default=32_768, ge=1024)
    head_timeout_seconds: float = Field(default=10.0, gt=0, description="a request's line and headers must arrive "
                                        "within this many seconds of its first byte (of the connection, for its first "
                                        "request), or 408 and the connection closed")
    body_timeout_seconds: float = Field(default=30.0, gt=0, description="a request's body must arrive within this "
                                        "many seconds of its headers, or 408 and the connection closed")
    keep_alive_seconds: float = Field(default=5.0, gt=0, description="an idle connection between requests is closed "
                                      "after this many seconds")
    max_connections: int = Field(default=4_096, ge=16, description="open connections per worker; beyond it (or "
                                 "beyond the descriptors the process may open, less a reserve) a new one is refused "
                                 "at once with 503")
    max_connections_per_address: int = Field(default=256, ge=1, description="open connections per worker from one "
                                              "address (a trusted proxy's excepted)")
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="the addresses of the proxies in front of the service (nginx), comma "
                                          "separated: exempt from the per-address ceiling")

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _addresses(cls, value):
        """Comma-separated IP addresses (a list is taken as it is); anything else is refused by name."""
        items = [v.strip() for v in value.split(",")] if isinstance(value, str) else list(value)
        items = [v for v in items if v]
        for item in items:
            try:
                ipaddress.ip_address(item)
            except ValueError:
                raise ValueError(f"XYD_TRUSTED_PROXIES: {item!r} is not an IP address") from None
        return items

    @property
    def keys_directory(self) -> Path:
        """Where the signing keys live (0700; private keys 0600; never in the database)."""
        from features.home import keys_directory

        return keys_directory(self.home)

    @property
    def checkpoints_file(self) -> Path:
        """The append-only file of the chains' signed checkpoints."""
        from features.home import checkpoints_file

        return checkpoints_file(self.home)

    @property
    def database(self) -> str:
        """The database URL in use."""
        if self.database_url:
            return self.database_url
        self.home.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{(self.home / 'xyd.db').resolve()}"


@lru_cache
def settings() -> Settings:
    """The process's settings, read once."""
    return Settings()
