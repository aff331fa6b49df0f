"""Monitoring a model in service: has the population moved away from what it was trained on,
where, is the model still right about who defaults, and what should the analyst do?

Drift is only measured between like populations, each figure beside the rows it rests on:

- **applicants**: the champion's training borrowers (their profiles at grant) against the loans
  granted in the latest months (profiles at grant, matured or not). Borrowers are mostly
  enterprises with utility accounts; the living population is mostly individual businesses, and
  comparing one with the other measures the difference between two populations, not a change;
- **population**: every living entity now against every living entity a year before.

Per comparison the score comes first, then the features, worst first. A feature whose training rows
are mostly zero or missing (``SPARSE_SHARE``) has no deciles to move between, so it is judged by its
non-zero share instead of by PSI. Per source, the share of its model features that are missing:
a department that stops delivering shows here first. On loans matured since the champion's
fitted windows: realised against predicted default, per grade, with intervals.

:func:`verdict` turns these into *stable*, *watch* or *retrain* and names every rule that fired.

The package holds one idea per module: the measures over frames (:mod:`.measures`), the verdict
(:mod:`.verdict`), reading the lake for them (:mod:`.lake`) and the tables and figures a person
reads (:mod:`.plots`).
"""

from models.monitoring.lake import monitor, silent_sources
from models.monitoring.measures import (MIN_DEFAULTS, MIN_ROWS, MISSING_RETRAIN, MISSING_WATCH, PSI_ACT, PSI_WATCH,
                                        SHARE_ACT, SHARE_WATCH, SIGNIFICANT, SILENT_DAYS, SILENT_GAPS, SPARSE_SHARE,
                                        band, drift, drift_by, missing_by_source, realised_by_grade,
                                        reason_frequencies, sample_rows)
from models.monitoring.plots import BAND_COLOURS, drift_text, plot_drift, plot_realised
from models.monitoring.verdict import Monitoring, verdict

__all__ = ["BAND_COLOURS", "MIN_DEFAULTS", "MIN_ROWS", "MISSING_RETRAIN", "MISSING_WATCH", "Monitoring", "PSI_ACT",
           "PSI_WATCH", "SHARE_ACT", "SHARE_WATCH", "SIGNIFICANT", "SILENT_DAYS", "SILENT_GAPS", "SPARSE_SHARE", "band",
           "drift", "drift_by", "drift_text", "missing_by_source", "monitor", "plot_drift", "plot_realised",
           "realised_by_grade", "reason_frequencies", "sample_rows", "silent_sources", "verdict"]
