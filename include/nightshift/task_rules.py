"""What a spec of each task may name: its gate and live metrics, defaults and the estimator classes it can use.

A light table (standard library only), so `nightshift.config` checks specs at DAG parse time without scikit-learn; the
metrics themselves live in `nightshift.kinds`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TaskRules:
    """What a spec of one task may name: its gate metrics, defaults and the estimator classes it can use.

    The metrics themselves live in `nightshift.kinds` (one module per task); this light table lets a spec be
    checked at DAG parse time without importing scikit-learn.
    """

    metrics: tuple[str, ...]
    default_metric: str
    default_estimator: str
    estimator_word: str
    live_metrics: tuple[str, ...] = ()
    """What realized performance reports on a night's labelled predictions (`performance.metric` names one)."""
    estimable: bool = False
    """Whether performance is estimated before labels arrive (CBPE, from calibrated class probabilities)."""

    def estimator_problem(self, dotted: str) -> str | None:
        """Why the class named by `dotted` is plainly of another kind (from scikit-learn's naming), else None."""
        name = dotted.rpartition(".")[2]
        other = estimator_family(name)
        if other is None or other == self.estimator_word:
            return None
        return f"{name} is a {other}; this model's task needs a {self.estimator_word}"


TASKS: dict[str, TaskRules] = {
    "binary": TaskRules(
        ("roc_auc", "average_precision", "accuracy", "f1", "log_loss"),
        "roc_auc",
        "sklearn.ensemble.HistGradientBoostingClassifier",
        "classifier",
        ("roc_auc", "average_precision", "precision", "recall", "f1", "accuracy", "log_loss", "calibration_error"),
        estimable=True,
    ),
    "multiclass": TaskRules(
        ("log_loss", "accuracy", "macro_f1", "roc_auc_ovr"),
        "accuracy",
        "sklearn.ensemble.HistGradientBoostingClassifier",
        "classifier",
        ("accuracy", "macro_f1", "log_loss", "roc_auc_ovr"),
        estimable=True,
    ),
    "regression": TaskRules(
        ("rmse", "mae", "r2"),
        "r2",
        "sklearn.ensemble.HistGradientBoostingRegressor",
        "regressor",
        ("rmse", "mae", "r2"),
    ),
}
LOWER_IS_BETTER = frozenset({"log_loss", "calibration_error", "rmse", "mae"})
_CLASSIFIER_NAMES = frozenset(
    {"LogisticRegression", "LogisticRegressionCV", "SVC", "NuSVC", "LinearSVC", "Perceptron", "GaussianNB"}
    | {"BernoulliNB", "MultinomialNB", "ComplementNB", "CategoricalNB", "LinearDiscriminantAnalysis"}
    | {"QuadraticDiscriminantAnalysis", "NearestCentroid", "RidgeClassifierCV"}
)
_REGRESSOR_NAMES = frozenset(
    {"Ridge", "RidgeCV", "Lasso", "LassoCV", "ElasticNet", "ElasticNetCV", "Lars", "LarsCV", "LassoLars"}
    | {"LassoLarsCV", "LassoLarsIC", "BayesianRidge", "SVR", "NuSVR", "LinearSVR", "KernelRidge"}
    | {"OrthogonalMatchingPursuit", "TheilSenRegressor", "IsotonicRegression"}
)


def estimator_family(class_name: str) -> str | None:
    """'classifier' or 'regressor' when scikit-learn's naming makes the class's kind plain, else None."""
    if class_name in _CLASSIFIER_NAMES or class_name.endswith("Classifier"):
        return "classifier"
    if class_name in _REGRESSOR_NAMES or class_name.endswith(("Regressor", "Regression")):
        return "regressor"
    return None
