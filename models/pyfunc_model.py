"""The registered model's MLflow entry point (MLflow "models from code": no pickled objects).

MLflow runs this file when it loads the model; it only names the class that wraps the bundle.
"""

import mlflow

from models.tracking import PreCreditPyfunc

mlflow.models.set_model(PreCreditPyfunc())
