"""Real tabular datasets that ship inside installed packages (no network at run time).

Each loader returns one DataFrame holding the features and the target; light cleaning only
(a label made readable, a date turned into numbers, an id-like text column reduced to a brand).
Sources: scikit-learn (load_*), palmerpenguins, statsmodels.datasets, vega_datasets.local_data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class Dataset:
    name: str
    task: str  # binary | multiclass | regression
    target: str
    load: Callable[[], pd.DataFrame]
    source: str
    notes: str

    @property
    def split_strategy(self) -> str:
        return "random" if self.task == "regression" else "stratified"


def _sklearn(loader: str, labels: bool) -> pd.DataFrame:
    import sklearn.datasets

    bunch = getattr(sklearn.datasets, loader)(as_frame=True)
    frame = bunch.frame.copy()
    if labels:
        names = getattr(bunch, "target_names", None)
        frame["target"] = [str(names[i]) if names is not None else str(i) for i in frame["target"]]
    return frame


def _breast_cancer() -> pd.DataFrame:
    return _sklearn("load_breast_cancer", labels=True)


def _digits() -> pd.DataFrame:
    frame = _sklearn("load_digits", labels=False)
    frame["target"] = "d" + frame["target"].astype(int).astype(str)
    return frame


def _diabetes() -> pd.DataFrame:
    return _sklearn("load_diabetes", labels=False)


def _penguins() -> pd.DataFrame:
    from palmerpenguins import load_penguins

    return load_penguins().drop(columns=["year"])  # as conf/data/penguins.yaml: the year says nothing


def _fair() -> pd.DataFrame:
    import statsmodels.api as sm

    frame = sm.datasets.fair.load_pandas().data.copy()
    frame["had_affair"] = (frame.pop("affairs") > 0).map({True: "yes", False: "no"})
    for column in ("occupation", "occupation_husb"):  # coded job groups, not quantities
        frame[column] = "occ" + frame[column].astype(int).astype(str)
    return frame


def _anes96() -> pd.DataFrame:
    import statsmodels.api as sm

    frame = sm.datasets.anes96.load_pandas().data.copy()
    frame["vote"] = frame["vote"].map({0.0: "Clinton", 1.0: "Dole"})
    return frame.drop(columns=["logpopul"])  # log of popul, a duplicate feature


def _randhie() -> pd.DataFrame:
    import statsmodels.api as sm

    frame = sm.datasets.randhie.load_pandas().data.copy()
    frame["mdvis"] = frame["mdvis"].astype(float)
    return frame


def _cars() -> pd.DataFrame:
    from vega_datasets import local_data

    frame = local_data.cars().copy()
    frame["brand"] = frame["Name"].str.split().str[0]
    frame["model_year"] = frame["Year"].dt.year
    return frame.drop(columns=["Name", "Year"])


def _seattle_weather() -> pd.DataFrame:
    from vega_datasets import local_data

    frame = local_data.seattle_weather().copy()
    frame["year"] = frame["date"].dt.year
    frame["month"] = frame["date"].dt.month
    return frame.drop(columns=["date"])


DATASETS: dict[str, Dataset] = {
    d.name: d
    for d in [
        Dataset(
            "breast_cancer",
            "binary",
            "target",
            _breast_cancer,
            "scikit-learn load_breast_cancer",
            "569 rows, 30 numeric",
        ),
        Dataset(
            "fair", "binary", "had_affair", _fair, "statsmodels.datasets.fair", "6366 rows, 6 numeric + 2 categorical"
        ),
        Dataset(
            "anes96", "binary", "vote", _anes96, "statsmodels.datasets.anes96", "944 rows, 9 numeric (ordinal codes)"
        ),
        Dataset(
            "penguins",
            "multiclass",
            "species",
            _penguins,
            "palmerpenguins",
            "344 rows, 3 classes, 4 numeric + 2 categorical, missing values",
        ),
        Dataset(
            "seattle_weather",
            "multiclass",
            "weather",
            _seattle_weather,
            "vega_datasets.local_data.seattle_weather",
            "1461 rows, 5 imbalanced classes, 6 numeric",
        ),
        Dataset(
            "digits", "multiclass", "target", _digits, "scikit-learn load_digits", "1797 rows, 10 classes, 64 numeric"
        ),
        Dataset("diabetes", "regression", "target", _diabetes, "scikit-learn load_diabetes", "442 rows, 10 numeric"),
        Dataset(
            "cars",
            "regression",
            "Miles_per_Gallon",
            _cars,
            "vega_datasets.local_data.cars",
            "406 rows (398 labelled), 6 numeric + 2 categorical (one with 37 levels), missing values",
        ),
        Dataset(
            "randhie",
            "regression",
            "mdvis",
            _randhie,
            "statsmodels.datasets.randhie",
            "20190 rows, 9 numeric, skewed count target",
        ),
    ]
}

QUICK = ("breast_cancer", "penguins", "cars")  # one per task, with categoricals and missing values
