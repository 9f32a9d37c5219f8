"""Configs coerce papermill-style values and reject bad ones with a clear message."""

import pytest

from imbcl import ConfigError, DataConfig, ModelConfig, PruneConfig, RunSpec, TrainConfig


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: DataConfig(rho=0.5), "rho must be >= 1 (got 0.5)"),
        (lambda: DataConfig(q=0), "q must be > 0 (got 0.0)"),
        (lambda: DataConfig(q=1.5), "q must be <= 1 (got 1.5)"),
        (lambda: DataConfig(sigma=-1), "sigma must be >= 0 (got -1.0)"),
        (
            lambda: DataConfig(d=8, k_maj=4, k_min=4, n_corr=1),
            "k_maj + k_min + n_corr must be <= d",
        ),
        (lambda: DataConfig(k_maj=0, k_min=0), "k_maj + k_min must be >= 1"),
        (lambda: DataConfig(seq_len=2.5), "seq_len must be an integer (got 2.5)"),
        (lambda: DataConfig(rho="ten"), "rho must be a number (got 'ten')"),
        (lambda: DataConfig(rho=True), "rho must be a number, not a boolean"),
        (lambda: DataConfig(rho=float("nan")), "rho must be finite"),
        (lambda: ModelConfig(m=0), "m must be >= 1 (got 0)"),
        (lambda: ModelConfig(bias="cosine"), "bias must be one of 'ramp', 'constant', 'none'"),
        (lambda: ModelConfig(train_attention="maybe"), "train_attention must be a boolean"),
        (lambda: TrainConfig(lr=0), "lr must be > 0 (got 0.0)"),
        (lambda: TrainConfig(tau=-0.1), "tau must be > 0 (got -0.1)"),
        (lambda: TrainConfig(batch=1), "batch must be >= 2 (got 1)"),
        (lambda: PruneConfig(rate=1.0), "rate must be < 1 (got 1.0)"),
        (lambda: PruneConfig(basis="pca"), "basis must be one of 'coordinate', 'feature'"),
        (lambda: RunSpec(seed=-1), "seed must be >= 0 (got -1)"),
        (lambda: RunSpec(data={"rho": 2}), "data must be a DataConfig"),
    ],
)
def test_bad_values_raise_named_messages(make, message):
    with pytest.raises(ConfigError) as err:
        make()
    assert message in str(err.value)


def test_papermill_strings_are_coerced():
    cfg = DataConfig(rho="4", d="32", seq_len="8.0")
    assert (cfg.rho, cfg.d, cfg.seq_len) == (4.0, 32, 8)
    assert isinstance(cfg.d, int) and isinstance(cfg.rho, float)
    assert ModelConfig(train_attention="true").train_attention is True
    assert RunSpec(seed="3").seed == 3


def test_replace_validates_and_roundtrips():
    spec = RunSpec(DataConfig(rho=2), ModelConfig(m=16), TrainConfig(steps=5), seed=7)
    assert RunSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(ConfigError, match="rho must be >= 1"):
        spec.data.replace(rho=0.1)
