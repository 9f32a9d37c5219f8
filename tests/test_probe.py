"""The batched torch probe (imbcl.engine.probe) against scikit-learn's LogisticRegression."""

import warnings

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.preprocessing import StandardScaler
from sklearn.utils.class_weight import compute_class_weight

from imbcl.engine.probe import _Objective, _standardisation, balanced_accuracy, fit_logistic


def planted(p, n, m, t, c, seed, signal=1.0):
    """x (p, n, m) correlated features, y (p, n, t) drawn from a planted multinomial model."""
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(p, m, m, generator=g, dtype=torch.float64) / m**0.5
    x = torch.randn(p, n, m, generator=g, dtype=torch.float64) @ mix + 0.5
    w = signal * torch.randn(p, t, c, m, generator=g, dtype=torch.float64)
    xs = (x - x.mean(1, keepdim=True)) / x.std(1, keepdim=True)
    logits = torch.einsum("pnm,ptcm->pntc", xs, w)
    u = torch.rand(p, n, t, 1, generator=g, dtype=torch.float64)
    y = (torch.softmax(logits, -1).cumsum(-1) < u).sum(-1).clamp(max=c - 1)
    return x, y


def sklearn_fit(x, y, class_weight, tol=1e-10, **kw):
    """The scikit-learn probe of metrics.probe_accuracy on one problem: (scaler, classifier)."""
    scaler = StandardScaler().fit(x)
    clf = LogisticRegression(C=1.0, class_weight=class_weight, tol=tol, max_iter=10_000, **kw)
    return scaler, clf.fit(scaler.transform(x), y)


# ---------------------------------------------------------------------- agreement with sklearn
@pytest.mark.parametrize("class_weight", [None, "balanced"])
def test_probabilities_and_coefficients_agree_with_sklearn(class_weight):
    x, y = planted(3, 300, 8, 4, 3, seed=1)
    fit = fit_logistic(x, y, 3, class_weight=class_weight, tol=1e-7)
    proba = fit.predict_proba(x)  # (P, n, T, C)
    for p in range(3):
        for t in range(4):
            scaler, clf = sklearn_fit(x[p].numpy(), y[p, :, t].numpy(), class_weight)
            ref = clf.predict_proba(scaler.transform(x[p].numpy()))
            np.testing.assert_allclose(proba[p, :, t].numpy(), ref, atol=1e-6)
            np.testing.assert_allclose(fit.coef[p, t].numpy(), clf.coef_, atol=1e-5)
            icpt = clf.intercept_ - clf.intercept_.mean()
            np.testing.assert_allclose(fit.intercept[p, t].numpy(), icpt, atol=1e-5)


def test_ten_classes_unweighted_agree_with_sklearn():
    """Chapter 5's use: one task, 10 classes, no class weights; y given as (P, n)."""
    x, y = planted(2, 400, 12, 1, 10, seed=2, signal=2.0)
    fit = fit_logistic(x, y[..., 0], 10, tol=1e-7)
    assert fit.predict(x).shape == (2, 400)
    for p in range(2):
        scaler, clf = sklearn_fit(x[p].numpy(), y[p, :, 0].numpy(), None)
        ref = clf.predict_proba(scaler.transform(x[p].numpy()))
        np.testing.assert_allclose(fit.predict_proba(x)[p].numpy(), ref, atol=1e-5)


def test_balanced_accuracy_agrees_with_sklearn_on_many_problems():
    """64 planted problems (300 train, 300 test samples) scored on the test split. Against
    scikit-learn solved tightly (tol=1e-8) the balanced accuracies are equal on >= 95 % of
    the problems and within 0.005 (one or two test points near a boundary) on all; against
    scikit-learn's default tol=1e-4, which metrics.probe_accuracy uses and which stops
    further from the optimum, they are within 0.01."""
    x, y = planted(8, 600, 16, 8, 3, seed=3, signal=0.7)
    tr, te = slice(0, 300), slice(300, 600)
    fit = fit_logistic(x[:, tr], y[:, tr], 3, class_weight="balanced")
    ours = balanced_accuracy(fit.predict(x[:, te]), y[:, te], 3).numpy()
    for tol, worst, equal in ((1e-8, 0.005, 0.95), (1e-4, 0.01, 0.8)):
        ref = np.zeros_like(ours)
        for p in range(8):
            for t in range(8):
                scaler, clf = sklearn_fit(x[p, tr].numpy(), y[p, tr, t].numpy(), "balanced", tol)
                pred = clf.predict(scaler.transform(x[p, te].numpy()))
                ref[p, t] = balanced_accuracy_score(y[p, te, t].numpy(), pred)
        diff = np.abs(ours - ref)
        assert diff.max() <= worst, tol
        assert (diff < 1e-12).mean() >= equal, tol


def test_balanced_weights_match_sklearn():
    x, y = planted(1, 500, 4, 1, 3, seed=4)
    y[0, :400, 0] = 0  # class 0 dominates
    mean, scale = _standardisation(x)
    obj = _Objective((x - mean) / scale, y, 3, "balanced", 1.0)
    labels = y[0, :, 0].numpy()
    cw = compute_class_weight("balanced", classes=np.unique(labels), y=labels)
    expected = cw[labels] / cw[labels].sum()
    np.testing.assert_allclose(obj.weight[0, 0, 0].numpy(), expected, rtol=1e-12)
    weighted = fit_logistic(x, y, 3, class_weight="balanced", tol=1e-7).predict_proba(x)
    plain = fit_logistic(x, y, 3, tol=1e-7).predict_proba(x)
    scaler, clf = sklearn_fit(x[0].numpy(), labels, "balanced")
    ref = clf.predict_proba(scaler.transform(x[0].numpy()))
    np.testing.assert_allclose(weighted[0, :, 0].numpy(), ref, atol=1e-6)
    assert (weighted - plain).abs().max() > 0.05  # the weighting matters on this problem


def test_separable_planted_problem_is_solved_exactly():
    """Three unit-variance clusters 8 s.d. apart: every train and test point is classified
    correctly (balanced accuracy exactly 1), like scikit-learn's."""
    g = torch.Generator().manual_seed(5)
    y = torch.randint(0, 3, (2, 400, 1), generator=g)
    centres = 8.0 * torch.eye(3, 6, dtype=torch.float64)
    x = centres[y[..., 0]] + torch.randn(2, 400, 6, generator=g, dtype=torch.float64)
    fit = fit_logistic(x[:, :200], y[:, :200], 3, class_weight="balanced")
    acc = balanced_accuracy(fit.predict(x[:, 200:]), y[:, 200:], 3)
    assert torch.equal(acc, torch.ones(2, 1, dtype=acc.dtype))
    assert torch.equal(fit.predict(x[:, :200]), y[:, :200])
    scaler, clf = sklearn_fit(x[0, :200].numpy(), y[0, :200, 0].numpy(), "balanced", 1e-4)
    assert (clf.predict(scaler.transform(x[0, 200:].numpy())) == y[0, 200:, 0].numpy()).all()


def test_a_task_fits_the_same_alone_or_in_a_batch():
    """Up to the solver tolerance: the batch changes rounding (matrix-product blocking), not
    the problem."""
    x, y = planted(4, 200, 6, 3, 3, seed=6)
    together = fit_logistic(x, y, 3, class_weight="balanced", tol=1e-7)
    alone = fit_logistic(x[2:3], y[2:3, :, 1:2], 3, class_weight="balanced", tol=1e-7)
    torch.testing.assert_close(alone.coef[0, 0], together.coef[2, 1], rtol=0, atol=1e-5)
    assert torch.equal(alone.predict(x[2:3])[..., 0], together.predict(x)[2, :, 1][None])


# ------------------------------------------------------------------------- degenerate cases
def test_absent_class_matches_sklearns_binary_fit_and_is_never_predicted():
    x, y = planted(1, 300, 5, 1, 3, seed=7)
    y = torch.where(y == 1, 2, y)  # classes 0 and 2 only
    fit = fit_logistic(x, y, 3, class_weight="balanced", tol=1e-7)
    proba = fit.predict_proba(x)[0, :, 0]
    assert torch.isfinite(proba).all() and (proba[:, 1] == 0).all()
    assert not (fit.predict(x) == 1).any()
    assert torch.isfinite(fit.coef).all() and (fit.coef[0, 0, 1] == 0).all()
    scaler, clf = sklearn_fit(x[0].numpy(), y[0, :, 0].numpy(), "balanced")
    ref = clf.predict_proba(scaler.transform(x[0].numpy()))  # columns: classes 0 and 2
    np.testing.assert_allclose(proba[:, [0, 2]].numpy(), ref, atol=1e-6)


def test_single_class_problem_predicts_it():
    x, _ = planted(2, 50, 3, 1, 3, seed=8)
    y = torch.full((2, 50), 1)
    fit = fit_logistic(x, y, 3, class_weight="balanced")
    assert (fit.predict(x) == 1).all() and bool(fit.converged.all())
    assert (fit.coef == 0).all() and torch.isfinite(fit.intercept).all()


def test_constant_features_match_sklearn():
    x, y = planted(1, 300, 6, 1, 3, seed=9)
    x[..., 0], x[..., 3] = 0.0, 2.5  # a dead neuron and a constant one
    fit = fit_logistic(x, y, 3, class_weight="balanced", tol=1e-7)
    assert (fit.scale[0, 0, [0, 3]] == 1).all()
    assert fit.coef[..., [0, 3]].abs().max() < 1e-12
    scaler, clf = sklearn_fit(x[0].numpy(), y[0, :, 0].numpy(), "balanced")
    ref = clf.predict_proba(scaler.transform(x[0].numpy()))
    np.testing.assert_allclose(fit.predict_proba(x)[0, :, 0].numpy(), ref, atol=1e-6)


def test_fewer_samples_than_features_and_huge_inputs_stay_finite():
    x, y = planted(3, 20, 40, 1, 10, seed=10)  # few-shot: n < m, separable
    fit = fit_logistic(x * 1e6, y[..., 0], 10)
    assert torch.isfinite(fit.coef).all() and torch.isfinite(fit.predict_proba(x * 1e6)).all()
    assert torch.equal(fit.predict(x * 1e6), y[..., 0])


def test_non_convergence_warns():
    x, y = planted(1, 200, 5, 2, 3, seed=11)
    with pytest.warns(RuntimeWarning, match="2 of 2 tasks did not reach tol=1e-06"):
        fit = fit_logistic(x, y, 3, max_iter=1)
    assert not fit.converged.any() and (fit.n_iter == 1).all()


# ----------------------------------------------------------------------- balanced accuracy
def test_balanced_accuracy_matches_sklearn():
    g = torch.Generator().manual_seed(12)
    y = torch.randint(0, 3, (6, 40, 2), generator=g)
    y[0, :, 0] = torch.where(y[0, :, 0] == 2, 0, y[0, :, 0])  # class 2 absent from y ...
    pred = torch.randint(0, 3, (6, 40, 2), generator=g)  # ... but predicted
    ours = balanced_accuracy(pred, y, 3)
    assert ours.shape == (6, 2)
    for p in range(6):
        for t in range(2):
            with warnings.catch_warnings():  # "y_pred contains classes not in y_true"
                warnings.simplefilter("ignore", UserWarning)
                ref = balanced_accuracy_score(y[p, :, t].numpy(), pred[p, :, t].numpy())
            assert ours[p, t].item() == pytest.approx(ref, abs=1e-12)
    assert balanced_accuracy(pred[..., 0], y[..., 0], 3).shape == (6,)


# ------------------------------------------------------------------------ input validation
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"x": torch.zeros(4, 3)}, r"x must be a float tensor \(P, n, m\) \(got \(4, 3\)\)"),
        ({"x": torch.zeros(2, 4, 3, dtype=torch.long)}, "x must be a float tensor"),
        ({"x": torch.full((2, 4, 3), float("nan"))}, "x must be finite"),
        ({"y": torch.zeros(2, 5, dtype=torch.long)}, r"y must be \(P, n\) or \(P, n, T\)"),
        ({"y": torch.zeros(2, 4)}, "y must hold integer class labels"),
        ({"y": torch.full((2, 4), 3)}, r"y must lie in \[0, 2\] \(got 3..3\)"),
        ({"y": torch.full((2, 4), -1)}, r"y must lie in \[0, 2\]"),
        ({"n_classes": 1}, "n_classes must be an integer >= 2"),
        ({"class_weight": "auto"}, "class_weight must be None or 'balanced'"),
        ({"C": 0.0}, "C must be a positive finite number"),
        ({"C": float("inf")}, "C must be a positive finite number"),
        ({"max_iter": 0}, "max_iter must be a positive integer"),
        ({"tol": -1.0}, "tol must be a positive number"),
    ],
)
def test_input_validation(kwargs, message):
    args = {"x": torch.zeros(2, 4, 3), "y": torch.zeros(2, 4, dtype=torch.long), "n_classes": 3}
    args |= kwargs
    with pytest.raises(ValueError, match=message):
        fit_logistic(args.pop("x"), args.pop("y"), args.pop("n_classes"), **args)


def test_prediction_and_scoring_validation():
    x, y = planted(2, 30, 4, 1, 3, seed=13)
    fit = fit_logistic(x, y, 3)
    with pytest.raises(ValueError, match=r"x must be \(P=2, n', m=4\) \(got \(2, 30, 5\)\)"):
        fit.predict(torch.zeros(2, 30, 5))
    with pytest.raises(ValueError, match="pred and y must have the same shape"):
        balanced_accuracy(torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 4), 3)
    with pytest.raises(ValueError, match=r"y must lie in \[0, 2\]"):
        balanced_accuracy(torch.zeros(2, 3, dtype=torch.long), torch.full((2, 3), 5), 3)
