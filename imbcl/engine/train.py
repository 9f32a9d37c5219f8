"""Instrumented contrastive training of R independent replicas.

:class:`Replicas` holds R runs that share shapes (seeds and/or configurations) and trains them
with SGD on symmetric InfoNCE plus an L2 penalty, on fresh samples every step. Replica r
depends only on its own RunSpec: its dictionary, initialisation and data stream come from its
seed, so it trains to the same weights alone or inside any group. On a GPU all replicas are
stacked into one batched computation; on the CPU they run one after another (``chunk``), which
the benchmark found faster there (see ``benchmarks/bench_train.py``).

With frozen attention (the default) a step runs without autograd: the W-gradient of the
symmetric stop-gradient InfoNCE is written out (:func:`info_nce_grads`,
:func:`imbcl.engine.model.neuron_weight_grad`) on the regrouped encoder of :mod:`imbcl.model`. This is
the same math as the autograd step used when attention trains, equal up to float rounding.
"""

from __future__ import annotations

import copy
import os
import warnings
from collections.abc import Sequence

import numpy as np
import torch
from tqdm import tqdm

from imbcl.engine import data as D
from imbcl.engine import model as M
from imbcl.engine import prune as P
from imbcl.engine.config import SHAPE_FIELDS, ConfigError, PruneConfig, RunSpec
from imbcl.engine.history import History
from imbcl.engine.loss import l2_penalty, symmetric_info_nce
from imbcl.engine.runtime import default_device
from imbcl.engine.streams import Stream, generator


def check_specs(specs: Sequence[RunSpec]) -> list[RunSpec]:
    """The specs as a list, or a ConfigError naming the first field that cannot be batched."""
    specs = list(specs)
    if not specs:
        raise ConfigError("specs must hold at least one RunSpec (got none)")
    for i, s in enumerate(specs):
        if not isinstance(s, RunSpec):
            raise ConfigError(f"specs[{i}] must be a RunSpec (got {type(s).__name__})")
    ref = specs[0].shape_key()
    for i, s in enumerate(specs[1:], start=1):
        for name, a, b in zip(SHAPE_FIELDS, ref, s.shape_key(), strict=True):
            if a != b:
                raise ConfigError(
                    f"specs[{i}] has {name} = {b!r} but specs[0] has {a!r}: replicas trained "
                    f"in one call must share {', '.join(SHAPE_FIELDS)}"
                )
    return specs


def info_nce_grads(fa: torch.Tensor, fb: torch.Tensor, tau: torch.Tensor):
    """Symmetric stop-gradient InfoNCE (R,) and its gradients wrt each online branch.

    ``fa``, ``fb`` (R, n, m), ``tau`` (R,). The loss is that of
    :func:`imbcl.engine.loss.symmetric_info_nce`; with S = fa fb^T / tau, the term with ``fa`` online
    has dL/dfa = (softmax_rows(S) - I) fb / (2 n tau), and the term with ``fb`` online has
    dL/dfb = (softmax_cols(S) - I)^T fa / (2 n tau); the target branches get no gradient.
    """
    n = fa.shape[1]
    s = fa @ fb.transpose(1, 2) / tau[:, None, None]
    rows = torch.log_softmax(s, dim=-1)
    cols = torch.log_softmax(s, dim=-2)
    nce = -0.5 * (rows.diagonal(dim1=1, dim2=2).mean(-1) + cols.diagonal(dim1=1, dim2=2).mean(-1))
    scale = (0.5 / n / tau)[:, None, None]
    ga, gb = rows.exp_(), cols.exp_()
    ga.diagonal(dim1=1, dim2=2).sub_(1.0)
    gb.diagonal(dim1=1, dim2=2).sub_(1.0)
    return nce, (ga.mul_(scale)) @ fb, (gb.mul_(scale)).transpose(1, 2) @ fa


def _progress_default() -> bool:
    return os.environ.get("IMBCL_PROGRESS", "1") not in {"0", "false", "False"}


class Replicas:
    """R replicas' parameters, data streams and pruning masks, trained together.

    Parameters live on ``device`` as (R, ...) tensors: ``W`` (R, m, d) and the attention
    matrices ``WQ``, ``WK``, ``WV`` (R, d, d). ``step`` counts SGD steps taken so far.
    ``fused`` (default True) trains frozen-attention replicas with the hand-written step;
    False uses autograd (the same math; trajectories agree to float rounding, which the
    training dynamics can amplify over many steps, as any change of summation order does).
    """

    def __init__(self, specs: Sequence[RunSpec], device=None, chunk: int | None = None):
        self.specs = check_specs(specs)
        self.device = torch.device(device) if device is not None else default_device()
        if chunk is not None and (not isinstance(chunk, int) or chunk < 1):
            raise ConfigError(f"chunk must be a positive integer or None (got {chunk!r})")
        self.chunk = chunk or (len(self.specs) if self.device.type == "cuda" else 1)
        s0 = self.specs[0]
        self.d, self.m, self.k = s0.data.d, s0.model.m, s0.data.k
        self.minority = D.minority_mask(s0.data)
        self.dictionaries = [D.make_dictionary(s.data, s.seed, self.device) for s in self.specs]
        self.features = torch.stack([dc.features for dc in self.dictionaries])  # (R, d, K)
        self.params = self._init_params()
        self.data_gens = [generator(s.seed, Stream.DATA, self.device) for s in self.specs]
        f32 = {"dtype": torch.float32, "device": self.device}
        col = lambda get: torch.tensor([get(s) for s in self.specs], **f32)  # noqa: E731
        self.lr = col(lambda s: s.train.lr)
        self.tau = col(lambda s: s.train.tau)
        self.weight_decay = col(lambda s: s.train.weight_decay)
        self.sigma = col(lambda s: s.data.sigma)
        self.kappa_max = col(lambda s: 0.0 if s.model.bias == "none" else s.model.kappa_max)
        self.ramp = col(lambda s: 0.0 if s.model.bias != "ramp" else s.model.ramp_steps)
        self.step = 0
        self.mask: torch.Tensor | None = None  # (R, m, d) coefficient mask, 1 = kept
        self.basis_t: torch.Tensor | None = None  # (R, d, d) B^T, None = coordinates
        self.basis_inv_t: torch.Tensor | None = None  # (R, d, d) B^{-T}
        self.fused = True  # frozen attention: hand-written gradients (False: autograd)

    # ----------------------------------------------------------------- set-up
    def _init_params(self) -> dict[str, torch.Tensor]:
        ws = []
        for s in self.specs:
            g = generator(s.seed, Stream.INIT)
            ws.append(torch.randn(s.model.m, s.data.d, generator=g) * s.model.init_scale)
        eye = torch.eye(self.d)
        attn = torch.stack([eye * s.model.attn_scale for s in self.specs])
        return {
            "W": torch.stack(ws).to(self.device),
            "WQ": attn.to(self.device),
            "WK": attn.clone().to(self.device),
            "WV": eye.expand(len(self.specs), -1, -1).clone().to(self.device),
        }

    @property
    def n_replicas(self) -> int:
        return len(self.specs)

    @property
    def trainable(self) -> tuple[str, ...]:
        return ("W", "WQ", "WK", "WV") if self.specs[0].model.train_attention else ("W",)

    def kappa(self, step: int | None = None) -> torch.Tensor:
        """(R,) bias multiplier at ``step``: kappa_max, ramped linearly over ``ramp_steps``."""
        t = self.step if step is None else step
        frac = torch.where(self.ramp > 0, (t / self.ramp.clamp(min=1)).clamp(max=1.0), 1.0)
        return self.kappa_max * frac

    def bias(self, sl: slice = slice(None)) -> torch.Tensor:
        """(R, m) current BReLU biases."""
        p = self.params
        return M.bias(self.kappa()[sl], p["W"][sl], p["WV"][sl], self.sigma[sl], self.d)

    def copy(self) -> Replicas:
        """An independent copy: parameters, data streams, step and mask (for paired runs)."""
        other = copy.copy(self)
        other.params = {k: v.clone() for k, v in self.params.items()}
        other.data_gens = []
        for g in self.data_gens:
            h = torch.Generator(device=g.device)
            h.set_state(g.get_state())
            other.data_gens.append(h)
        for name in ("mask", "basis_t", "basis_inv_t"):
            value = getattr(self, name)
            setattr(other, name, None if value is None else value.clone())
        return other

    # --------------------------------------------------------------- training
    def run(self, steps: int | None = None, progress: bool | None = None) -> History:
        """Train every replica for ``steps`` SGD steps (default: the specs' ``train.steps``).

        Returns the History of this segment: a record before the first step when training
        starts from step 0, then every ``record_every`` steps and at the last step.
        """
        if steps is None:
            counts = {s.train.steps for s in self.specs}
            if len(counts) > 1:
                raise ConfigError(f"specs disagree on train.steps ({sorted(counts)}): pass steps")
            steps = counts.pop()
        if isinstance(steps, bool) or not isinstance(steps, int | np.integer) or steps < 0:
            raise ConfigError(f"steps must be a non-negative integer (got {steps!r})")
        every = self.specs[0].train.record_every
        start, end = self.step, self.step + int(steps)
        rec = [t for t in range(start + 1, end + 1) if t % every == 0 or t == end]
        if start == 0:
            rec.insert(0, 0)
        shape = (len(rec), self.n_replicas)
        out = {
            "align": np.zeros((*shape, self.m, self.k), np.float32),
            "noise": np.zeros((*shape, self.m), np.float32),
            "bias": np.zeros((*shape, self.m), np.float32),
            "loss": np.full(shape, np.nan, np.float32),
        }
        show = _progress_default() if progress is None else progress
        bar = tqdm(
            total=steps * -(-self.n_replicas // self.chunk),
            disable=not show,
            desc=f"training {self.n_replicas} replicas",
            leave=False,
        )
        for lo in range(0, self.n_replicas, self.chunk):
            self._run_chunk(slice(lo, lo + self.chunk), start, end, rec, out, bar)
        bar.close()
        self.step = end
        return History(
            np.array(rec),
            out["align"],
            out["noise"],
            out["bias"],
            out["loss"],
            self.minority.copy(),
            list(self.specs),
        )

    def _run_chunk(self, sl, start, end, rec, out, bar) -> None:
        idx = range(self.n_replicas)[sl]
        p = {k: v[sl].clone() for k, v in self.params.items()}
        slot, loss_sum, loss_n = 0, 0.0, 0
        if rec and rec[0] == start:
            self._record(out, slot, sl, p, start, float("nan"))
            slot += 1
        if self.fused and len(self.trainable) == 1:
            form = M.attention_form(p["WQ"], p["WK"])
            c, ws = M.scalar_form(form), M.Workspace()
            step = lambda t: self._fused_step(p, sl, idx, t, form, c, ws)  # noqa: E731
        else:
            step = lambda t: self._sgd_step(p, sl, idx, t)  # noqa: E731
        for t in range(start, end):
            loss_sum = loss_sum + step(t)
            loss_n += 1
            if slot < len(rec) and rec[slot] == t + 1:
                self._record(out, slot, sl, p, t + 1, (loss_sum / loss_n).cpu().numpy())
                slot, loss_sum, loss_n = slot + 1, 0.0, 0
            bar.update(1)
        for k in self.params:
            self.params[k][sl] = p[k]
        trained = out["loss"][1 if rec and rec[0] == start else 0 :, sl]
        bad = ~np.isfinite(trained).all(axis=0)
        if bad.any():
            warnings.warn(
                f"training diverged (non-finite loss) for replicas "
                f"{[idx[i] for i in np.flatnonzero(bad)]}: lower train.lr or raise train.tau",
                RuntimeWarning,
                stacklevel=3,
            )

    def _batch(self, idx: range) -> tuple[torch.Tensor, torch.Tensor]:
        """Two masked views (Rc, n, L, d) of a fresh batch for each replica in ``idx``."""
        v1, v2 = [], []
        for r in idx:
            s, g = self.specs[r], self.data_gens[r]
            x, _ = D.sample_batch(s.data, self.dictionaries[r], s.train.batch, g)
            a, b = D.mask_views(x, g)
            v1.append(a)
            v2.append(b)
        return torch.stack(v1), torch.stack(v2)

    def _joined_batch(self, idx: range, ws: M.Workspace) -> torch.Tensor:
        """The two masked views of :meth:`_batch` joined along the samples: (Rc, 2n, L, d)."""
        out = None
        for i, r in enumerate(idx):
            s, g = self.specs[r], self.data_gens[r]
            x, _ = D.sample_batch(s.data, self.dictionaries[r], s.train.batch, g)
            if out is None:
                out = ws.get("x", (len(idx), 2 * x.shape[0], *x.shape[1:]), x)
            torch.cat(D.mask_views(x, g), out=out[i])
        return out

    @torch.no_grad()
    def _fused_step(self, p, sl, idx, t, form, c, ws) -> torch.Tensor:
        """One SGD step with frozen attention, gradients by hand (same math as _sgd_step)."""
        x = self._joined_batch(idx, ws)
        n = x.shape[1] // 2
        hx = M.token_mix(x, form, c, ws)  # (Rc, 2n, L, d)
        v = M.effective_weights(p["W"], p["WV"])
        b = M.bias_from_effective(self.kappa(t)[sl], v, self.sigma[sl], self.d)
        f, active = M.neurons_with_mask(hx, v, b, ws)
        nce, df1, df2 = info_nce_grads(f[:, :n], f[:, n:], self.tau[sl])
        dv = M.neuron_weight_grad(hx, active, torch.cat([df1, df2], dim=1))
        grad = dv @ p["WV"].transpose(1, 2)
        w = p["W"]
        grad.add_(w * self.weight_decay[sl, None, None])
        w.sub_(self.lr[sl, None, None] * grad)
        if self.mask is not None:
            p["W"] = self._project(w, sl)
        return nce

    def _sgd_step(self, p: dict, sl: slice, idx: range, t: int) -> torch.Tensor:
        x1, x2 = self._batch(idx)
        names = self.trainable
        for n in names:
            p[n].requires_grad_(True)
        b = M.bias(self.kappa(t)[sl], p["W"], p["WV"], self.sigma[sl], self.d)
        with torch.set_grad_enabled(len(names) > 1):
            h1 = M.attention(x1, p["WQ"], p["WK"], p["WV"])
            h2 = M.attention(x2, p["WQ"], p["WK"], p["WV"])
        f1, f2 = M.neurons(h1, p["W"], b), M.neurons(h2, p["W"], b)
        nce = symmetric_info_nce(f1, f2, self.tau[sl])
        objective = nce + l2_penalty({n: p[n] for n in names}, self.weight_decay[sl])
        grads = torch.autograd.grad(objective.sum(), [p[n] for n in names])
        with torch.no_grad():
            lr = self.lr[sl, None, None]
            for n, g in zip(names, grads, strict=True):
                p[n].requires_grad_(False)
                p[n] -= lr * g
            if self.mask is not None:
                p["W"] = self._project(p["W"], sl)
        return nce.detach()

    def _project(self, w: torch.Tensor, sl: slice) -> torch.Tensor:
        bt = None if self.basis_t is None else self.basis_t[sl]
        bit = None if self.basis_inv_t is None else self.basis_inv_t[sl]
        return P.from_coefficients(P.to_coefficients(w, bit) * self.mask[sl], bt)

    @torch.no_grad()
    def _record(self, out, slot, sl, p, t, loss) -> None:
        v = M.effective_weights(p["W"], p["WV"])
        a = v @ self.features[sl]  # (Rc, m, K)
        resid = v - a @ self.features[sl].transpose(1, 2)
        b = M.bias(self.kappa(t)[sl], p["W"], p["WV"], self.sigma[sl], self.d)
        out["align"][slot, sl] = a.cpu().numpy()
        out["noise"][slot, sl] = resid.norm(dim=-1).cpu().numpy()
        out["bias"][slot, sl] = b.cpu().numpy()
        out["loss"][slot, sl] = loss

    # ----------------------------------------------------------- evaluation
    def indices(self, replicas=None) -> list[int]:
        """``replicas`` (indices, or None for all) as a checked list of replica indices."""
        if replicas is None:
            return list(range(self.n_replicas))
        idx = [int(i) for i in np.atleast_1d(np.asarray(replicas))]
        if not idx or min(idx) < 0 or max(idx) >= self.n_replicas:
            raise ConfigError(
                f"replicas must be non-empty indices in [0, {self.n_replicas - 1}] "
                f"(got {list(np.atleast_1d(replicas))})"
            )
        return idx

    def sample(self, n: int, stream: int = Stream.PROBE, probs=None, replicas=None):
        """Clean tokens (R', n, L, d) and codes (R', n, K) from a fixed per-replica stream.

        ``probs`` (K,) overrides the presence probabilities (e.g. equal for every feature so
        that a probe sees enough minority examples); ``replicas`` selects R' of the replicas
        (default all). The same call gives the same samples for a replica, whichever others
        are selected.
        """
        xs, zs = [], []
        for r in self.indices(replicas):
            g = generator(self.specs[r].seed, stream, self.device)
            x, z = D.sample_batch(self.specs[r].data, self.dictionaries[r], n, g, probs)
            xs.append(x)
            zs.append(z)
        return torch.stack(xs), torch.stack(zs)

    @torch.no_grad()
    def encode(self, x: torch.Tensor, replicas=None) -> torch.Tensor:
        """f(X) (R', n, m) of tokens (R', n, L, d) at the current weights and bias of the
        selected ``replicas`` (default all)."""
        idx = self.indices(replicas)
        params = {k: v[idx] for k, v in self.params.items()}
        return M.encode(x.to(self.device), params, self.bias()[idx])

    # ---------------------------------------------------------------- pruning
    @torch.no_grad()
    def prune(self, cfg: PruneConfig, basis: torch.Tensor | None = None) -> torch.Tensor:
        """Zero a fraction ``cfg.rate`` of each replica's neuron-weight coefficients.

        ``basis`` (R, d, d) gives the columns b_k for ``cfg.basis == "estimated"``; the feature
        basis is each replica's dictionary (an oracle); coordinates need none. With
        ``keep_mask`` the mask is re-applied after every later step. Returns the mask.
        """
        if not isinstance(cfg, PruneConfig):
            raise ConfigError(f"cfg must be a PruneConfig (got {type(cfg).__name__})")
        R, d = self.n_replicas, self.d
        if cfg.basis == "coordinate":
            bt = bit = None
        else:
            if cfg.basis == "feature":
                b = torch.stack([dc.basis for dc in self.dictionaries])
            elif basis is None:
                raise ConfigError("basis must be given (R, d, d) when cfg.basis == 'estimated'")
            else:
                b = torch.as_tensor(basis, dtype=torch.float32, device=self.device)
                if b.shape != (R, d, d):
                    raise ConfigError(f"basis must have shape {(R, d, d)} (got {tuple(b.shape)})")
            bt, bit = b.transpose(1, 2), torch.linalg.inv(b).transpose(1, 2)
        coef = P.to_coefficients(self.params["W"], bit)
        if cfg.mode == "magnitude":
            mask = P.magnitude_mask(coef, cfg.rate, cfg.scope)
        else:
            mask = torch.cat(
                [
                    P.random_mask(
                        (1, *coef.shape[1:]),
                        cfg.rate,
                        cfg.scope,
                        generator(s.seed, Stream.PRUNE, self.device),
                    )
                    for s in self.specs
                ]
            )
        self.params["W"] = P.from_coefficients(coef * mask, bt)
        self.mask, self.basis_t, self.basis_inv_t = (
            (mask, bt, bit) if cfg.keep_mask else (None,) * 3
        )
        return mask


def train(
    specs: Sequence[RunSpec],
    steps: int | None = None,
    device=None,
    chunk=None,
    progress: bool | None = None,
) -> tuple[History, Replicas]:
    """Train ``specs`` as one group of replicas; returns the History and the trained Replicas."""
    reps = Replicas(specs, device=device, chunk=chunk)
    return reps.run(steps, progress=progress), reps
