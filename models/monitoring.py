"""Monitoring a model in service: has the population moved away from what it was trained on,
where, and what is the service telling banks?"""

from __future__ import annotations

import pandas as pd

from models import metrics
from models.bundle import ModelBundle

PSI_WATCH, PSI_ACT = 0.10, 0.25
"""Conventional PSI bands: below 0.10 stable, up to 0.25 watch, above 0.25 act."""


def band(value: float) -> str:
    return "stable" if value < PSI_WATCH else "watch" if value < PSI_ACT else "act"


def drift(bundle: ModelBundle, training: pd.DataFrame, latest: pd.DataFrame) -> pd.DataFrame:
    """PSI of the score and of every model input between the training population and the latest
    profile, worst first, with its band."""
    rows = [("score", metrics.psi(bundle.decide(training, explain=False).score,
                                  bundle.decide(latest, explain=False).score))]
    rows += [(f, metrics.psi(training[f], latest[f])) for f in bundle.features]
    table = pd.DataFrame(rows, columns=["variable", "psi"]).sort_values("psi", ascending=False, kind="stable")
    table["band"] = table["psi"].map(band)
    return table.reset_index(drop=True)


def drift_by(bundle: ModelBundle, training: pd.DataFrame, latest: pd.DataFrame, by: str) -> pd.DataFrame:
    """Score PSI and mean PD, training against latest, per value of ``by`` (district…)."""
    trained, now = bundle.decide(training, explain=False), bundle.decide(latest, explain=False)
    rows = []
    for value in sorted(set(latest[by].dropna().astype(str))):
        a = training[by].astype("object").astype(str).to_numpy() == value
        b = latest[by].astype("object").astype(str).to_numpy() == value
        if a.sum() < 20 or b.sum() < 20:
            continue
        psi = metrics.psi(trained.score[a], now.score[b])
        rows.append({by: value, "training": int(a.sum()), "latest": int(b.sum()), "mean_pd_training": trained.pd[a].mean(),
                     "mean_pd_latest": now.pd[b].mean(), "score_psi": psi, "band": band(psi)})
    return pd.DataFrame(rows)


def reason_frequencies(listing: pd.DataFrame, column: str = "adverse_reasons", top: int = 15) -> pd.DataFrame:
    """How often each reason code appears among the listed decisions (a pre-credit list or the
    service's decisions), with the registry's words."""
    from features.registry import FEATURES

    words = {f.code: (f.name, f.zh, f.en) for f in FEATURES}
    codes = listing[column].fillna("").str.split(";").explode()
    counts = codes[codes != ""].value_counts().head(top)
    return pd.DataFrame({"code": counts.index, "decisions": counts.to_numpy(),
                         "share": counts.to_numpy() / max(len(listing), 1),
                         "feature": [words.get(c, (c,))[0] for c in counts.index],
                         "zh": [words.get(c, (c, c))[1] for c in counts.index]})


def sample_rows(frame: pd.DataFrame, n: int, seed: int = 0) -> pd.DataFrame:
    """At most ``n`` rows, the same ones every time."""
    return frame if len(frame) <= n else frame.sample(n, random_state=seed)
