"""The champion in this process: loaded once, swapped whole when the registry moves on.

Requests read :attr:`ModelHolder.bundle` once and keep that object for their whole life, so a
swap never fails a request in flight; every response names the version that answered.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from models import registry_store

if TYPE_CHECKING:  # the model stack (LightGBM, scikit-learn) loads with the first model, not before
    from models.bundle import ModelBundle

log = logging.getLogger("xyd.api.model")


def freeze_heap() -> None:
    """Collect once, then move every object alive now (the model, the libraries) out of the
    collector's sight. A full collection walked them all, every few hundred requests that make many
    small objects, and stalled a worker's answers for 60–170 ms: a listing of 100 objections had a
    p50 of 8 ms and a p99 of 76–176 ms under wrk, 14–20 ms frozen (bench/objections_bench.py, SQLite,
    2 cores). What was garbage before a model swap is collected first, so nothing leaks."""
    import gc

    gc.unfreeze()
    gc.collect()
    gc.freeze()


class ModelHolder:
    """The registered model under ``alias``, downloaded into ``cache``; ``freeze``: freeze the heap
    after each load (a serving worker's, :func:`freeze_heap`)."""

    def __init__(self, alias: str, cache: Path, freeze: bool = False):
        self.alias, self.cache, self.freeze = alias, Path(cache), freeze
        self.bundle: ModelBundle | None = None
        self.problem: str | None = "not loaded yet"
        self._lock = threading.Lock()
        self._stop = threading.Event()

    @property
    def version(self) -> str | None:
        bundle = self.bundle
        return bundle.version if bundle is not None else None

    def reload(self) -> tuple[str | None, str | None]:
        """Load the version the alias names now, if it is not the one held. Returns (before, after).

        The registry is read first without MLflow where it can be (:func:`models.registry_store.version_from_store`):
        a worker with no champion to load, or whose champion has not moved, never loads MLflow for it."""
        with self._lock:
            before = self.version
            named = registry_store.version_from_store(self.alias)
            if named is None or (named == before and before is not None):
                self.problem = registry_store.no_model(self.alias, registry_store.store_uri()) if named is None \
                    else None
                return before, before
            from models import tracking

            try:
                version = tracking.version_for(self.alias)
                if version != before:
                    bundle = tracking.load_bundle(version, self.cache)
                    bundle.reference_summaries()  # builds every explainer now, not in the first requests
                    self.bundle = bundle
                    log.info("model %s %s loaded (was %s)", self.alias, version, before)
                    if self.freeze:
                        freeze_heap()
                self.problem = None
            except tracking.ModelNotFound as error:
                self.problem = str(error)
            except Exception as error:  # a broken download or registry: keep serving what is held
                log.exception("loading the %s model failed", self.alias)
                self.problem = f"loading failed: {type(error).__name__}: {error}"
            return before, self.version

    def watch(self, every_seconds: float) -> None:
        """Check the registry every ``every_seconds`` in a background thread."""
        if every_seconds <= 0:
            return

        def loop():
            while not self._stop.wait(every_seconds):
                try:
                    self.reload()
                except Exception:  # a registry hiccup must not stop the checks
                    log.exception("checking the registry failed")

        threading.Thread(target=loop, name="xyd-model-watch", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
