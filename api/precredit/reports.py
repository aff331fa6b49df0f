"""What the service has done, for analysts' monitoring (read-only)."""

from __future__ import annotations

import pandas as pd

from api.db.engine import make_engine, sessions, upgrade
from api.precredit import repository


def decisions_served(database_url: str) -> pd.DataFrame:
    """Decisions per bank (rows) and outcome (columns); empty when the service has made none."""
    upgrade(database_url)
    engine = make_engine(database_url)
    try:
        with sessions(engine)() as session:
            table = repository.decisions_by_client(session)
    finally:
        engine.dispose()
    if table.empty:
        return table
    return table.pivot_table(index="client", columns="decision", values="decisions", fill_value=0, aggfunc="sum")
