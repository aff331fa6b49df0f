"""Benchmark: is what the model learned defensible? Sound credit logic and fair lending on the bench cities.

    python bench/credit_logic_bench.py --seeds 9 10 11

Each city is the model bench's (100,000 entities x 36 months, generated and ingested once under
``cities/``), trained with ``xyd train`` in a fresh process (bench/model_bench.py's ``train_city``),
and its whole pre-credit list as of the city's last day read as an examiner would:

* reasons: enterprises graded D by the tax bureau told that grade is in their favour; coverage flags
  named; firmographic features named as adverse; how often an absence is the strongest favourable
  reason;
* fair lending on the whole population decided (not only borrowers): approval rate by district,
  industry and entity type with counts and Wilson intervals; the largest gap between groups of at
  least ``--min-group`` enterprises beside the gap the generator's true risk gives at the same
  approval rate (the city's true PD at its end, the same number of enterprises approved), and the
  gap of that true risk as the model's own features can know it (a booster of the true PD on them):
  what part of a gap is the model's logic and what part the evidence the platform holds; the
  firmographic share of the margin in the extreme groups;
* calibration within each entity type, out of time, per grade with at least 30 defaults;
* encouraged behaviour at the record level: every enterprise's records changed by each behaviour
  the policy encourages, the profile rebuilt, the decision re-scored: PD rises and limit falls;
* advice: pieces that end at a decline; knock-outs that block the best decision within reach and
  are advised; non-approved thin files and the data advice they get.

Prints the machine it ran on and the medians over cities.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from model_bench import AS_OF, paths, print_medians, train_city  # noqa: E402
from synth_bench import machine  # noqa: E402

SEVERITY = {"approve": 0, "refer": 1, "decline": 2}


def reasons_audit(bundle, profile, decisions) -> dict:
    """Counts over every enterprise's stated reasons."""
    import numpy as np

    from features.registry import BY_NAME

    grade = profile["tax_grade_latest"].astype("object").to_numpy()
    d_favourable = coverage_named = firm_adverse = absence_top = rows_with_positive = 0
    for i in range(len(profile)):
        reasons = decisions.reasons(i)
        for side in ("adverse", "positive"):
            for item in reasons[side]:
                declared = BY_NAME.get(item.get("feature") or "")
                if item["kind"] == "behaviour" and declared is not None:
                    coverage_named += declared.kind == "coverage"
                    firm_adverse += side == "adverse" and declared.kind == "firmographic"
        if grade[i] == "D" and any(r.get("feature") == "tax_grade_latest" for r in reasons["positive"]):
            d_favourable += 1
        if reasons["positive"]:
            rows_with_positive += 1
            absence_top += reasons["positive"][0]["kind"] == "absence"
    graded_d = int((grade == "D").sum())
    print(f"  reasons: tax grade D favourable for {d_favourable} of {graded_d} D-graded (target 0); coverage flags "
          f"named {coverage_named} times (target 0); firmographic features named adverse {firm_adverse} times "
          f"(target 0); an absence is the strongest favourable reason in {absence_top / max(rows_with_positive, 1):.1%} "
          f"of {rows_with_positive:,} decisions with one")
    return {"tax_d_favourable": d_favourable, "coverage_named": coverage_named, "firmographic_adverse": firm_adverse,
            "absence_top_favourable": absence_top / max(rows_with_positive, 1)}


def _approval_table(groups, approved, limit, min_group: int):
    import pandas as pd

    from models.fairness import wilson

    rows = []
    for value, index in pd.Series(range(len(groups))).groupby(groups, sort=True):
        i = index.to_numpy()
        n, k = len(i), int(approved[i].sum())
        low, high = wilson(k, n)
        rows.append({"group": value, "n": n, "approval": k / n, "low": low, "high": high,
                     "mean_limit": float(limit[i][approved[i]].mean()) if k else 0.0})
    table = pd.DataFrame(rows)
    judged = table[table["n"] >= min_group]
    gap = float(judged["approval"].max() - judged["approval"].min()) if len(judged) > 1 else float("nan")
    return table, gap


def fair_lending_audit(bundle, profile, decisions, city: Path, min_group: int) -> dict:
    """Approval gaps by group, the model's against the true risk's at the same approval rate."""
    import numpy as np
    import pandas as pd

    from features.registry import category_name

    truth = pd.read_parquet(city / "ground_truth" / "entities.parquet").set_index("uscc")
    known = profile["uscc"].isin(truth.index).to_numpy()
    frame, model_approved = profile[known].reset_index(drop=True), decisions.decision[known] == "approve"
    true_pd = truth.loc[frame["uscc"], "true_pd_at_end"].to_numpy()
    k = int(model_approved.sum())
    truly_approved = np.zeros(len(frame), dtype=bool)
    truly_approved[np.argsort(true_pd, kind="stable")[:k]] = True
    # what the profile can know: the true PD learned from the model's own features (two folds, each
    # half scored by a booster fitted on the other), the same number approved
    knowable = knowable_pd(bundle, frame, true_pd)
    informed_approved = np.zeros(len(frame), dtype=bool)
    informed_approved[np.argsort(knowable, kind="stable")[:k]] = True
    withheld = decisions.stated.withheld[known].sum(axis=1)  # the firmographic share of each margin
    margin_gap = decisions.margin[known] - decisions.base_value[known]
    out = {}
    print(f"  fair lending on the whole population: {len(frame):,} enterprises, {model_approved.mean():.1%} approved "
          f"(groups of at least {min_group:,} judged)")
    for dimension in ("district_code", "industry_section", "entity_type"):
        groups = frame[dimension].astype("object").fillna("∅").to_numpy()
        table, gap = _approval_table(groups, model_approved, decisions.limit[known], min_group)
        _, true_gap = _approval_table(groups, truly_approved, decisions.limit[known], min_group)
        _, informed_gap = _approval_table(groups, informed_approved, decisions.limit[known], min_group)
        judged = table[table["n"] >= min_group].sort_values("approval")
        print(f"    {dimension}: largest gap {gap:.1%} against {true_gap:.1%} from the true risk at the same approval "
              f"rate ({(gap - true_gap) * 100:+.1f} points; target within 3) and {informed_gap:.1%} from the true risk "
              f"as the model's own features can know it ({(gap - informed_gap) * 100:+.1f} points)")
        out[f"{dimension}_informed_gap"] = informed_gap
        for _, row in pd.concat([judged.head(1), judged.tail(1)]).iterrows():
            chosen = groups == row["group"]
            print(f"      {category_name(dimension, row['group'])}: {row['n']:,} enterprises, approval "
                  f"{row['approval']:.1%} [{row['low']:.1%}, {row['high']:.1%}], mean limit ¥{row['mean_limit']:,.0f}; "
                  f"margin against the reference {margin_gap[chosen].mean():+.3f} of which firmographic "
                  f"{withheld[chosen].mean():+.3f}")
        out[f"{dimension}_gap"] = gap
        out[f"{dimension}_true_gap"] = true_gap
        out[f"{dimension}_excess_points"] = (gap - true_gap) * 100
    return out


def knowable_pd(bundle, frame, true_pd):
    """The generator's true PD as far as the model's features can tell it: a booster of the true PD
    (cross-entropy on the probability itself) on the bundle's features, each half of the
    enterprises scored by the booster fitted on the other half."""
    import lightgbm as lgb
    import numpy as np

    matrix = bundle.pd_model.matrix(frame)
    half = np.random.default_rng(0).random(len(frame)) < 0.5
    out = np.empty(len(frame))
    categorical = bundle.pd_model.encoder_.categorical_indices
    for fit, score in ((half, ~half), (~half, half)):
        data = lgb.Dataset(matrix[fit], true_pd[fit], categorical_feature=categorical, free_raw_data=True)
        booster = lgb.train({"objective": "cross_entropy", "learning_rate": 0.05, "num_leaves": 31,
                             "min_child_samples": 100, "verbose": -1, "seed": 0}, data, 400)
        out[score] = booster.predict(matrix[score])
    return out


def calibration_by_type(bundle, home: Path) -> dict:
    """Realised against predicted default per entity type and grade, out of time, where a cell holds
    at least 30 defaults: is the mean PD inside the Wilson interval of the realised rate?"""
    import numpy as np
    import pandas as pd

    from features.lake import Lake
    from models.dataset import label_loans
    from models.fairness import wilson
    from models.train import evaluate

    snapshots = pd.read_parquet(home / "snapshots" / "bench-training.parquet")
    frame = label_loans(snapshots, Lake(home))
    first, last = bundle.meta["split"]["oot"]
    month = frame["grant_date"].dt.to_period("M").astype(str)
    oot = frame[(month >= first) & (month <= last)].reset_index(drop=True)
    decided = evaluate(bundle, oot).decisions
    y = oot["defaulted"].to_numpy().astype(bool)
    kinds = oot["entity_type"].astype("object").to_numpy()
    judged = outside = 0
    for kind in sorted(set(kinds)):
        for grade in "ABCDE":
            chosen = (kinds == kind) & (decided.grade == grade)
            defaults = int(y[chosen].sum())
            if defaults < 30:
                continue
            low, high = wilson(defaults, int(chosen.sum()))
            predicted = float(decided.pd[chosen].mean())
            judged += 1
            miss = not low <= predicted <= high
            outside += miss
            print(f"    {kind} grade {grade}: {chosen.sum():,} loans, realised {defaults / chosen.sum():.2%} "
                  f"[{low:.2%}, {high:.2%}] against predicted {predicted:.2%}{'  OUTSIDE' if miss else ''}")
    print(f"  calibration within entity type (out of time, cells with >= 30 defaults): {outside} of {judged} outside")
    return {"type_cells_judged": judged, "type_cells_outside": outside}


def encouraged_audit(bundle, home: Path) -> dict:
    """Every enterprise doing each encouraged behaviour, at the record level."""
    import numpy as np

    from features.lake import Lake
    from features.profile.build import lake_view, load_records
    from features.profile.compute import build_partition
    from features.profile.encouraged import with_encouraged
    from features.profile.pointintime import day_number

    lake = Lake(home)
    view = lake_view(lake)
    records, day = load_records(lake, view=view), day_number(AS_OF)
    before = build_partition(records, day, None, view.delivered)
    now = bundle.decide(before, explain=False)
    rises = falls = 0
    for code in bundle.policy.encouraged:
        after = build_partition(with_encouraged(code, records, before["uscc"], day), day, None, view.delivered)
        then = bundle.decide(after, explain=False)
        up, down = int((then.pd > now.pd + 1e-12).sum()), int((then.limit < now.limit).sum())
        helped = int((then.pd < now.pd - 1e-12).sum())
        print(f"    {code}: PD rises for {up}, limit falls for {down}, PD falls for {helped:,} of {len(before):,}")
        rises, falls = rises + up, falls + down
    print(f"  encouraged behaviour at the record level: PD rises {rises} times, limit falls {falls} times (targets 0)")
    return {"encouraged_pd_rises": rises, "encouraged_limit_falls": falls}


def advice_audit(bundle, profile, decisions) -> dict:
    """What advice says to every enterprise, against what reaches the obstacle."""
    import numpy as np

    from features.registry import ACTIONS
    from models.advice import advise_all, applicable, apply

    counsel = advise_all(bundle, profile, decided=decisions)
    given = [c.advice for c in counsel if c.advice is not None]
    at_decline = sum(a.decision == "decline" for a in given)
    lifting = {a.code for a in ACTIONS if any(f in ("dishonest_listed_now", "penalty_serious_36m") for f, _ in a.sets)}
    knocked = [i for i in range(len(profile)) if decisions.knockouts[i]]
    blocking = advised = 0
    for i in knocked:
        row = profile.iloc[[i]]
        everything = [a for a in ACTIONS if applicable(a, row)[0]]
        rest = [a for a in everything if a.code not in lifting]
        if len(rest) == len(everything):
            continue
        best = bundle.decide(apply(everything, row, bundle), explain=False).decision[0]
        without = bundle.decide(apply(rest, row, bundle), explain=False).decision[0] if rest else decisions.decision[i]
        if SEVERITY[best] < SEVERITY[without] and best != "decline":
            blocking += 1
            advice = counsel[i].advice
            advised += advice is not None and bool({a.code for a in advice.actions} & lifting)
    thin = [i for i in range(len(profile)) if profile["has_tax_filings"].iloc[i] == 0 and decisions.decision[i] != "approve"]
    data = sum(counsel[i].advice is not None and "DA01" in counsel[i].advice.codes for i in thin)
    any_advice = sum(counsel[i].advice is not None for i in thin)
    # told what the tax returns would let the platform judge (the statement beside any advice)
    told = sum(counsel[i].data is not None and "tax_filings" in counsel[i].data.supplied for i in thin)
    still_declined = sum(counsel[i].data is not None and counsel[i].data.decision == "decline" for i in thin)
    print(f"  advice: {len(given):,} given; {at_decline} end at a decline (target 0); {advised} of {blocking} enterprises "
          f"whose knock-out blocks the best decision within reach are advised the action that lifts it (target all); "
          f"{len(thin):,} non-approved thin files: {data:,} advised to share their tax returns, {any_advice:,} any advice, "
          f"{told:,} told what their tax returns would let the platform judge (target all; {still_declined:,} of them "
          f"a decline even then)")
    return {"advice_at_decline": at_decline, "knockout_blocking": blocking, "knockout_advised": advised,
            "thin_files": len(thin), "thin_data_advice": data, "thin_any_advice": any_advice, "thin_told": told}


def one_city(seed: int, min_group: int) -> dict:
    import numpy as np

    from features.profile.store import ProfileStore

    bundle, home, store, _, _ = train_city(seed)
    city, _ = paths(seed)
    profile = ProfileStore(home).read(AS_OF)
    decisions = bundle.decide(profile)
    print(f"  {len(profile):,} enterprises as of {AS_OF}; model {bundle.version}, policy {bundle.policy.version}; "
          f"{len(bundle.features)} features, kept out: {', '.join(bundle.policy.not_in_model) or 'none'}")
    out = {}
    out.update(reasons_audit(bundle, profile, decisions))
    out.update(fair_lending_audit(bundle, profile, decisions, city, min_group))
    out.update(calibration_by_type(bundle, home))
    out.update(encouraged_audit(bundle, home))
    out.update(advice_audit(bundle, profile, decisions))
    shutil.rmtree(store, ignore_errors=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[9, 10, 11])
    parser.add_argument("--min-group", type=int, default=500, help="enterprises a group needs to be judged")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    print_medians([one_city(seed, args.min_group) for seed in args.seeds], args.seeds)


if __name__ == "__main__":
    main()
