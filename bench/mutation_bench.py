"""Benchmark: do the tests guard every promise? Mutation testing of the modules that keep them.

    python bench/mutation_bench.py --group policy
    python bench/mutation_bench.py --module models/gate.py --max-mutants 60
    python bench/mutation_bench.py --group audit --slow-tests --max-mutants 10 --budget-minutes 30
    python bench/mutation_bench.py --list

Never run in CI. The mutation tool is Cosmic Ray (``cosmic-ray``, pinned in the ``[bench]``
extra): it keeps each module's mutants in a SQLite session (``cosmic-ray init``), applies one
mutant at a time to the file on disk, runs a test command of our choosing (``cosmic-ray exec``)
and records killed / survived. The command is chosen per module here: the targeted subset of
``tests/`` in :data:`GROUPS`, so a mutant costs seconds, not the suite's ten minutes.

Everything happens in a throw-away copy of the repository (``git archive`` of ``--ref``, HEAD by
default, or with ``--working-tree`` the files as they are now, uncommitted edits included) under a
temporary folder: the working tree is never written. The bench checks it: the copy's modules are
the ones imported, and every mutated module's file in the working tree has the same bytes after
the run as before.

Each mutant's tests run in a fresh process. With ``--runner fork`` (the default) that process is
forked from a warm one that has already imported the third-party libraries the tests use (numpy,
pandas, pytest, ...; never the project's own modules, which each mutant imports anew from disk):
a mutant of models/policy.py cost 2.5-3 s instead of 12 s on the shared 2-core machine. ``--runner
plain`` runs ``python -m pytest`` per mutant, as Cosmic Ray would by default; on a sample of 14
policy mutants both gave the same verdict for every mutant.

Why Cosmic Ray and not mutmut 3: mutmut 3 mutates only inside functions (module-level tables such
as DECISION_SEVERITY or GATE_DEFAULTS are left alone), swaps every function for a trampoline in a
``mutants/`` copy, and picks tests itself from a run of the whole suite; Cosmic Ray mutates the
module as written and takes the test command we give it, per module.

Per module it prints: mutants generated, left out by the operator set, in annotations (never
evaluated under `from __future__ import annotations`, so neither killed nor survivors), accepted as equivalent
(``bench/mutation_equivalents.toml``: module + function + operator + the mutated line's text, so an
entry survives edits elsewhere in the file), run, killed, survived, timed out, errors, and the
share killed of those run; then every survivor as file:line, function, operator, the line before
and after, so that a person can write the test that kills it.

Tests that need the trained model, the service or PostgreSQL (minutes of fixtures per mutant) are
kept apart in each module's ``slow`` list and run only with ``--slow-tests``; use them with
``--max-mutants``. A module without fast tests is then named, not silently skipped.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import re
import shlex
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EQUIVALENTS = Path(__file__).resolve().parent / "mutation_equivalents.toml"
PROJECT_PACKAGES = ("features", "models", "api", "tests", "bench", "conftest")


@dataclass(frozen=True)
class Target:
    """One module to mutate and the tests that guard it."""

    module: str
    tests: tuple[str, ...]
    """The targeted subset: files or node ids that run in seconds per mutant (a minute for corrections)."""
    slow: tuple[str, ...] = ()
    """Tests that also guard it but need the trained model, the service or PostgreSQL (minutes per mutant)."""
    only: tuple[str, ...] = ()
    """Mutate only inside these functions (the part of a module that keeps the group's promise)."""
    deselect: str = ""
    """A pytest ``-k`` expression applied to the whole selection (e.g. leave out PostgreSQL)."""


# The targeted tests, read from tests/ (July 2026). A node id names a test function; a file runs whole.
def _without_fixtures(path: str, slow_fixtures: tuple[str, ...]) -> tuple[str, ...]:
    """The node ids of the test functions of ``path`` that take none of ``slow_fixtures`` (a
    service, a trained model): the file's fast tests, found again as tests are added."""
    if not (ROOT / path).exists():  # the warm runner's copy of this file, outside the repository: GROUPS unused
        return ()
    source = (ROOT / path).read_text("utf-8")
    found = re.finditer(r"^def (test_\w+)\(([^)]*)\)", source, re.M)
    return tuple(f"{path}::{name}" for name, arguments in (m.groups() for m in found)
                 if not set(re.findall(r"\w+", arguments)) & set(slow_fixtures))


TRUST_FAST = _without_fixtures("tests/api/test_trust.py", ("signing_service", "service", "model_home", "champion_store"))
"""The chain's, the keyring's, the checkpoints' and the receipts' tests on small SQLite files and
in memory: seconds, where the rest of tests/api/test_trust.py starts the signing service."""


MONITORING_FAST = (
    "tests/models/test_monitoring.py::test_the_psi_bands_start_at_their_thresholds",
    "tests/models/test_monitoring.py::test_a_larger_psi_is_never_in_a_milder_band",
    "tests/models/test_monitoring.py::test_the_two_proportion_p_value_is_the_normal_tail_of_the_pooled_z",
    "tests/models/test_monitoring.py::test_no_rows_on_a_side_has_no_p_value_and_no_variation_is_no_evidence_of_a_move",
    "tests/models/test_monitoring.py::test_the_p_value_is_a_probability_and_does_not_depend_on_which_side_is_before",
    "tests/models/test_monitoring.py::test_a_sparse_share_moves_band_only_when_beyond_chance_and_by_its_ratio",
    "tests/models/test_monitoring.py::test_drift_puts_the_score_first_then_the_features_worst_first_each_on_the_rows_it_rests_on",
    "tests/models/test_monitoring.py::test_a_mostly_zero_feature_is_judged_by_its_non_zero_share",
    "tests/models/test_monitoring.py::test_a_feature_exactly_at_the_sparse_share_is_sparse_and_missing_counts_as_zero",
    "tests/models/test_monitoring.py::test_a_comparison_on_fewer_than_min_rows_on_either_side_is_shown_but_not_judged",
    "tests/models/test_monitoring.py::test_centre_is_the_median_of_a_number_and_the_commonest_category",
    "tests/models/test_monitoring.py::test_missing_shares_are_reported_per_source_with_the_feature_that_moved_most_largest_move_first",
    "tests/models/test_monitoring.py::test_realised_default_per_grade_is_counted_with_its_interval_all_loans_last",
    "tests/models/test_monitoring.py::test_nothing_beyond_its_band_is_stable",
    "tests/models/test_monitoring.py::test_the_applicants_score_psi_decides_retrain_in_the_act_band_and_watch_in_the_watch_band",
    "tests/models/test_monitoring.py::test_a_silent_source_means_retrain_and_is_named",
    "tests/models/test_monitoring.py::test_a_missing_share_moved_20_points_means_retrain_10_points_watch_and_only_beyond_chance",
    "tests/models/test_monitoring.py::test_features_in_the_act_band_and_a_moved_population_are_watched_not_retrained",
    "tests/models/test_monitoring.py::test_realised_default_outside_the_band_means_retrain_for_all_loans_and_watch_for_one_grade",
    "tests/models/test_monitoring.py::test_each_missing_share_and_each_grade_is_judged_on_its_own",
    "tests/models/test_monitoring.py::test_every_rule_that_fired_is_named_retrain_rules_before_watch_rules",
    "tests/models/test_monitoring.py::test_a_source_silent_for_over_two_months_and_longer_than_its_longest_gap_has_gone_silent",
    "tests/models/test_monitoring.py::test_silence_is_judged_against_the_longest_gap_of_the_two_years_before_the_last_delivery",
    "tests/models/test_monitoring.py::test_monitor_sees_applicants_population_and_outcomes_only_as_known_on_its_day",
    "tests/models/test_monitoring.py::test_drift_by_district_names_each_district_with_its_rows_and_judges_only_thick_ones",
    "tests/models/test_monitoring.py::test_reason_frequencies_count_each_code_among_the_listed_decisions_with_its_words",
    "tests/models/test_monitoring.py::test_a_drift_table_reads_in_units_shares_and_counts",
    "tests/models/test_monitoring.py::test_a_median_reads_in_its_registry_unit",
    "tests/models/test_monitoring.py::test_a_sample_is_at_most_n_rows_the_same_ones_every_time",
    "tests/models/test_monitoring.py::test_the_drift_plot_shows_the_worst_psi_features_by_band_and_the_sparse_shares_before_beside_after",
    "tests/models/test_monitoring.py::test_the_realised_plot_puts_each_grade_predicted_beside_realised_with_its_interval",
    "tests/models/test_monitoring.py::test_worst_first_is_by_band_then_by_the_size_of_the_move_whichever_way_a_share_moved",
    "tests/models/test_monitoring.py::test_a_side_of_one_row_or_none_still_has_its_share_shown",
    "tests/models/test_monitoring.py::test_a_mostly_missing_category_is_judged_by_psi_with_missing_as_its_own_bin",
    "tests/models/test_monitoring.py::test_the_longest_gap_counts_deliveries_strictly_within_two_years_of_the_last",
    "tests/models/test_monitoring.py::test_a_population_compared_with_itself_has_not_moved",
    "tests/models/test_monitoring.py::test_each_realised_rate_lies_inside_its_interval_and_the_grades_add_up_to_all",
    "tests/models/test_monitoring.py::test_the_living_population_of_a_day_is_its_stored_profile_or_nothing_when_the_lake_cannot_build_it",
    "tests/models/test_monitoring.py::test_a_measure_refuses_a_frame_it_cannot_measure_and_says_what_it_lacks",
)
"""Monitoring's fast tests: hand-built frames, a stand-in bundle and a small lake."""


GROUPS: dict[str, tuple[str, tuple[Target, ...]]] = {
    "pointintime": ("point-in-time and repair", (
        Target("features/profile/pointintime.py",
               tests=("tests/features/test_profile_families.py",
                      "tests/features/test_profile_build.py::test_records_dated_after_as_of_never_change_a_profile",
                      "tests/features/test_profile_build.py::test_a_repaired_record_counts_before_its_repair_date_and_never_from_it",
                      "tests/features/test_profile_build.py::test_an_incremental_build_gives_what_the_full_build_gives",
                      "tests/features/test_point_in_time.py::test_the_profile_reads_every_source_the_registry_names",
                      "tests/features/test_point_in_time.py::test_a_profile_as_of_d_is_the_same_whatever_the_lake_holds_after_d",
                      "tests/features/test_point_in_time.py::test_a_record_counts_from_the_day_it_has_both_happened_and_been_known_and_not_a_day_before",
                      "tests/features/test_point_in_time.py::test_a_request_with_nothing_to_see_sees_nothing",
                      "tests/features/test_point_in_time.py::test_a_source_with_nothing_known_yet_has_an_empty_delivery_calendar_and_no_repairs",
                      "tests/features/test_point_in_time.py::test_a_monthly_source_is_silent_exactly_until_its_anchor_month_is_known",
                      "tests/features/test_point_in_time.py::test_a_measured_number_left_blank_is_unknown_never_zero",
                      "tests/features/test_point_in_time.py::test_an_amount_left_blank_counts_as_none_never_as_a_negative_one",
                      "tests/features/test_point_in_time.py::test_a_record_whose_versions_name_two_enterprises_is_copied_to_both_and_no_other_record_moves",
                      "tests/features/test_registry.py::test_the_anchor_month_is_delivered_by_as_of_and_at_most_two_months_back",
                      "tests/models/test_policy.py::test_a_repaired_record_changes_nothing_in_a_decision"),
               slow=("tests/features/test_point_in_time.py", "tests/features/test_profile_build.py")),
        # every corrections test builds the profile city's lake (profile_home): about a minute a mutant
        Target("features/corrections.py", tests=("tests/features/test_corrections.py",),
               slow=("tests/api/test_objections.py",)),
        # the repair part of the build: what a repair notice or a correction marks changed, and the rebuild of it
        Target("features/profile/build.py",
               tests=("tests/features/test_profile_build.py::test_a_repair_notice_marks_its_enterprise_and_changed_rebuilds_it_as_a_full_build_would",
                      "tests/features/test_profile_build.py::test_a_record_moved_to_another_enterprise_counts_once_for_the_right_one_everywhere",
                      "tests/features/test_profile_build.py::test_a_new_run_marks_exactly_the_enterprises_whose_profile_as_of_d_it_can_change",
                      "tests/features/test_corrections.py::test_correction_repair_and_removal_reach_the_profile_as_a_full_build_would",
                      # the as-of day itself: a record known, or repaired, on it
                      "tests/features/test_profile_build.py::test_changed_rebuilds_at_the_repair_date_and_not_the_day_before_exactly_as_a_full_build",
                      "tests/features/test_profile_build.py::test_a_month_that_moves_what_is_known_by_d_marks_every_enterprise_and_a_late_old_bill_only_its_own",
                      "tests/features/test_profile_build.py::test_a_late_monthly_delivery_reported_before_as_of_reaches_every_profile_through_changed"),
               only=("unseen_runs", "changed_enterprises", "rebuild_changed")),
    )),
    "decide": ("decide and authorisation", (
        Target("api/precredit/decide.py",
               tests=("tests/api/test_decide.py", "tests/api/test_authorisations.py",
                      "tests/api/test_service.py::test_authorisations_are_valid_by_the_calendar_day_in_china",
                      "tests/api/test_service.py::test_the_hash_does_not_depend_on_a_negative_zero",
                      "tests/api/test_objections.py::test_a_knock_out_is_relieved_only_when_every_record_behind_it_is_disputed"),
               slow=("tests/api/test_service.py", "tests/api/test_objections.py")),
        # where authorisations are stored, revoked and read back with their profiles for a decision
        Target("api/precredit/repository.py", tests=("tests/api/test_authorisations.py", "tests/api/test_decide.py"),
               slow=("tests/api/test_service.py::test_every_way_an_authorisation_fails_has_its_own_code",
                     "tests/api/test_service.py::test_revoking_stops_the_next_question",
                     "tests/api/test_service.py::test_the_auth_matrix_role_by_endpoint",
                     "tests/api/test_service.py::test_a_bank_never_sees_another_banks_decision",
                     "tests/api/test_cli_service.py"),
               only=("add_authorization", "revoke_authorization", "list_authorizations",
                     "authorizations_with_profiles"),
               deselect="not postgresql"),
    )),
    "audit": ("audit and signing", (
        Target("api/trust/audit.py",
               tests=("tests/api/test_appender.py", *TRUST_FAST),
               slow=("tests/api/test_trust.py", "tests/api/test_service.py::test_the_audit_chain_holds_and_names_the_first_tampered_row",
                     "tests/api/test_objections.py::test_a_rewritten_event_is_found"),
               deselect="not postgres"),
        Target("api/trust/signing.py",
               tests=(*TRUST_FAST,
                      "tests/api/test_appender.py::test_an_idle_writer_signs_its_checkpoint_within_its_seconds_and_closing_signs_the_last"),
               slow=("tests/api/test_trust.py",), deselect="not postgres"),
        Target("api/trust/appender.py", tests=("tests/api/test_appender.py",), deselect="not postgres"),
    )),
    "policy": ("policy and knock-outs", (
        Target("models/policy.py",
               tests=("tests/models/test_policy.py",
                      "tests/features/test_registry.py::test_the_policy_constrains_the_model_the_way_the_meaning_says_or_against_an_encouraged_behaviour",
                      "tests/api/test_objections.py::test_a_knock_out_is_relieved_only_when_every_record_behind_it_is_disputed"),
               slow=("tests/models/test_advice.py", "tests/api/test_service.py")),
    )),
    "advice": ("advice", (
        # the fast ones decide on a hand-built scorer (a PD written out, the shipped policy): milliseconds a row
        Target("models/advice.py",
               tests=("tests/models/test_advice.py::test_what_an_enterprise_cannot_change_is_never_advised",
                      "tests/models/test_advice.py::test_an_enterprise_graded_a_and_approved_is_told_there_is_nothing_to_improve",
                      "tests/models/test_advice.py::test_a_weaker_enterprise_whose_record_shows_nothing_to_fix_is_told_so_not_advised",
                      "tests/models/test_advice.py::test_the_advice_reaches_the_best_decision_within_reach_before_it_counts_actions",
                      "tests/models/test_advice.py::test_of_sets_reaching_the_same_decision_the_fewest_actions_then_the_lowest_pd_is_advised",
                      "tests/models/test_advice.py::test_a_set_that_only_raises_the_grade_is_advised_where_the_decision_cannot_improve",
                      "tests/models/test_advice.py::test_a_decline_is_never_advice_and_the_knock_out_that_stands_is_named",
                      "tests/models/test_advice.py::test_lifting_the_knock_out_that_blocks_the_decision_is_advised_and_named",
                      "tests/models/test_advice.py::test_a_refer_is_advice_where_a_decline_cannot_be_lifted_further",
                      "tests/models/test_advice.py::test_advice_says_what_each_action_changes_and_the_law_it_rests_on",
                      "tests/models/test_advice.py::test_a_year_of_paying_in_full_is_advised_with_paying_what_is_owed_now",
                      "tests/models/test_advice.py::test_no_advice_has_more_actions_than_asked_for",
                      "tests/models/test_advice.py::test_every_set_of_allowed_actions_is_weighed_after_one_reached_twice",
                      "tests/models/test_advice.py::test_of_attempts_equally_far_from_any_improvement_the_fewest_actions_are_named",
                      "tests/models/test_advice.py::test_the_promised_limit_is_capped_at_the_amount_requested",
                      "tests/models/test_advice.py::test_decisions_already_made_are_not_made_again_and_give_the_same_advice",
                      "tests/models/test_advice.py::test_a_handful_of_rows_is_scored_on_one_thread_and_a_batch_on_all",
                      "tests/models/test_advice.py::test_advice_starts_from_the_decision_as_made_under_a_disputed_listing",
                      "tests/models/test_advice.py::test_advice_names_each_enterprise_by_its_code_in_the_order_asked",
                      "tests/models/test_advice.py::test_a_thin_file_is_advised_to_share_its_records_and_told_the_figures_are_typical",
                      "tests/models/test_advice.py::test_a_thin_file_is_told_what_its_records_would_let_the_platform_judge_even_when_that_declines",
                      "tests/models/test_advice.py::test_sharing_is_not_advised_where_the_model_holds_no_typical_record_or_the_profile_cannot_tell",
                      "tests/models/test_advice.py::test_shared_records_take_the_typical_values_of_the_enterprise_kind_and_keep_what_is_known",
                      "tests/models/test_advice.py::test_a_shared_record_that_is_a_category_takes_the_typical_holders_too",
                      "tests/models/test_advice.py::test_an_action_applies_only_where_the_record_shows_what_it_fixes",
                      "tests/models/test_advice.py::test_applying_an_action_changes_only_the_rows_it_applies_to_and_counts_never_fall_below_zero",
                      "tests/models/test_advice.py::test_every_advice_is_lawful_true_when_rescored_better_and_never_a_decline"),
               slow=("tests/models/test_advice.py",)),
    )),
    "monitoring": ("monitoring and the gate", (
        # fast: hand-built frames, a stand-in bundle and a small lake; the slow ones read the trained model
        # the package's modules: measures over frames, the verdict, the lake reading (plots are read, not promised)
        *(Target(f"models/monitoring/{part}.py", tests=MONITORING_FAST, slow=("tests/models/test_monitoring.py",))
          for part in ("measures", "verdict", "lake")),
        Target("models/gate.py",
               tests=("tests/models/test_gate.py::test_a_challenger_with_the_champions_bundle_id_is_refused_without_being_judged",
                      "tests/models/test_gate.py::test_the_first_model_is_judged_on_its_own_rules_alone",
                      "tests/models/test_gate.py::test_a_challenger_that_ranks_as_well_and_changes_no_decision_passes_every_check_in_order",
                      "tests/models/test_gate.py::test_a_comparison_window_inside_the_champions_fitted_months_is_refused_and_the_months_named",
                      "tests/models/test_gate.py::test_the_challenger_is_held_to_the_policys_directions_not_to_its_own",
                      "tests/models/test_gate.py::test_the_verdict_holds_only_when_every_check_holds_and_says_which_failed",
                      "tests/models/test_gate.py::test_business_impact_counts_the_same_applicants_under_both_models",
                      "tests/models/test_gate.py::test_an_approval_rate_change_exactly_at_its_tolerance_passes_and_beyond_it_is_refused_either_way",
                      "tests/models/test_gate.py::test_a_mean_limit_change_is_judged_relative_to_the_champions_limit",
                      "tests/models/test_gate.py::test_the_grade_mix_shift_is_the_share_of_applicants_that_would_change_grade",
                      "tests/models/test_gate.py::test_a_challenger_within_every_own_limit_passes_each_own_check",
                      "tests/models/test_gate.py::test_a_psi_exactly_at_its_limit_is_refused_but_an_ece_exactly_at_its_limit_passes",
                      "tests/models/test_gate.py::test_a_challenger_no_better_than_the_scorecard_is_refused",
                      "tests/models/test_gate.py::test_a_broken_constraint_is_refused_and_named",
                      "tests/models/test_gate.py::test_what_training_did_not_measure_is_not_judged_and_a_nameless_worst_feature_is_any_feature",
                      "tests/models/test_gate.py::test_the_auc_drop_is_refused_only_when_its_whole_interval_lies_beyond_the_tolerance",
                      "tests/models/test_gate.py::test_a_drop_whose_interval_ends_at_the_tolerance_does_not_warn_of_a_larger_one",
                      "tests/models/test_gate.py::test_paired_differences_report_both_models_the_loans_and_a_bootstrap_p_value_no_smaller_than_its_rounds",
                      "tests/models/test_gate.py::test_fitted_months_are_the_windows_a_bundle_learned_from_and_nothing_else",
                      "tests/models/test_gate.py::test_the_monotone_sweep_reads_a_fixed_sample_of_at_most_300_comparison_loans",
                      "tests/models/test_gate.py::test_by_default_the_paired_differences_are_95_percent_intervals_on_500_rounds",
                      "tests/models/test_gate.py::test_an_ece_without_its_loan_count_says_zero_loans",
                      "tests/models/test_gate.py::test_noise_on_a_thin_window_does_not_refuse_a_challenger",
                      "tests/models/test_gate.py::test_a_real_drop_on_a_thick_window_is_refused",
                      "tests/models/test_gate.py::test_the_paired_auc_interval_holds_the_point_and_shrinks_to_nothing_for_the_same_model",
                      "tests/models/test_gate.py::test_overlap_names_the_months_the_champion_learned_from",
                      "tests/models/test_stages.py::test_the_gate_refuses_a_model_that_breaks_a_declared_direction",
                      "tests/models/test_stages.py::test_the_gate_refuses_unstable_features_and_a_model_no_better_than_a_scorecard"),
               slow=("tests/models/test_gate.py",)),
    )),
}

# The "core" operator set leaves out Cosmic Ray's replacements that say nothing a test should:
# arithmetic turned into bit shifts or bitwise operators (a TypeError on floats, killed by any
# test that runs the line), the reverse (on numpy's boolean masks `a | b` -> `a + b` is the same
# mask), and an ordering or equality turned into an identity test (`x < 1` -> `x is 1`).
ARITHMETIC = ("Add", "Sub", "Mul", "Div", "FloorDiv", "Mod", "Pow", "MatMult")
BITWISE = ("BitAnd", "BitOr", "BitXor")
SHIFTS = ("LShift", "RShift")


def left_out(operator: str, operators: str) -> bool:
    """Whether the operator set leaves a mutation operator out."""
    if operators == "all":
        return False
    name = operator.split("/")[-1]
    binary = re.fullmatch(r"ReplaceBinaryOperator_(\w+?)_(\w+)", name)
    if binary:
        source, target = binary.groups()
        if target in SHIFTS or source in SHIFTS:
            return True
        return (source in ARITHMETIC) != (target in ARITHMETIC)
    comparison = re.fullmatch(r"ReplaceComparisonOperator_(\w+?)_(\w+)", name)
    if comparison:
        source, target = comparison.groups()
        identity = ("Is", "IsNot", "In", "NotIn")
        return (source in identity) != (target in identity)
    return False


# ------------------------------------------------------------------ the copy


def make_copy(dest: Path, ref: str, working_tree: bool) -> str:
    """The repository's files in ``dest``: ``ref`` committed, or the working tree as it is now."""
    if working_tree:
        listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                                cwd=ROOT, check=True, capture_output=True).stdout.decode().split("\0")
        for name in filter(None, listed):
            source = ROOT / name
            if source.is_file():
                (dest / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, dest / name)
        return "working tree (uncommitted edits included)"
    commit = subprocess.run(["git", "rev-parse", "--short", ref], cwd=ROOT, check=True, capture_output=True,
                            text=True).stdout.strip()
    archive = subprocess.Popen(["git", "archive", "--format=tar", commit], cwd=ROOT, stdout=subprocess.PIPE)
    subprocess.run(["tar", "-x", "-C", str(dest)], stdin=archive.stdout, check=True)
    if archive.wait() != 0:
        raise SystemExit(f"git archive {commit} failed")
    return f"commit {commit}"


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else "absent"


def child_env(copy: Path) -> dict:
    env = dict(os.environ)
    # the copy's packages before the editable install's finder (which points at the working tree)
    env["PYTHONPATH"] = str(copy) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.pop("PYTEST_ADDOPTS", None)
    return env


def in_copy(copy: Path, test: str) -> bool:
    """Whether a test file, or a test function of one, is in the copy."""
    path, _, name = test.partition("::")
    if not (copy / path).is_file():
        return False
    return not name or re.search(rf"^(async )?def {re.escape(name.split('[')[0])}\(", (copy / path).read_text("utf-8"),
                                 re.MULTILINE) is not None


def pytest_args(target: Target, tests: list[str]) -> list[str]:
    # one process per mutant (-n 0): the suite's own two workers would only add their start-up
    args = ["-x", "-q", "-p", "no:cacheprovider", "-n", "0", "--no-header", "-W",
            "ignore::pytest.PytestAssertRewriteWarning"]
    if target.deselect:
        args += ["-k", target.deselect]
    return args + tests


# ------------------------------------------------------------------ the warm runner (--runner fork)

SERVER_PRELOAD = """
import json, sys
import pytest
rc = pytest.main(sys.argv[2:])
project = tuple(sys.argv[1].split(","))
names = [n for n, m in list(sys.modules.items())
         if n != "__main__" and n.split(".")[0] not in project and not n.startswith("tests")
         and not (getattr(m, "__file__", None) or "").startswith(%r)]
print("\\n@@MODULES@@" + json.dumps(names))
sys.exit(rc)
"""


def serve(sock_path: str, copy: str, preload: list[str]) -> None:
    """The warm process: import the third-party modules once, then fork a fresh pytest per request.

    The project's modules are never imported here, so each child reads the mutated file from disk."""
    os.chdir(copy)
    sys.path.insert(0, copy)
    sys.dont_write_bytecode = True
    import importlib

    for name in preload:
        try:
            importlib.import_module(name)
        except BaseException:  # noqa: BLE001, S110 - a module that will not import alone is simply not warm
            pass
    leaked = [n for n, m in sys.modules.items() if (getattr(m, "__file__", None) or "").startswith(copy)
              or n.split(".")[0] in PROJECT_PACKAGES]
    for name in leaked:  # a project module imported by a third-party one: drop it, the child imports it anew
        del sys.modules[name]
    running: list[int] = []  # the child now testing a mutant: ended with the server, whatever ends it

    def end(signum, frame):
        for pid in running:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        os._exit(0)

    signal.signal(signal.SIGTERM, end)
    signal.signal(signal.SIGINT, end)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(sock_path)
    server.listen(4)
    print(f"ready {len(preload)} modules preloaded, {len(leaked)} project modules dropped", flush=True)
    import select

    parent = os.getppid()
    server.settimeout(5)
    while True:
        try:
            connection, _ = server.accept()
        except TimeoutError:
            if os.getppid() != parent:  # the bench is gone (killed): so is its warm process
                end(None, None)
            continue
        connection.settimeout(None)
        request = json.loads(connection.makefile().readline())
        if request.get("stop"):
            return
        output = request["output"]
        pid = os.fork()
        if pid == 0:  # the child: a fresh session, its output to a file, pytest once, never return
            try:
                server.close()
                connection.close()
                os.setsid()
                fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                os.dup2(fd, 1)
                os.dup2(fd, 2)
                null = os.open(os.devnull, os.O_RDONLY)
                os.dup2(null, 0)
                import pytest

                code = int(pytest.main(request["argv"]))
            except BaseException:  # noqa: BLE001
                import traceback

                traceback.print_exc()
                code = 3
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
        running[:] = [pid]
        code = None
        while code is None:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                code = os.waitstatus_to_exitcode(status)
                break
            readable, _, _ = select.select([connection], [], [], 0.05)
            if readable and not connection.recv(1):  # the client is gone: Cosmic Ray's timeout killed it
                try:
                    os.killpg(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                os.waitpid(pid, 0)
                code = -9
        running.clear()
        try:
            connection.sendall((json.dumps({"code": code}) + "\n").encode())
        except OSError:
            pass
        connection.close()


def client(sock_path: str, argv: list[str]) -> int:
    """The test command Cosmic Ray runs per mutant: ask the warm process for one pytest run."""
    output = tempfile.mktemp(prefix="mutant-", suffix=".out", dir=os.path.dirname(sock_path))
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    connection.connect(sock_path)
    connection.sendall((json.dumps({"argv": argv, "output": output}) + "\n").encode())
    answer = json.loads(connection.makefile().readline())
    try:
        sys.stdout.write(Path(output).read_text(errors="replace")[-20_000:])
        os.unlink(output)
    except OSError:
        pass
    return answer["code"]


class Runner:
    """Runs a module's tests in the copy, the same way the mutants' runs will."""

    def __init__(self, kind: str, copy: Path, work: Path, test_args: list[str]):
        self.kind, self.copy, self.work = kind, copy, work
        self.server = None
        self.plain_baseline = None
        self.sock = str(work / "warm.sock")
        self.script = str(work / "mutation_bench.py")  # the run's own copy: an edit of the bench mid-run changes nothing
        if kind == "fork":
            self._start(test_args)

    def _start(self, tests: list[str]) -> None:
        # learn what the tests import by running them once, unmutated, as a plain pytest would
        if os.path.exists(self.sock):
            os.unlink(self.sock)
        started = time.perf_counter()
        probe = subprocess.run([sys.executable, "-c", SERVER_PRELOAD % str(self.copy), ",".join(PROJECT_PACKAGES),
                                *tests], cwd=self.copy, env=child_env(self.copy), capture_output=True, text=True,
                               check=False)
        marker = probe.stdout.rfind("@@MODULES@@")
        if marker < 0:
            raise SystemExit(f"could not run the tests:\n{probe.stdout[-3000:]}\n{probe.stderr[-3000:]}")
        preload = json.loads(probe.stdout[marker + len("@@MODULES@@"):])
        self.plain_baseline = (probe.returncode, time.perf_counter() - started)
        self.server = subprocess.Popen([sys.executable, self.script, "--serve", self.sock, "--copy", str(self.copy)],
                                       cwd=self.copy, env=child_env(self.copy), stdin=subprocess.PIPE,
                                       stdout=subprocess.PIPE, text=True, start_new_session=True)
        self.server.stdin.write(json.dumps(preload))
        self.server.stdin.close()
        line = self.server.stdout.readline().strip()
        if not line.startswith("ready"):
            raise SystemExit(f"the warm runner did not start: {line}")
        print(f"  warm runner: {line} ({time.perf_counter() - started:.0f} s)")

    def command(self, args: list[str]) -> str:
        if self.kind == "fork":
            return shlex.join([sys.executable, self.script, "--client", self.sock, "--", *args])
        return shlex.join([sys.executable, "-m", "pytest", *args])

    def run(self, args: list[str], timeout: float | None = None) -> tuple[int, str, float]:
        started = time.perf_counter()
        done = subprocess.run(shlex.split(self.command(args)), cwd=self.copy, env=child_env(self.copy),
                              capture_output=True, text=True, timeout=timeout, check=False)
        return done.returncode, done.stdout + done.stderr, time.perf_counter() - started

    def stop(self) -> None:
        """End the warm process and any mutant's tests it is still running (a stopped run leaves one)."""
        if self.server is not None and self.server.poll() is None:
            self.server.terminate()
            try:
                self.server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.server.pid, signal.SIGKILL)
                self.server.wait()


# ------------------------------------------------------------------ equivalents


def normalised(text: str) -> str:
    return " ".join(text.split())


@dataclass
class Equivalent:
    module: str
    operator: str
    line: str
    reason: str
    mutated: str = ""
    function: str = ""
    used: int = 0


def read_equivalents(path: Path) -> list[Equivalent]:
    if not path.exists():
        return []
    raw = tomllib.loads(path.read_text("utf-8"))
    out = []
    for i, item in enumerate(raw.get("equivalent", [])):
        missing = [k for k in ("module", "operator", "line", "reason") if not str(item.get(k, "")).strip()]
        if missing:
            raise SystemExit(f"{path}: entry {i + 1} lacks {missing}: every accepted equivalent says why")
        out.append(Equivalent(item["module"], item["operator"], normalised(item["line"]), item["reason"],
                              normalised(item.get("mutated", "")), item.get("function", "")))
    return out


# ------------------------------------------------------------------ one module


@dataclass
class Outcome:
    module: str
    generated: int = 0
    left_out: int = 0
    annotations: int = 0
    equivalent: int = 0
    sampled_out: int = 0
    not_run: int = 0
    killed: int = 0
    survived: int = 0
    timed_out: int = 0
    errors: int = 0
    equivalent_killed: list = field(default_factory=list)
    equivalent_survived: int = 0
    failures: list = field(default_factory=list)
    survivors: list = field(default_factory=list)
    seconds: float = 0.0
    baseline_seconds: float = 0.0
    tests: list = field(default_factory=list)

    @property
    def run(self) -> int:
        return self.killed + self.survived + self.timed_out + self.errors

    @property
    def non_equivalent(self) -> int:
        return self.run


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return float("nan"), float("nan")
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def mutated_line(copy: Path, spec) -> str:
    """The text of the mutated line (first changed line) for one mutation spec."""
    import cosmic_ray.plugins
    from cosmic_ray.mutating import mutate_code

    source = (copy / spec.module_path).read_text("utf-8")
    operator = cosmic_ray.plugins.get_operator(spec.operator_name)(**(spec.operator_args or {}))
    mutated = mutate_code(source, operator, spec.occurrence)
    if mutated is None:
        return ""
    row = spec.start_pos[0] - 1
    new_lines = mutated.splitlines()
    return new_lines[row] if row < len(new_lines) else ""


def diff_lines(diff: str) -> tuple[str, str]:
    minus = [line[1:] for line in diff.splitlines() if line.startswith("-") and not line.startswith("---")]
    plus = [line[1:] for line in diff.splitlines() if line.startswith("+") and not line.startswith("+++")]
    return " / ".join(normalised(m) for m in minus), " / ".join(normalised(p) for p in plus)


def run_module(target: Target, tests: list[str], copy: Path, work: Path, args,
               equivalents: list[Equivalent]) -> Outcome | None:
    outcome = Outcome(target.module, tests=tests)
    present = [t for t in tests if in_copy(copy, t)]
    for gone in [t for t in tests if t not in present]:
        print(f"  ! not in the copy (edited away, or not yet committed: try --working-tree), left out: {gone}")
    if not present:
        print("  no test of this module is in the copy")
        return None
    test_args = pytest_args(target, present)
    runner = Runner(args.runner, copy, work, test_args)
    try:
        return _run_module(target, copy, work, runner, args, equivalents, outcome, test_args)
    finally:
        runner.stop()


def function_rows(source: str, names: tuple[str, ...]) -> set[int]:
    """The line numbers inside the named functions (at any depth)."""
    import ast

    rows: set[int] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in names:
            rows.update(range(node.lineno, node.end_lineno + 1))
    return rows


def annotation_spans(source: str) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """Where the module's annotations are ((line, column) from, to), when the module never
    evaluates them (``from __future__ import annotations``): a mutant there changes nothing that
    runs, so it is neither killed nor a survivor."""
    import ast

    tree = ast.parse(source)
    postponed = any(isinstance(node, ast.ImportFrom) and node.module == "__future__"
                    and any(alias.name == "annotations" for alias in node.names) for node in tree.body)
    if not postponed:
        return []
    spans = []
    for node in ast.walk(tree):
        found = []
        if isinstance(node, ast.arg) and node.annotation is not None:
            found.append(node.annotation)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.returns is not None:
            found.append(node.returns)
        elif isinstance(node, ast.AnnAssign):
            found.append(node.annotation)
        spans += [((a.lineno, a.col_offset), (a.end_lineno, a.end_col_offset)) for a in found]
    return spans


def _run_module(target: Target, copy: Path, work: Path, runner: Runner, args, equivalents: list[Equivalent],
                outcome: Outcome, test_args: list[str]) -> Outcome | None:
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import TestOutcome, WorkerOutcome, WorkResult

    if runner.plain_baseline:
        print(f"  warm runner's probe (plain pytest, unmutated): exit {runner.plain_baseline[0]} "
              f"in {runner.plain_baseline[1]:.1f} s")
    # the unmutated module must pass its tests, and its run sets the timeout
    code, output, seconds = runner.run(test_args, timeout=args.baseline_timeout)
    outcome.baseline_seconds = seconds
    if code != 0:
        print(f"  the unmutated tests fail (exit {code}); no mutant can be judged:\n{output[-3000:]}")
        return None
    timeout = max(args.min_timeout, args.timeout_factor * seconds)
    print(f"  unmutated tests pass in {seconds:.1f} s; a mutant's run is stopped after {timeout:.0f} s")

    session = work / (target.module.replace("/", "__") + ".sqlite")
    config = work / (target.module.replace("/", "__") + ".toml")
    config.write_text(
        "[cosmic-ray]\n"
        f"module-path = {json.dumps(target.module)}\n"
        f"timeout = {timeout:.1f}\n"
        "excluded-modules = []\n"
        f"test-command = {json.dumps(runner.command(test_args))}\n\n"
        "[cosmic-ray.distributor]\nname = \"local\"\n", "utf-8")
    subprocess.run([str(Path(sys.executable).parent / "cosmic-ray"), "init", str(config), str(session)],
                   cwd=copy, env=child_env(copy), check=True)

    source = (copy / target.module).read_text("utf-8")
    lines = source.splitlines()
    inside = function_rows(source, target.only) if target.only else None
    annotations = annotation_spans(source)
    skip: dict[str, str] = {}  # job id -> why it is not run
    equivalent_jobs: dict[str, Equivalent] = {}
    with use_db(str(session), WorkDB.Mode.open) as db:
        items = list(db.work_items)
        outcome.generated = len(items)
        for item in items:
            spec = item.mutations[0]
            if inside is not None and spec.start_pos[0] not in inside:
                skip[item.job_id] = "outside"
                continue
            if left_out(spec.operator_name, args.operators):
                skip[item.job_id] = "left out"
                continue
            if any(start <= tuple(spec.start_pos) < end for start, end in annotations):
                skip[item.job_id] = "annotation"
                continue
            line = normalised(lines[spec.start_pos[0] - 1]) if spec.start_pos[0] <= len(lines) else ""
            for entry in equivalents:
                if (entry.module == target.module and entry.operator == spec.operator_name and entry.line == line
                        and (not entry.function or entry.function == spec.definition_name)
                        and (not entry.mutated or entry.mutated == normalised(mutated_line(copy, spec)))):
                    entry.used += 1
                    equivalent_jobs[item.job_id] = entry
                    break
        outside = sum(1 for why in skip.values() if why == "outside")
        outcome.generated -= outside  # mutants outside the part of the module this group keeps are not counted
        outcome.left_out = sum(1 for why in skip.values() if why == "left out")
        outcome.annotations = sum(1 for why in skip.values() if why == "annotation")
        outcome.equivalent = len(equivalent_jobs)
        if args.only_equivalents:  # check the list: run the accepted equivalents alone; each must survive
            for item in items:
                if item.job_id not in equivalent_jobs and item.job_id not in skip:
                    skip[item.job_id] = "not an accepted equivalent"
        elif not args.recheck_equivalents:
            for job in equivalent_jobs:
                skip[job] = "equivalent"
        # drawn by what a mutant is (operator, occurrence), not its job id: the same seed draws the same mutants
        key = {item.job_id: (item.mutations[0].operator_name, item.mutations[0].occurrence) for item in items}
        candidates = sorted((item.job_id for item in items if item.job_id not in skip), key=key.__getitem__)
        if args.max_mutants is not None and len(candidates) > args.max_mutants:
            chosen = set(random.Random(args.seed).sample(candidates, args.max_mutants))
            for job in candidates:
                if job not in chosen:
                    skip[job] = "sampled out"
            outcome.sampled_out = len(candidates) - args.max_mutants
        if skip:
            db.set_multiple_results(list(skip), WorkResult(worker_outcome=WorkerOutcome.SKIPPED))
        to_run = len(items) - len(skip)
    print(f"  {outcome.generated} mutants; {outcome.left_out} left out by the operator set; {outcome.annotations} in "
          f"annotations never evaluated; {outcome.equivalent} "
          f"accepted as equivalent; {outcome.sampled_out} sampled out; {to_run} to run")

    started = time.perf_counter()
    budget = args.budget_minutes * 60 if args.budget_minutes else None
    executing = subprocess.Popen([str(Path(sys.executable).parent / "cosmic-ray"), "exec", str(config), str(session)],
                                 cwd=copy, env=child_env(copy), start_new_session=True,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    pristine = (copy / target.module).read_bytes()
    last = 0.0
    while executing.poll() is None:
        time.sleep(2)
        elapsed = time.perf_counter() - started
        if budget and elapsed > budget:
            print(f"  budget of {args.budget_minutes} min spent: stopping; the mutants not run are counted as not run")
            os.killpg(executing.pid, signal.SIGINT)
            try:
                executing.wait(timeout=timeout + 30)
            except subprocess.TimeoutExpired:
                os.killpg(executing.pid, signal.SIGKILL)
                executing.wait()
            break
        if elapsed - last >= args.progress_seconds:
            last = elapsed
            with sqlite3.connect(session) as raw:
                done = raw.execute("select count(*) from work_results").fetchone()[0] - len(skip)
            rate = elapsed / done if done else float("nan")
            print(f"    {done}/{to_run} mutants in {elapsed / 60:.1f} min ({rate:.1f} s each)", flush=True)
    if executing.returncode not in (0, None, -signal.SIGINT) and not budget:
        print(f"  cosmic-ray exec ended with {executing.returncode}: {executing.stderr.read()[-2000:]}")
    (copy / target.module).write_bytes(pristine)  # a stopped run may leave its mutant on the copy's disk
    outcome.seconds = time.perf_counter() - started

    with use_db(str(session), WorkDB.Mode.open) as db:
        done = {item.job_id: (item, result) for item, result in db.completed_work_items}
        for item in db.work_items:
            if item.job_id in skip:
                continue
            if item.job_id not in done:
                outcome.not_run += 1
                continue
            spec = item.mutations[0]
            _, result = done[item.job_id]
            if item.job_id in equivalent_jobs:  # --recheck-equivalents: an accepted one that is killed is wrong
                if result.test_outcome != TestOutcome.SURVIVED:
                    outcome.equivalent_killed.append((spec, equivalent_jobs[item.job_id]))
                else:
                    outcome.equivalent_survived += 1
                continue
            if result.worker_outcome != WorkerOutcome.NORMAL or result.test_outcome == TestOutcome.INCOMPETENT:
                outcome.errors += 1
                before, after = diff_lines(result.diff or "")
                last = (result.output or "").strip().splitlines()[-1:] or [""]
                outcome.failures.append({"line": spec.start_pos[0], "operator": spec.operator_name, "before": before,
                                         "after": after, "why": f"{result.worker_outcome}: {last[0][:200]}"})
            elif result.test_outcome == TestOutcome.SURVIVED:
                outcome.survived += 1
                before, after = diff_lines(result.diff or "")
                outcome.survivors.append({"line": spec.start_pos[0], "function": spec.definition_name,
                                          "operator": spec.operator_name, "before": before, "after": after})
            elif (result.output or "").strip() == "timeout":
                outcome.timed_out += 1
            else:
                outcome.killed += 1
    outcome.survivors.sort(key=lambda s: (s["line"], s["operator"]))
    return outcome


# ------------------------------------------------------------------ report


def print_outcome(o: Outcome) -> None:
    killed = o.killed + o.timed_out  # a mutant the tests never finish on is caught (it hangs the service)
    low, high = wilson(killed, o.run)
    share = f"{killed / o.run:.1%}" if o.run else "n/a"
    interval = f" (95 % {low:.0%}-{high:.0%}, sampled)" if o.sampled_out and o.run else ""
    print(f"  {o.module}: generated {o.generated}, left out {o.left_out}, equivalent {o.equivalent}, "
          f"sampled out {o.sampled_out}, run {o.run}, killed {o.killed}, survived {o.survived}, "
          f"timed out {o.timed_out}, errors {o.errors}, not run {o.not_run}")
    print(f"    killed (with timed out) of the non-equivalent run: {share}{interval}; "
          f"{o.seconds / 60:.1f} min ({o.seconds / max(o.run + o.equivalent_survived + len(o.equivalent_killed), 1):.1f} s "
          f"a mutant; unmutated tests {o.baseline_seconds:.1f} s)")
    if o.survivors:
        print(f"    survivors ({len(o.survivors)}):")
        for s in o.survivors:
            print(f"      {o.module}:{s['line']} in {s['function']}: {s['operator'].split('/')[-1]}")
            print(f"          - {s['before']}")
            print(f"          + {s['after']}")
    for f in o.failures:
        print(f"    error (the tool could not judge it): {o.module}:{f['line']} {f['operator'].split('/')[-1]}: "
              f"`{f['before']}` -> `{f['after']}`: {f['why']}")
    if o.equivalent_survived or o.equivalent_killed:
        print(f"    accepted equivalents run again: {o.equivalent_survived} survived, {len(o.equivalent_killed)} killed")
    for spec, entry in o.equivalent_killed:
        print(f"    ! accepted as equivalent but killed: {o.module}:{spec.start_pos[0]} {spec.operator_name} "
              f"({entry.reason[:60]}...): remove it from {EQUIVALENTS.name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--group", action="append", choices=sorted(GROUPS), help="run these groups (repeatable)")
    parser.add_argument("--module", action="append", help="run these modules, e.g. models/policy.py (repeatable)")
    parser.add_argument("--list", action="store_true", help="print the groups, modules and their tests, and stop")
    parser.add_argument("--slow-tests", action="store_true",
                        help="add each module's slow tests (trained model, service, PostgreSQL: minutes a mutant)")
    parser.add_argument("--max-mutants", type=int, help="run at most this many mutants per module, drawn at random")
    parser.add_argument("--seed", type=int, default=0, help="the draw of --max-mutants")
    parser.add_argument("--budget-minutes", type=float, help="stop each module's run after this long")
    parser.add_argument("--operators", choices=("core", "all"), default="core",
                        help="core leaves out arithmetic<->bitwise/shift and ordering<->identity replacements")
    parser.add_argument("--runner", choices=("fork", "plain"), default="fork")
    parser.add_argument("--ref", default="HEAD", help="the commit whose files are copied and mutated")
    parser.add_argument("--working-tree", action="store_true", help="copy the working tree as it is instead")
    parser.add_argument("--recheck-equivalents", action="store_true", help="run the accepted equivalents too")
    parser.add_argument("--only-equivalents", action="store_true",
                        help="run only the accepted equivalents (each must survive): checks the list")
    parser.add_argument("--equivalents", type=Path, default=EQUIVALENTS)
    parser.add_argument("--timeout-factor", type=float, default=4.0, help="a mutant's run may take this many baselines")
    parser.add_argument("--min-timeout", type=float, default=30.0)
    parser.add_argument("--baseline-timeout", type=float, default=1800.0)
    parser.add_argument("--progress-seconds", type=float, default=60.0)
    parser.add_argument("--keep", action="store_true", help="keep the copy and the sessions (cosmic-ray dump/cr-report)")
    parser.add_argument("--json", type=Path, help="also write the figures and survivors here")
    # internal: the warm runner and its client
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--copy", help=argparse.SUPPRESS)
    parser.add_argument("--client", help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args()

    if args.client:
        sys.exit(client(args.client, rest[1:] if rest[:1] == ["--"] else rest))
    if args.serve:
        serve(args.serve, args.copy, json.loads(sys.stdin.read()))
        return

    from importlib.util import find_spec

    from synth_bench import machine

    if find_spec("cosmic_ray") is None or not (Path(sys.executable).parent / "cosmic-ray").exists():
        raise SystemExit("the mutation tool is not installed: .venv/bin/pip install -e '.[bench]'")

    targets: list[tuple[str, Target]] = []
    for key, (title, members) in GROUPS.items():
        for target in members:
            if (args.group and key in args.group) or (args.module and target.module in args.module) \
                    or not (args.group or args.module):
                targets.append((title, target))
    unknown = set(args.module or ()) - {t.module for _, t in targets}
    if unknown:
        raise SystemExit(f"not a module of any group: {sorted(unknown)}; see --list")
    if args.list:
        for title, target in targets:
            print(f"{title}: {target.module}" + (f" (only {', '.join(target.only)})" if target.only else ""))
            for t in target.tests:
                print(f"    fast  {t}")
            for t in target.slow:
                print(f"    slow  {t}")
        return

    equivalents = read_equivalents(args.equivalents)
    print(f"machine: {machine()}")
    from importlib.metadata import version

    print(f"cosmic-ray {version('cosmic-ray')}, operators: {args.operators}, runner: {args.runner}, "
          f"{len(equivalents)} accepted equivalents in {args.equivalents.name}")

    chosen: list[tuple[str, Target, list[str]]] = []
    for title, target in targets:
        tests = list(target.tests) + (list(target.slow) if args.slow_tests else [])
        tests = list(dict.fromkeys(tests))
        if any("::" not in t for t in tests):  # a whole file covers its node ids
            files = {t for t in tests if "::" not in t}
            tests = [t for t in tests if "::" not in t or t.split("::")[0] not in files]
        if not tests:
            print(f"\n{target.module}: no fast tests guard it; run it with --slow-tests (and --max-mutants)")
            continue
        chosen.append((title, target, tests))
    if not chosen:
        return

    before = {target.module: digest(ROOT / target.module) for _, target, _ in chosen}
    work = Path(tempfile.mkdtemp(prefix="xyd-mutation-"))
    copy = work / "repo"
    copy.mkdir()
    shutil.copy2(__file__, work / "mutation_bench.py")
    outcomes: list[Outcome] = []
    wall = time.perf_counter()
    try:
        what = make_copy(copy, args.ref, args.working_tree)
        print(f"mutating a copy of the {what} in {copy}")
        imported = "import importlib, sys; print(importlib.import_module(sys.argv[1]).__file__)"
        check = subprocess.run([sys.executable, "-c", imported, chosen[0][1].module[:-3].replace("/", ".")],
                               cwd=copy, env=child_env(copy), capture_output=True, text=True, check=False)
        if not check.stdout.strip().startswith(str(copy)):
            raise SystemExit(f"the copy's modules are not the ones imported: {check.stdout or check.stderr}")
        for title, target, tests in chosen:
            print(f"\n== {title}: {target.module}" + (f" (only {', '.join(target.only)})" if target.only else ""))
            for t in tests:
                print(f"    {t}")
            outcome = run_module(target, tests, copy, work, args, equivalents)
            if outcome is not None:
                outcomes.append(outcome)
                print_outcome(outcome)
    finally:
        if args.keep:
            print(f"\nkept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    after = {module: digest(ROOT / module) for module in before}
    changed = [m for m in before if before[m] != after[m]]

    print(f"\n== summary ({(time.perf_counter() - wall) / 60:.1f} min wall, {machine()}) ==")
    for o in outcomes:
        killed = o.killed + o.timed_out
        print(f"  {o.module:32} generated {o.generated:4}  equivalent {o.equivalent:3}  run {o.run:4}  killed "
              f"{killed:4}  survived {o.survived:4}  " + (f"{killed / o.run:6.1%} killed" if o.run else "   n/a"))
    stale = [e for e in equivalents if e.used == 0 and any(e.module == o.module for o in outcomes)]
    for e in stale:
        print(f"  ! an accepted equivalent matched no mutant (edited away?): {e.module} {e.operator} `{e.line}`")
    if changed:
        print(f"  the working tree's {changed} changed during the run: by someone else's edit, not by a mutant "
              "(mutants are written only in the copy), but say so")
    else:
        print(f"  the working tree's mutated modules are byte for byte as before the run ({len(before)} checked)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps([o.__dict__ | {"run": o.run} for o in outcomes], indent=1, default=str))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    main()
