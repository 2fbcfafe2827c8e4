#!/usr/bin/env python3
"""Write tests/fixtures/stats/*.json: reference values for src/stats.

The Rust tests in src/stats load these files and compare to 1e-10 (quantiles of
the t distribution relative to their size). Regenerate with

    python scripts/make_stats_fixtures.py [output folder]

(needs numpy, scipy, scikit-learn and statsmodels). All random cases come from
a fixed numpy seed, so the output only changes when a library changes its
results.

References:
- t distribution: scipy.stats.t.cdf / .sf / .ppf; normal tail: scipy.stats.norm.sf;
- describe: numpy mean and std(ddof=1), scipy.stats.sem and
  scipy.stats.t.interval(0.95, n - 1, loc=mean, scale=se);
- paired t-test: scipy.stats.ttest_rel; linear trend: scipy.stats.linregress
  (slope interval from scipy.stats.t.ppf(0.975, n - 2)); Wilcoxon: scipy.stats.wilcoxon with
  its defaults (the method scipy picks is recorded and cross-checked);
- Holm: statsmodels.stats.multitest.multipletests(method="holm");
- DeLong: the fast midrank algorithm of Sun & Xu (2014) in numpy
  (`compare_auc_delong_xu` formulation), AUCs cross-checked against
  sklearn.metrics.roc_auc_score.

Encoding: inputs are short decimals (at most 6 decimals), which parse to the
same double in every JSON reader. Non-finite outputs are written as the
strings "nan", "inf" and "-inf" (JSON has no such numbers).
"""

import json
import math
import pathlib
import sys

import numpy as np
import scipy
import sklearn
import statsmodels
from scipy import stats
from sklearn.metrics import roc_auc_score
from statsmodels.stats.multitest import multipletests

SEED = 20240607


def num(value):
    """A float for JSON: finite numbers as is, others as strings."""
    value = float(value)
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


def nums(values):
    return [num(v) for v in values]


# ---------------------------------------------------------------- distributions

T_X = [-50.0, -5.0, -2.5, -1.0, -0.3, 0.0, 0.1, 0.7, 1.5, 2.0, 3.0, 4.5, 10.0, 30.0, 300.0]
T_P = [1e-10, 1e-6, 0.001, 0.025, 0.05, 0.1, 0.3, 0.5, 0.7, 0.9, 0.975, 0.995, 0.999999]
T_DF = list(range(1, 101)) + [150, 250, 500, 1000, 10000, 100000, 1000000]
NORMAL_Z = [0.0, 0.1, 0.5, 1.0, 1.5, 1.96, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 20.0, 37.0]


def distributions():
    rows = []
    for df in T_DF:
        rows.append(
            {
                "df": float(df),
                "cdf": nums(stats.t.cdf(T_X, df)),
                "sf": nums(stats.t.sf(T_X, df)),
                "ppf": nums(stats.t.ppf(T_P, df)),
            }
        )
    return {
        "x": T_X,
        "p": T_P,
        "t": rows,
        "normal_z": NORMAL_Z,
        "normal_sf": nums(stats.norm.sf(NORMAL_Z)),
    }


# ---------------------------------------------------------------------- describe


def describe_case(name, values):
    values = np.asarray(values, dtype=float)
    n = values.size
    mean = values.mean()
    if n > 1:
        sd = values.std(ddof=1)
        se = stats.sem(values)
        low, high = stats.t.interval(0.95, n - 1, loc=mean, scale=se)
        if se == 0:
            # scipy's interval with scale 0 is (mean, mean); keep it explicit.
            low, high = mean, mean
    else:
        sd = se = low = high = float("nan")
    return {
        "name": name,
        "values": nums(values),
        "n": n,
        "mean": num(mean),
        "sd": num(sd),
        "se": num(se),
        "ci95_low": num(low),
        "ci95_high": num(high),
    }


def describe_cases(rng):
    cases = [
        describe_case("n1", [0.812]),
        describe_case("n2", [0.81, 0.85]),
        describe_case("n3", [0.812, 0.845, 0.799]),
        describe_case("n5", [0.9, 0.91, 0.87, 0.905, 0.888]),
        describe_case("n6_constant", [0.75] * 6),
        describe_case("n10", np.round(0.8 + 0.03 * rng.normal(size=10), 4)),
        describe_case("n30", np.round(0.7 + 0.1 * rng.normal(size=30), 5)),
    ]
    return cases


# ------------------------------------------------------------------ paired tests


def pairs(rng):
    """(name, a, b): paired samples covering every Wilcoxon method branch."""
    cases = []

    def add(name, a, b):
        cases.append((name, np.asarray(a, dtype=float), np.asarray(b, dtype=float)))

    add("n3_all_positive", [0.81, 0.84, 0.79], [0.80, 0.82, 0.75])
    add("n3_mixed", [0.81, 0.84, 0.79], [0.80, 0.86, 0.75])
    add("n5_exact", [0.9, 0.91, 0.87, 0.905, 0.888], [0.88, 0.915, 0.855, 0.87, 0.861])
    add("n6_exact", [0.71, 0.74, 0.69, 0.73, 0.70, 0.72], [0.70, 0.70, 0.705, 0.68, 0.66, 0.721])
    b10 = np.round(0.8 + 0.02 * rng.normal(size=10), 4)
    add("n10_exact", np.round(b10 + 0.01 + 0.015 * rng.normal(size=10), 4), b10)
    # Offsets 0.001 apart keep |a - b| distinct despite rounding noise.
    b30 = np.round(0.75 + 0.05 * rng.normal(size=30), 5)
    offsets = rng.permutation(np.arange(1, 31)) / 1000 * rng.choice([-1, 1, 1], size=30)
    add("n30_exact", np.round(b30 + offsets, 5), b30)
    # Dyadic values: differences are exact, so ties and zeros are deliberate.
    add("n5_one_zero", [0.5, 0.75, 0.625, 0.875, 0.5], [0.5, 0.625, 0.5, 0.75, 0.25])
    add("n6_ties", [0.5, 0.75, 0.625, 0.875, 0.5, 0.25], [0.375, 0.625, 0.5, 0.75, 0.625, 0.125])
    add(
        "n10_ties_zeros",
        [0.5, 0.75, 0.625, 0.875, 0.5, 0.25, 0.5, 0.625, 0.75, 0.375],
        [0.375, 0.625, 0.625, 0.75, 0.625, 0.125, 0.5, 0.375, 0.5, 0.125],
    )
    steps = np.array([2, -1, 3, 1, 0, 2, 4, -2, 1, 3, 2, 1, -1, 2])
    base = 0.5 + np.arange(14) / 64
    add("n13_ties_permutation", base[:13] + steps[:13] / 64, base[:13])
    add("n14_ties_asymptotic", base + steps / 64, base)
    ties30 = rng.integers(-3, 6, size=30) / 32
    base30 = rng.integers(0, 128, size=30) / 256
    add("n30_ties_zeros_asymptotic", base30 + ties30, base30)
    b50 = np.round(rng.random(50), 6)
    add("n50_exact", np.round(b50 + 0.05 + 0.2 * rng.normal(size=50), 6), b50)
    b51 = np.round(rng.random(51), 6)
    add("n51_asymptotic", np.round(b51 + 0.05 + 0.2 * rng.normal(size=51), 6), b51)
    b60 = np.round(rng.random(60), 6)
    add("n60_asymptotic", np.round(b60 - 0.03 + 0.2 * rng.normal(size=60), 6), b60)
    # Decimal values whose differences tie or not only by rounding.
    add("n6_decimal", [0.85, 0.87, 0.83, 0.91, 0.88, 0.86], [0.83, 0.85, 0.81, 0.9, 0.86, 0.87])
    add("n5_all_zero", [0.7, 0.8, 0.9, 0.6, 0.5], [0.7, 0.8, 0.9, 0.6, 0.5])
    add("n20_all_zero", np.arange(20) / 20, np.arange(20) / 20)
    add("n4_constant_difference", [0.75, 0.875, 0.625, 0.5], [0.5, 0.625, 0.375, 0.25])
    return cases


def wilcoxon_method(d):
    """The method scipy's wilcoxon(method='auto') picks (scipy 1.17 rules)."""
    nonzero = np.abs(d[d != 0])
    has_ties = np.unique(nonzero).size < nonzero.size
    has_zeros = np.any(d == 0)
    if d.size > 50:
        return "asymptotic"
    if not (has_ties or has_zeros):
        return "exact"
    if d.size <= 13:
        return "permutation"
    return "asymptotic"


def wilcoxon_case(name, a, b):
    d = a - b
    res = stats.wilcoxon(a, b)
    method = wilcoxon_method(d)
    for named in ("exact", "permutation", "asymptotic"):
        assert named not in name or named == method, (name, method)
    # Cross-check the recorded method: forcing it reproduces the default result.
    forced = {
        "exact": "exact",
        "asymptotic": "asymptotic",
        "permutation": stats.PermutationMethod(),
    }[method]
    if np.any(d != 0):
        check = stats.wilcoxon(a, b, method=forced)
        assert np.isclose(check.pvalue, res.pvalue, rtol=0, atol=0), (name, method)
    return {
        "name": name,
        "a": nums(a),
        "b": nums(b),
        "statistic": num(res.statistic),
        "p_value": num(res.pvalue),
        "method": method,
    }


def paired_t_case(name, a, b):
    res = stats.ttest_rel(a, b)
    return {
        "name": name,
        "a": nums(a),
        "b": nums(b),
        "statistic": num(res.statistic),
        "p_value": num(res.pvalue),
        "mean_difference": num(np.mean(a - b)),
        "df": num(res.df),
    }


# -------------------------------------------------------------------------- holm


def holm_cases(rng):
    inputs = [
        [],
        [0.01],
        [0.01, 0.02, 0.04, 0.03],
        [0.03, 0.03, 0.001, 0.2],
        [0.5, 0.6, 0.7, 0.01],
        [1.0, 0.0, 0.25],
        np.round(rng.random(20) ** 3, 6).tolist(),
        [0.01, float("nan"), 0.04, 0.03],
    ]
    cases = []
    for p in inputs:
        corrected = multipletests(np.asarray(p, dtype=float), method="holm")[1] if p else []
        cases.append({"p_values": nums(p), "corrected": nums(corrected)})
    return cases


# ------------------------------------------------------------------------ delong


def compute_midrank(x):
    """Midranks (1-based, ties averaged), as in compare_auc_delong_xu."""
    order = np.argsort(x)
    z = x[order]
    n = len(x)
    t = np.zeros(n, dtype=float)
    i = 0
    while i < n:
        j = i
        while j < n and z[j] == z[i]:
            j += 1
        t[i:j] = 0.5 * (i + j - 1)
        i = j
    out = np.empty(n, dtype=float)
    out[order] = t + 1
    return out


def fast_delong(predictions_sorted_transposed, label_1_count):
    """Sun & Xu (2014) fast DeLong: AUCs and their covariance matrix."""
    m = label_1_count
    n = predictions_sorted_transposed.shape[1] - m
    positive = predictions_sorted_transposed[:, :m]
    negative = predictions_sorted_transposed[:, m:]
    k = predictions_sorted_transposed.shape[0]
    tx = np.empty([k, m])
    ty = np.empty([k, n])
    tz = np.empty([k, m + n])
    for r in range(k):
        tx[r, :] = compute_midrank(positive[r, :])
        ty[r, :] = compute_midrank(negative[r, :])
        tz[r, :] = compute_midrank(predictions_sorted_transposed[r, :])
    aucs = tz[:, :m].sum(axis=1) / m / n - float(m + 1.0) / 2.0 / n
    v01 = (tz[:, :m] - tx[:, :]) / n
    v10 = 1.0 - (tz[:, m:] - ty[:, :]) / m
    sx = np.cov(v01)
    sy = np.cov(v10)
    return aucs, sx / m + sy / n


def delong_case(name, labels, scores_a, scores_b):
    labels = np.asarray(labels, dtype=int)
    order = (-labels).argsort(kind="stable")  # positives first
    preds = np.vstack((scores_a, scores_b))[:, order]
    aucs, cov = fast_delong(preds, int(labels.sum()))
    contrast = np.array([1.0, -1.0])
    variance = float(contrast @ cov @ contrast)
    difference = aucs[0] - aucs[1]
    with np.errstate(divide="ignore", invalid="ignore"):
        z = difference / np.sqrt(variance)
    p = 2 * stats.norm.sf(abs(z))
    sk_a = roc_auc_score(labels, scores_a)
    sk_b = roc_auc_score(labels, scores_b)
    assert abs(sk_a - aucs[0]) < 1e-12 and abs(sk_b - aucs[1]) < 1e-12, name
    return {
        "name": name,
        "labels": [int(v) for v in labels],
        "scores_a": nums(scores_a),
        "scores_b": nums(scores_b),
        "auc_a": num(aucs[0]),
        "auc_b": num(aucs[1]),
        "sklearn_auc_a": num(sk_a),
        "sklearn_auc_b": num(sk_b),
        "difference": num(difference),
        "variance": num(variance),
        "z": num(z),
        "p_value": num(p),
    }


def delong_cases(rng):
    def scores(labels, separation, decimals):
        logits = separation * (2 * labels - 1) + rng.normal(size=labels.size)
        return np.round(1 / (1 + np.exp(-logits)), decimals)

    cases = []
    labels = np.array([1, 0, 0, 1, 0, 1, 0, 0, 1, 0])
    cases.append(
        delong_case("n10", labels, scores(labels, 1.0, 3), scores(labels, 0.5, 3))
    )
    labels = (rng.random(30) < 0.4).astype(int)
    cases.append(delong_case("n30", labels, scores(labels, 1.0, 4), scores(labels, 0.8, 4)))
    labels = (rng.random(60) < 0.3).astype(int)
    cases.append(
        delong_case("n60_heavy_ties", labels, scores(labels, 0.8, 1), scores(labels, 0.6, 1))
    )
    labels = (rng.random(300) < 0.2).astype(int)
    a = scores(labels, 1.0, 6)
    b = np.round(np.clip(a + 0.1 * rng.normal(size=a.size), 0, 1), 6)
    cases.append(delong_case("n300_correlated", labels, a, b))
    labels = np.array([0] * 8 + [1] * 6)
    a = np.round(np.where(labels == 1, 0.6, 0.0) + 0.35 * rng.random(14), 6)
    cases.append(delong_case("perfect_vs_noisy", labels, a, scores(labels, 0.7, 6)))
    return cases


# ------------------------------------------------------------------- trend


def trend_case(name, x, y):
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    res = stats.linregress(x, y)
    half = stats.t.ppf(0.975, len(x) - 2) * res.stderr
    return {
        "name": name,
        "x": nums(x),
        "y": nums(y),
        "slope": num(res.slope),
        "intercept": num(res.intercept),
        "r": num(res.rvalue),
        "stderr": num(res.stderr),
        "p_value": num(res.pvalue),
        "slope_ci95_low": num(res.slope - half),
        "slope_ci95_high": num(res.slope + half),
    }


def trend_cases(rng):
    """Gains against a setting, as the report's trend test sees them."""
    levels = np.repeat([0.05, 0.15, 0.3, 0.5], 8)
    falling = np.round(0.12 - 0.22 * levels + 0.05 * rng.normal(size=levels.size), 6)
    flat = np.round(0.01 + 0.05 * rng.normal(size=levels.size), 6)
    x50 = np.round(rng.random(50) * 10, 4)
    return [
        trend_case("n3", [1, 2, 4], [0.5, 0.25, 0.125]),
        trend_case("n4_rising", [0, 1, 2, 3], [1, 3, 2, 4]),
        trend_case("levels_falling", levels, falling),
        trend_case("levels_flat", levels, flat),
        trend_case("n50_noisy", x50, np.round(2 - 0.3 * x50 + rng.normal(size=50), 6)),
        trend_case("perfect_line", [1, 2, 3, 5], [3, 5, 7, 11]),
        trend_case("two_levels", [0.1, 0.1, 0.1, 0.9, 0.9], [0.2, 0.25, 0.15, 0.1, 0.05]),
        # Every difference the same: scipy's correlation is 0/0.
        trend_case("constant_response", [0.15, 0.3, 0.5, 0.5], [0.25, 0.25, 0.25, 0.25]),
    ]


def main():
    root = pathlib.Path(__file__).resolve().parent.parent
    out = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else root / "tests/fixtures/stats"
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    header = {
        "generator": "scripts/make_stats_fixtures.py",
        "numpy_seed": SEED,
        "numpy_version": np.__version__,
        "scipy_version": scipy.__version__,
        "sklearn_version": sklearn.__version__,
        "statsmodels_version": statsmodels.__version__,
    }
    paired = pairs(rng)
    documents = {
        "distributions.json": distributions(),
        "describe.json": {"cases": describe_cases(rng)},
        "paired_t.json": {"cases": [paired_t_case(*c) for c in paired]},
        "wilcoxon.json": {"cases": [wilcoxon_case(*c) for c in paired]},
        "holm.json": {"cases": holm_cases(rng)},
        "delong.json": {"cases": delong_cases(rng)},
        "trend.json": {"cases": trend_cases(rng)},
    }
    for file, body in documents.items():
        # allow_nan=False: a raw NaN or inf that slipped through is a bug.
        text = json.dumps({**header, **body}, indent=1, allow_nan=False) + "\n"
        (out / file).write_text(text)
        print(f"wrote {out / file}")


if __name__ == "__main__":
    main()
