"""MLflow: every training run, its report and its model; the registry's challenger and champion.

The tracking store is ``MLFLOW_TRACKING_URI`` (default ``sqlite:///mlruns/mlflow.db``); artifacts
go beside a SQLite store (``mlruns/artifacts`` by default). The model is registered as
:data:`MODEL_NAME`, a pyfunc whose artifact is the :class:`~models.bundle.ModelBundle` folder;
``xyd train`` points the ``challenger`` alias at the new version and ``xyd promote`` moves
``champion``. Aliases, not stages (MLflow 3).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient

from models.registry_store import CHALLENGER, CHAMPION, MODEL_NAME, no_model, refusal, store_uri

if TYPE_CHECKING:
    from models.bundle import ModelBundle


# artifacts are local files: no progress bars in the command line's output
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
# MLflow tags runs with the git commit when git is at hand; where it is not (an unpacked release, a
# container) that is no news to a user, and GitPython's many-line warning would be the first thing they read
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")

EXPERIMENT = "xyd-pre-credit"
EXPLORATION = "xyd-pre-credit-exploration"
"""Where notebooks log what they try: runs and reports, never a registered version or an alias."""
PIP_REQUIREMENTS = ["lightgbm==4.7.0", "numpy==2.4.6", "pandas==3.1.1", "mlflow==3.17.2"]


class ModelNotFound(LookupError):
    """No registered model version under the alias or number asked for."""


def tracking_uri() -> str:
    """The tracking store in use; a SQLite store's folder is created if missing."""
    uri = store_uri()
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return uri


def artifact_location(uri: str) -> str | None:
    """Artifacts beside a SQLite store (``<its folder>/artifacts``); the server's choice otherwise."""
    if uri.startswith("sqlite:///"):
        return (Path(uri.removeprefix("sqlite:///")).parent / "artifacts").resolve().as_uri()
    return None


def client() -> MlflowClient:
    # MLflow announces creating and upgrading its tables at INFO on every new store: not news to a user
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)
    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return MlflowClient(uri, uri)


def ensure_store() -> None:
    """Create the tracking store's tables now if it has none: MLflow makes (and migrates) a SQLite
    store's tables on its first use, and two processes doing it at once leave it broken for good
    (``table ... already exists``), so a server makes it once before its workers start."""
    made = client()
    made.search_experiments(max_results=1)
    made.search_registered_models(max_results=1)


def _experiment_id(mlflow_client: MlflowClient, name: str = EXPERIMENT) -> str:
    found = mlflow_client.get_experiment_by_name(name)
    if found:
        return found.experiment_id
    return mlflow_client.create_experiment(name, artifact_location=artifact_location(tracking_uri()))


def as_text_categories(frame: pd.DataFrame) -> pd.DataFrame:
    """Categorical columns as plain text: how the registered model's signature takes them."""
    return frame.assign(**{c: frame[c].astype("object").where(frame[c].notna(), None)
                           for c in frame.columns if isinstance(frame[c].dtype, pd.CategoricalDtype)})


class PreCreditPyfunc(mlflow.pyfunc.PythonModel):
    """The bundle behind MLflow's generic interface: profile rows in (categorical columns as
    text, see :func:`as_text_categories`), decisions out."""

    def load_context(self, context) -> None:
        from models.bundle import ModelBundle

        self.bundle = ModelBundle.load(context.artifacts["bundle"])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        return self.bundle.decide(model_input).frame()


def log_training(bundle: ModelBundle, bundle_dir: Path, example: pd.DataFrame, params: dict, metrics: dict,
                 files: dict[str, str | bytes], register: bool = True, experiment: str | None = None,
                 tags: dict[str, str] | None = None) -> tuple[str, str | None, bool]:
    """Log a training run (params, metrics, report files, the model with its signature) to
    ``experiment`` (default :data:`EXPERIMENT`) with ``tags`` and, when asked, register the model
    and point ``challenger`` at it. Returns (run id, version, whether the version is new). Only the main experiment registers:
    exploration must not move what the service or ``xyd promote`` reads. A bundle already
    registered (the same bundle id: the same data and settings) is not registered twice: the run
    says which version it is, and ``challenger`` points at that version."""
    experiment = experiment or EXPERIMENT
    if register and experiment != EXPERIMENT:
        raise ValueError(f"runs of the {experiment!r} experiment are not registered; pass register=False")
    mlflow_client = client()
    experiment_id = _experiment_id(mlflow_client, experiment)
    registered = registered_versions(str(bundle.meta["bundle_id"])) if register else []
    tags = {**(tags or {}), **({"same_bundle_as_version": registered[-1]} if registered else {})}
    sample = as_text_categories(example.head(50)[["uscc", *bundle.inputs]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MLflow warns about its own defaults (integer columns, pip inference)
        signature = infer_signature(sample, bundle.decide(sample).frame())
        with mlflow.start_run(experiment_id=experiment_id, run_name=f"train {bundle.meta['trained_at']}") as run:
            mlflow.log_params({k: (json.dumps(v) if isinstance(v, (dict, list, tuple)) else v) for k, v in params.items()})
            mlflow.log_metrics({k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and v == v})
            mlflow.set_tags({k: v for k, v in metrics.items() if isinstance(v, str)})
            mlflow.set_tags({k: str(v) for k, v in (tags or {}).items()})
            with tempfile.TemporaryDirectory() as folder:
                for name, content in files.items():
                    path = Path(folder) / name
                    (path.write_bytes if isinstance(content, bytes) else lambda c: path.write_text(c, "utf-8"))(content)
                    mlflow.log_artifact(str(path))
            # MLflow prints "Successfully registered model …" to standard error; the caller says which version
            with contextlib.redirect_stderr(io.StringIO()):
                info = mlflow.pyfunc.log_model(
                    name="pre_credit", python_model=str(Path(__file__).with_name("pyfunc_model.py")),
                    artifacts={"bundle": str(bundle_dir)},
                    signature=signature, pip_requirements=PIP_REQUIREMENTS,
                    registered_model_name=MODEL_NAME if register and not registered else None)
    version = None
    if register and registered:
        version = registered[-1]
        mlflow_client.set_registered_model_alias(MODEL_NAME, CHALLENGER, version)
    elif register:
        version = str(info.registered_model_version)
        mlflow_client.set_registered_model_alias(MODEL_NAME, CHALLENGER, version)
        for key in ("feature_set_version", "policy_version", "bundle_id"):
            mlflow_client.set_model_version_tag(MODEL_NAME, version, key, str(bundle.meta[key]))
        mlflow_client.set_model_version_tag(MODEL_NAME, version, "run_id", run.info.run_id)
    return run.info.run_id, version, bool(version) and not registered


def registered_versions(bundle_id: str) -> list[str]:
    """The registered versions holding the bundle ``bundle_id``, oldest first."""
    found = client().search_model_versions(f"name='{MODEL_NAME}' and tag.bundle_id='{bundle_id}'")
    return sorted((str(v.version) for v in found), key=int)


def version_for(alias_or_version: str) -> str:
    """The registered version an alias (``champion``, ``challenger``) or a number names."""
    mlflow_client = client()
    try:
        if alias_or_version.isdigit():
            return str(mlflow_client.get_model_version(MODEL_NAME, alias_or_version).version)
        return str(mlflow_client.get_model_version_by_alias(MODEL_NAME, alias_or_version).version)
    except MlflowException:
        raise ModelNotFound(no_model(alias_or_version, tracking_uri())) from None


def load_bundle(alias_or_version: str, cache: Path | None = None) -> ModelBundle:
    """The bundle of a registered version, downloaded once into ``cache`` (a temporary folder when
    not given) and loaded with LightGBM alone."""
    version = version_for(alias_or_version)
    cache = Path(cache or tempfile.mkdtemp(prefix="xyd-model-"))
    target = cache / f"{MODEL_NAME}-v{version}"
    if not (target / "artifacts" / "bundle" / "bundle.json").exists():
        # several workers may ask at once: each downloads aside and the first rename wins, so
        # nobody ever loads a half-written folder
        cache.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=cache))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{MODEL_NAME}/{version}",
                                                    dst_path=str(staging), tracking_uri=tracking_uri())
            try:
                os.rename(staging, target)
            except OSError:
                if not (target / "artifacts" / "bundle" / "bundle.json").exists():
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    from models.bundle import ModelBundle  # LightGBM and the model stack: only when a bundle is loaded

    bundle = ModelBundle.load(target / "artifacts" / "bundle")
    bundle.meta["model_version"] = version
    return bundle


def already_champion() -> tuple[str, str] | None:
    """Why the challenger cannot be promoted, read from the registry alone (no bundle loaded, no
    loan scored): it is the champion's version, or it holds the champion's bundle (the same data
    and settings retrained). Returns (why, the champion's version), or None when it is another
    model or there is no champion yet; raises :class:`ModelNotFound` when there is no challenger."""
    challenger = version_for(CHALLENGER)
    try:
        champion = version_for(CHAMPION)
    except ModelNotFound:
        champion = None
    mlflow_client = client()
    return refusal(challenger, champion,
                   lambda version: mlflow_client.get_model_version(MODEL_NAME, version).tags.get("bundle_id"))


def set_alias(alias: str, version: str, tags: dict[str, str]) -> None:
    """Point ``alias`` at ``version`` and tag the version (why, when, forced)."""
    mlflow_client = client()
    mlflow_client.set_registered_model_alias(MODEL_NAME, alias, version)
    for key, value in tags.items():
        mlflow_client.set_model_version_tag(MODEL_NAME, version, key, value)


def run_metrics(version: str) -> dict:
    """The metrics logged by the run that trained a registered version."""
    mlflow_client = client()
    run_id = mlflow_client.get_model_version(MODEL_NAME, version).tags.get("run_id")
    return dict(mlflow_client.get_run(run_id).data.metrics) if run_id else {}

