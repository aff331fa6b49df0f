"""The service's settings: one pydantic class that reads the environment."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


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
    access_log: str = Field(default="", description="the access log's file (default XYD_HOME/logs/access.jsonl); "
                                                    "'-' for standard output, 'off' for none")
    access_log_max_bytes: int = Field(default=50 * 2**20, ge=4096)
    access_log_backups: int = Field(default=10, ge=1)
    auth_failures_allowed: int = Field(default=20, ge=1)
    auth_failure_window_seconds: float = Field(default=60.0, gt=0)
    max_header_bytes: int = Field(default=32_768, ge=1024)

    @property
    def keys_directory(self) -> Path:
        """Where the signing keys live (0700; private keys 0600; never in the database)."""
        return self.home / "keys"

    @property
    def checkpoints_file(self) -> Path:
        """The append-only file of the chain's signed checkpoints."""
        return self.home / "audit" / "checkpoints.jsonl"

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
