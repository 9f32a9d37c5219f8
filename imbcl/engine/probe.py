"""Linear probes: multinomial logistic regression on P problems at once, in torch.

One call fits P independent problems, each with T tasks that share its inputs: x (P, n, m)
features and y (P, n, T) integer labels in [0, C). The synthetic chapters' probe is P = R
replicas, T = K features, C = 3 classes (z_j + 1 for z_j in {-1, 0, +1}), class-balanced;
Chapter 5's is P = R (or R x draws) problems with T = 1 and C = 10, unweighted.

Each task solves scikit-learn's ``LogisticRegression(C=C, class_weight=...)`` (lbfgs
solver, multinomial loss) on inputs standardised like ``StandardScaler``: with sample
weights s_i (1; for "balanced", n / (n_present * n_c) for a sample of class c, which has n_c
samples, n_present classes being present),

    minimise  sum_i s_i CE_i / sum_i s_i  +  lambda / 2 * ||coef||^2,
    lambda = 1 / (C * sum_i s_i)  (2 / (C * sum_i s_i) when exactly two classes are present:
    scikit-learn then fits the binary model, whose coefficient is the difference of the two
    class coefficients).

Intercepts are not penalised. Classes absent from a task's training labels are left out of
its softmax (their logit is -inf), so they are never predicted, as in scikit-learn; a task
with one class present predicts that class (scikit-learn refuses to fit it). Constant
features standardise to 0.

Solver: L-BFGS run separately per task (own history, step size and stopping test), all tasks
in the same tensor operations. The variables are rotated and scaled by the eigenvectors of
each problem's feature covariance (shared by its T tasks), an exact change of variables that
leaves the optimum unchanged and removes most of the ill-conditioning of correlated neurons.
Newton's method needs ~13 iterations, but its Hessian alone costs 2 n (m + 1)^2 C (C + 1) / 2
FLOPs per task and iteration (~1.3 GFLOP per task at n = 2000, m = 64, C = 3, against
~0.2 GFLOP for the whole L-BFGS solve); a batched Newton solver measured 4x slower. Timings against
scikit-learn: ``benchmarks/bench_book.py --probe`` (see benchmarks/README.md).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import torch

#: Armijo sufficient-decrease constant and step halvings allowed per line search.
ARMIJO, MAX_HALVINGS = 1e-4, 40
#: L-BFGS pairs kept (20 needed fewer iterations than 10 on the book's probes).
HISTORY = 20
#: Penalty on the sum of a task's intercepts: the softmax is unchanged by a common shift,
#: so this only picks the centred solution (sum of intercepts over present classes = 0).
INTERCEPT_SUM_PENALTY = 1.0


@dataclass(frozen=True)
class LogisticFit:
    """Fitted probes for P problems of T tasks and C classes (T = 1 if y was (P, n)).

    ``mean``, ``scale`` (P, 1, m): the standardisation of the training inputs; ``coef``
    (P, T, C, m) and ``intercept`` (P, T, C) act on standardised inputs (coefficients of
    absent classes are 0); ``present`` (P, T, C) bool: classes seen in training; ``n_iter``
    (P, T) L-BFGS iterations; ``converged`` (P, T) bool: the gradient test was met.
    """

    mean: torch.Tensor
    scale: torch.Tensor
    coef: torch.Tensor
    intercept: torch.Tensor
    present: torch.Tensor
    n_iter: torch.Tensor
    converged: torch.Tensor
    squeeze: bool

    def decision_function(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (P, n', T, C) of inputs x (P, n', m); absent classes get -inf."""
        x = _check_features(x, "x")
        p, _, m = self.mean.shape
        if x.shape[0] != p or x.shape[2] != m:
            raise ValueError(f"x must be (P={p}, n', m={m}) (got {tuple(x.shape)})")
        xs = (x.to(self.coef.dtype) - self.mean) / self.scale
        logits = torch.einsum("pnm,ptcm->pntc", xs, self.coef) + self.intercept[:, None]
        return logits.masked_fill(~self.present[:, None], -math.inf)

    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        """Class probabilities (P, n', T, C), or (P, n', C) if fit with y (P, n)."""
        proba = torch.softmax(self.decision_function(x), dim=-1)
        return proba[:, :, 0] if self.squeeze else proba

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Predicted classes (P, n', T) int64, or (P, n') if fit with y (P, n)."""
        pred = self.decision_function(x).argmax(dim=-1)
        return pred[:, :, 0] if self.squeeze else pred


def fit_logistic(
    x: torch.Tensor,
    y: torch.Tensor,
    n_classes: int,
    *,
    class_weight: str | None = None,
    C: float = 1.0,  # noqa: N803  (scikit-learn's name)
    max_iter: int = 500,
    tol: float = 1e-6,
) -> LogisticFit:
    """Fit P x T multinomial logistic regressions at once (see the module docstring).

    ``x`` (P, n, m) float features; ``y`` (P, n) or (P, n, T) integer labels in
    [0, n_classes); ``class_weight`` None or "balanced"; ``C`` > 0 the inverse penalty
    strength; ``max_iter`` L-BFGS iterations at most; ``tol`` the stopping test: max
    |gradient| of a task's objective in the solver's (rotated, scaled) variables (at the
    default 1e-6 the benchmark's 480 probe problems score exactly as when solved to 1e-8;
    scikit-learn's default tol=1e-4 moved some by one test point). Work is in float64 (in
    float32 the line search cannot resolve the decrease near the optimum). Tasks that stop
    above ``tol`` (``max_iter`` reached, or no decrease left at float64 precision) raise a
    RuntimeWarning; their ``converged`` entry is False.
    """
    x, y3 = _check_inputs(x, y, n_classes, class_weight, C, max_iter, tol)
    with torch.no_grad():
        x = x.to(torch.float64)
        mean, scale = _standardisation(x)
        obj = _Objective((x - mean) / scale, y3, n_classes, class_weight, C)
        w, n_iter, converged = _lbfgs(obj, max_iter, tol)
        coef, intercept = obj.unrotate(w)
    if not bool(converged.all()):
        warnings.warn(
            f"fit_logistic: {int((~converged).sum())} of {converged.numel()} tasks did not "
            f"reach tol={tol:g} (max_iter={max_iter} reached, or no decrease left at float64 "
            "precision)",
            RuntimeWarning,
            stacklevel=2,
        )
    return LogisticFit(
        mean, scale, coef, intercept, obj.present, n_iter, converged, squeeze=y.dim() == 2
    )


def balanced_accuracy(pred: torch.Tensor, y: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Mean over the classes present in ``y`` of each class's recall, like scikit-learn's
    ``balanced_accuracy_score``: (P,) for pred, y (P, n), or (P, T) for (P, n, T)."""
    if pred.shape != y.shape or y.dim() not in (2, 3) or y.shape[1] < 1:
        raise ValueError(
            f"pred and y must have the same shape (P, n) or (P, n, T) with n >= 1 "
            f"(got {tuple(pred.shape)} and {tuple(y.shape)})"
        )
    _check_labels(y, n_classes, "y")
    onehot = torch.nn.functional.one_hot(y.long(), n_classes).to(torch.float64)
    counts = onehot.sum(dim=1)  # (P, [T,] C)
    hits = ((pred == y)[..., None] * onehot).sum(dim=1)
    recall = hits / counts.clamp(min=1)
    return recall.sum(dim=-1) / (counts > 0).sum(dim=-1)


# ------------------------------------------------------------------------------ validation
def _check_features(x, name: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.dim() != 3 or not x.is_floating_point():
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name} must be a float tensor (P, n, m) (got {got})")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} must be finite (got NaN or inf)")
    return x


def _check_labels(y: torch.Tensor, n_classes, name: str) -> None:
    if isinstance(n_classes, bool) or not isinstance(n_classes, int) or n_classes < 2:
        raise ValueError(f"n_classes must be an integer >= 2 (got {n_classes!r})")
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise ValueError(f"{name} must hold integer class labels (got dtype {y.dtype})")
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= n_classes):
        raise ValueError(
            f"{name} must lie in [0, {n_classes - 1}] (got {int(y.min())}..{int(y.max())})"
        )


def _check_inputs(x, y, n_classes, class_weight, C, max_iter, tol):  # noqa: N803
    """x (P, n, m) and y as (P, n, T) after checking every argument; ValueError if bad."""
    x = _check_features(x, "x")
    if not isinstance(y, torch.Tensor) or y.dim() not in (2, 3) or y.shape[:2] != x.shape[:2]:
        got = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
        raise ValueError(f"y must be (P, n) or (P, n, T) with x (P, n, m) = {tuple(x.shape)} "
                         f"(got {got})")  # fmt: skip
    if x.shape[1] < 1 or x.shape[2] < 1:
        raise ValueError(f"x must have n >= 1 samples and m >= 1 features (got {tuple(x.shape)})")
    _check_labels(y, n_classes, "y")
    if class_weight not in (None, "balanced"):
        raise ValueError(f"class_weight must be None or 'balanced' (got {class_weight!r})")
    if isinstance(C, bool) or not isinstance(C, int | float) or not 0 < C < math.inf:
        raise ValueError(f"C must be a positive finite number (got {C!r})")
    if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
        raise ValueError(f"max_iter must be a positive integer (got {max_iter!r})")
    if isinstance(tol, bool) or not isinstance(tol, int | float) or not tol > 0:
        raise ValueError(f"tol must be a positive number (got {tol!r})")
    return x, (y if y.dim() == 3 else y[..., None]).long()


# ---------------------------------------------------------------------------- the problem
def _standardisation(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, scale) (P, 1, m) of x (P, n, m), as scikit-learn's StandardScaler: the
    population s.d., and 1 for a feature that is constant up to rounding."""
    n = x.shape[1]
    mean = x.mean(dim=1, keepdim=True)
    var = x.var(dim=1, keepdim=True, correction=0)
    eps = torch.finfo(x.dtype).eps
    constant = var <= n * eps * var + (n * mean * eps) ** 2
    return mean, torch.where(constant, 1.0, var.sqrt())


class _Objective:
    """Loss and gradient of every task in the rotated variables v (P, C, T, m + 1).

    Inputs are u = xs V diag(c) plus a column of ones (the intercept), with V the
    eigenvectors of the problem's covariance xs^T xs / n and c_k = (e_k / 4 + lambda_0)^-1/2;
    the coefficient is coef = V diag(c) v, so the penalty lambda/2 ||coef||^2 becomes
    lambda/2 sum_k c_k^2 v_k^2. The data term is sum_i w_i logsumexp_c(l_ic) - <v, B> with
    B = U^T (w * onehot) precomputed, so an evaluation makes three passes over the logits
    besides the two products (two more when the logits may be large enough to overflow). Layouts keep the class axis ahead of the samples, so the
    softmax reduces over a non-contiguous axis of length C (fast on a CPU).
    """

    def __init__(self, xs, y, n_classes, class_weight, C):  # noqa: N803
        p, n, m = xs.shape
        evals, evecs = torch.linalg.eigh(xs.transpose(1, 2) @ xs / n)
        c = (evals.clamp(min=0) / 4 + 1 / (C * n)).rsqrt()  # (P, m)
        self.rot = evecs * c[:, None, :]  # (P, m, m)
        ones = torch.ones(p, 1, n, dtype=xs.dtype, device=xs.device)
        self.ut = torch.cat([(xs @ self.rot).transpose(1, 2), ones], dim=1)  # (P, m + 1, n)
        self.u_norm = float(self.ut.norm(dim=1).amax())  # |logit_ic| <= |v_c| * u_norm
        self.safe = 0.5 * math.log(torch.finfo(xs.dtype).max)  # ~354 in float64
        self.n_classes, self.tasks = n_classes, y.shape[2]
        target = torch.nn.functional.one_hot(y.transpose(1, 2), n_classes)  # (P, T, n, C)
        target = target.permute(0, 3, 1, 2).to(xs.dtype)  # (P, C, T, n)
        counts = target.sum(dim=-1)  # (P, C, T)
        self.present = (counts > 0).permute(0, 2, 1)  # (P, T, C)
        n_present = self.present.sum(dim=-1)  # (P, T)
        if class_weight == "balanced":
            weight = (target * (n / (n_present[:, None] * counts.clamp(min=1)))[..., None]).sum(1)
        else:
            weight = torch.ones_like(target[:, 0])  # (P, T, n)
        total = weight.sum(dim=-1)  # (P, T)
        self.weight = (weight / total[..., None])[:, None]  # (P, 1, T, n), sums to 1
        self.linear = torch.bmm((target * self.weight).reshape(p, -1, n), self.ut.transpose(1, 2))
        self.linear = self.linear.view(p, n_classes, self.tasks, m + 1)  # B
        lam = torch.where(n_present == 2, 2.0, 1.0) / (C * total)  # (P, T)
        scale = torch.cat([c**2, torch.zeros_like(c[:, :1])], dim=1)  # intercept: unpenalised
        self.penalty = lam[:, None, :, None] * scale[:, None, None, :]  # (P, 1, T, m + 1)
        self.absent = (~self.present).permute(0, 2, 1)[..., None]  # (P, C, T, 1)
        self.any_absent = bool(self.absent.any())

    def zeros(self) -> torch.Tensor:
        p, d = self.ut.shape[:2]
        return self.ut.new_zeros(p, self.n_classes, self.tasks, d)

    def __call__(self, v: torch.Tensor, tasks: torch.Tensor | None = None):
        """(loss (P, T), gradient (P, C, T, m + 1)) at v (P, C, T, m + 1). With ``tasks``
        (P, T') indices, only those tasks are computed; the other entries are 0."""
        if tasks is None:
            return self._evaluate(v, self.weight, self.linear, self.penalty, self.absent)
        p, c, t, d = v.shape

        def pick(a: torch.Tensor) -> torch.Tensor:  # (P, X, T, Y) -> (P, X, T', Y)
            return a.gather(2, tasks[:, None, :, None].expand(p, a.shape[1], -1, a.shape[3]))

        args = (pick(v), pick(self.weight), pick(self.linear), pick(self.penalty))
        loss, grad = self._evaluate(*args, pick(self.absent))
        index = tasks[:, None, :, None].expand(p, c, -1, d)
        return loss.new_zeros(p, t).scatter_(1, tasks, loss), grad.new_zeros(v.shape).scatter_(
            2, index, grad
        )

    def _evaluate(self, v, weight, linear, penalty, absent):
        """Loss and gradient of the tasks whose data are ``weight`` (P, 1, T, n), ``linear``
        (P, C, T, D), ``penalty`` (P, 1, T, D) and ``absent`` (P, C, T, 1), at v (P, C, T, D)."""
        p, c, t, d = v.shape
        logits = torch.bmm(v.reshape(p, c * t, d), self.ut).view(p, c, t, -1)
        if self.any_absent:
            logits.masked_fill_(absent, -math.inf)
        shift = None  # exp cannot overflow unless some |logit| may exceed self.safe
        if float(v.norm(dim=-1).amax()) * self.u_norm > self.safe:
            shift = logits.amax(dim=1, keepdim=True)  # (P, 1, T, n)
            logits.sub_(shift)
        expo = logits.exp_()
        norm = expo.sum(dim=1, keepdim=True)  # (P, 1, T, n)
        lse = norm.log() if shift is None else norm.log().add_(shift)
        resid = expo.mul_(weight / norm)  # w_i softmax_c(l_i)
        grad = torch.bmm(resid.view(p, c * t, -1), self.ut.transpose(1, 2)).view(v.shape)
        grad.sub_(linear).add_(penalty * v)
        bias_sum = (v[..., -1] * ~absent[..., 0]).sum(dim=1)  # (P, T)
        grad[..., -1].add_(INTERCEPT_SUM_PENALTY * bias_sum[:, None])
        grad.masked_fill_(absent, 0.0)
        loss = (weight * lse).sum(dim=(1, 3)) - _dot(v, linear - 0.5 * penalty * v)
        return loss + 0.5 * INTERCEPT_SUM_PENALTY * bias_sum**2, grad

    def unrotate(self, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(coef (P, T, C, m), intercept (P, T, C)) on standardised inputs from v."""
        coef = torch.einsum("pjk,pctk->ptcj", self.rot, v[..., :-1])
        return coef, v[..., -1].permute(0, 2, 1)


# ------------------------------------------------------------------------------- L-BFGS
def _subset(mask: torch.Tensor) -> torch.Tensor | None:
    """Indices (P, T') of the tasks that ``mask`` (P, T) selects, first in each row, T' the
    largest count in a row (rows with fewer are padded with unselected tasks); None when
    T' = T. Evaluating only these skips the converged tasks and those already accepted."""
    count = max(int(mask.sum(dim=1).max()), 1)
    if count == mask.shape[1]:
        return None
    return torch.sort(mask.to(torch.uint8), dim=1, descending=True, stable=True).indices[:, :count]


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-task inner product (P, T) of two (P, C, T, D) tensors."""
    return (a * b).sum(dim=(1, 3))


def _per_task(s: torch.Tensor) -> torch.Tensor:
    """(P, T) -> (P, 1, T, 1), to scale (P, C, T, D) tensors task by task."""
    return s[:, None, :, None]


def _direction(g, pairs, gamma) -> torch.Tensor:
    """-H g by the L-BFGS two-loop recursion, task by task; ``pairs`` newest first."""
    q, alphas = g.clone(), []
    for s, y, rho in pairs:
        a = rho * _dot(s, q)
        q.addcmul_(y, _per_task(a), value=-1.0)
        alphas.append(a)
    q.mul_(_per_task(gamma))
    for (s, y, rho), a in zip(reversed(pairs), reversed(alphas), strict=True):
        q.addcmul_(s, _per_task(a - rho * _dot(y, q)))
    return q.neg_()


def _line_search(obj, v, loss, grad, d, todo):
    """Backtracking (Armijo) from step 1, each task with its own step; tasks not in ``todo``
    keep their point. Returns (v, loss, grad) at the accepted points and the (P, T) bool of
    tasks whose search failed (no decrease within MAX_HALVINGS halvings)."""
    slope = _dot(grad, d)
    step = torch.ones_like(loss)
    new_v, new_loss, new_grad = v.clone(), loss.clone(), grad.clone()
    for _ in range(MAX_HALVINGS):
        trial = v + _per_task(step) * d
        f, g = obj(trial, _subset(todo))
        ok = todo & (f <= loss + ARMIJO * step * slope)
        new_v = torch.where(_per_task(ok), trial, new_v)
        new_loss, new_grad = torch.where(ok, f, new_loss), torch.where(_per_task(ok), g, new_grad)
        todo = todo & ~ok
        if not bool(todo.any()):
            break
        step = torch.where(todo, 0.5 * step, step)
    return new_v, new_loss, new_grad, todo


def _lbfgs(obj: _Objective, max_iter: int, tol: float):
    """Minimise every task of ``obj`` from 0: (v, n_iter (P, T), converged (P, T))."""
    v = obj.zeros()
    loss, grad = obj(v)
    gamma = torch.ones_like(loss)
    pairs: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
    n_iter = torch.zeros_like(loss, dtype=torch.long)
    active = grad.abs().amax(dim=(1, 3)) > tol
    for _ in range(max_iter):
        if not bool(active.any()):
            break
        d = _direction(grad, pairs, gamma) * _per_task(active)
        new_v, new_loss, new_grad, failed = _line_search(obj, v, loss, grad, d, active)
        s, y = new_v - v, new_grad - grad
        sy, yy = _dot(s, y), _dot(y, y)
        good = sy > 1e-12 * yy.sqrt() * _dot(s, s).sqrt()
        rho = torch.where(good, 1 / torch.where(good, sy, 1.0), 0.0)
        gamma = torch.where(good, sy / torch.where(good, yy, 1.0), gamma)
        pairs = [(s, y, rho), *pairs][:HISTORY]
        n_iter += active
        v, loss, grad = new_v, new_loss, new_grad
        active = active & ~failed & (grad.abs().amax(dim=(1, 3)) > tol)
    return v, n_iter, grad.abs().amax(dim=(1, 3)) <= tol
