"""Prometheus metrics. Under ``xyd serve --workers N`` every worker writes to the folder named by
``PROMETHEUS_MULTIPROC_DIR`` and ``/metrics`` adds them up."""

from __future__ import annotations

import os

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

REQUESTS = Counter("xyd_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram("xyd_request_seconds", "HTTP request latency", ["route"],
                    buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.5, 1, 2.5))
DECISIONS = Counter("xyd_decisions_total", "Pre-credit decisions", ["decision", "model_version"])


def exposition() -> tuple[bytes, str]:
    """The metrics text, over every worker when running multi-process."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
