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
