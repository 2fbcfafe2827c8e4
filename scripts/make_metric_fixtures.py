#!/usr/bin/env python3
"""Write tests/fixtures/metrics.json: scikit-learn's binary metrics on fixed cases.

The Rust tests in src/metrics/ranking.rs and src/metrics/binary.rs load the file
and compare every value to 1e-12. Regenerate with

    python scripts/make_metric_fixtures.py [output path]

(needs numpy and scikit-learn). The cases come from a fixed numpy seed, so the
output only changes when numpy or scikit-learn change their results.

Encoding choices, so that the JSON reads back exactly in Rust:
- scores are rounded to 6 decimals (1 decimal for the heavy-ties case); such
  short decimals parse to the same double in every JSON reader;
- the leading `inf` threshold of `roc_curve` is written as `null`;
- `roc_auc` is `null` and `roc_curve` is `null` where scikit-learn returns NaN
  (only one class present).
"""

import json
import math
import pathlib
import sys

import numpy as np
import sklearn
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    confusion_matrix,
    f1_score,
    precision_recall_curve,
    precision_score,
    recall_score,
    roc_auc_score,
    roc_curve,
)

SEED = 20240101
THRESHOLD = 0.5


def noisy_scores(rng, labels, separation, decimals=6):
    """Scores in (0, 1): a logistic of a class-dependent shift plus noise."""
    logits = separation * (2 * labels - 1) + rng.normal(size=labels.size)
    return np.round(1 / (1 + np.exp(-logits)), decimals)


def make_cases(rng):
    """(name, labels, scores) for every case, in a fixed order."""
    cases = []

    labels = (rng.random(50) < 0.4).astype(int)
    cases.append(("random_n50", labels, noisy_scores(rng, labels, 0.8)))

    labels = (rng.random(500) < 0.3).astype(int)
    cases.append(("random_n500", labels, noisy_scores(rng, labels, 0.6)))

    # Many positives and negatives share a score, including exactly 0.5.
    labels = (rng.random(200) < 0.35).astype(int)
    cases.append(("heavy_ties", labels, noisy_scores(rng, labels, 0.5, decimals=1)))

    labels = np.array([1, 0, 0, 1, 0, 1, 0, 0, 0, 1])
    cases.append(("all_scores_equal", labels, np.full(labels.size, 0.5)))

    labels = np.array([0] * 12 + [1] * 8)
    scores = np.round(np.where(labels == 1, 0.6, 0.0) + 0.35 * rng.random(20), 6)
    cases.append(("perfect_separation", labels, scores))
    cases.append(("perfectly_inverted", labels, np.round(1 - scores, 6)))

    cases.append(("tiny_n3", np.array([0, 1, 0]), np.array([0.2, 0.6, 0.7])))

    labels = np.zeros(400, dtype=int)
    labels[rng.choice(400, size=20, replace=False)] = 1
    cases.append(("imbalanced_5pct", labels, noisy_scores(rng, labels, 1.0)))

    # Nothing reaches the threshold: precision and F1 hit zero_division.
    labels = np.array([1, 0, 1, 0, 0, 1, 0, 0])
    cases.append(("all_below_threshold", labels, np.round(0.45 * rng.random(8), 6)))

    # One class only: AUROC undefined, AP and threshold metrics still defined.
    cases.append(("only_negatives", np.zeros(6, dtype=int), np.round(rng.random(6), 6)))
    cases.append(("only_positives", np.ones(6, dtype=int), np.round(rng.random(6), 6)))
    return cases


def floats(values):
    """A list of plain floats, with infinities as None (JSON has no inf)."""
    return [None if math.isinf(v) else float(v) for v in values]


def describe(name, labels, scores):
    """scikit-learn's outputs for one case."""
    both_classes = len(np.unique(labels)) == 2
    predicted = (scores >= THRESHOLD).astype(int)
    tn, fp, fn, tp = confusion_matrix(labels, predicted, labels=[0, 1]).ravel()
    case = {
        "name": name,
        "labels": [int(v) for v in labels],
        "scores": [float(v) for v in scores],
        "roc_auc": float(roc_auc_score(labels, scores)) if both_classes else None,
        "average_precision": float(average_precision_score(labels, scores)),
        "roc_curve": None,
        "threshold": THRESHOLD,
        "confusion": {"tp": int(tp), "fp": int(fp), "tn": int(tn), "fn": int(fn)},
        "precision": float(precision_score(labels, predicted, zero_division=0)),
        "recall": float(recall_score(labels, predicted, zero_division=0)),
        "specificity": float(
            recall_score(labels, predicted, pos_label=0, zero_division=0)
        ),
        "f1": float(f1_score(labels, predicted, zero_division=0)),
        "accuracy": float(accuracy_score(labels, predicted)),
    }
    if both_classes:
        fpr, tpr, thresholds = roc_curve(labels, scores, drop_intermediate=False)
        case["roc_curve"] = {
            "fpr": floats(fpr),
            "tpr": floats(tpr),
            "thresholds": floats(thresholds),
        }
    precision, recall, thresholds = precision_recall_curve(labels, scores)
    case["pr_curve"] = {
        "precision": floats(precision),
        "recall": floats(recall),
        "thresholds": floats(thresholds),
    }
    return case


def main():
    root = pathlib.Path(__file__).resolve().parent.parent
    out = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else root / "tests/fixtures/metrics.json"
    rng = np.random.default_rng(SEED)
    document = {
        "generator": "scripts/make_metric_fixtures.py",
        "numpy_seed": SEED,
        "numpy_version": np.__version__,
        "sklearn_version": sklearn.__version__,
        "cases": [describe(*case) for case in make_cases(rng)],
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    # allow_nan=False: a NaN or inf that slipped through is a bug, not a value.
    out.write_text(json.dumps(document, indent=1, allow_nan=False) + "\n")
    print(f"wrote {len(document['cases'])} cases to {out}")


if __name__ == "__main__":
    main()
