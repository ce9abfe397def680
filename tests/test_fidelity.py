"""The fidelity levers: typed settings, the pruning schedule, shared-statistics BN, weight norm,
eval-mode threshold calibration, --init-from and --teacher."""
import json
import math

import pytest
import torch

from leanrnn.nn import LeanLSTM
from leanrnn.train import ConfigError, TrainConfig, Trainer, load_run
from leanrnn.train.trainer import init_from

TINY = dict(task="char-lm", max_chars=6000, hidden=16, embed=8, batch=4, seq_len=10, threads=1, checkpoint_every=50)


@pytest.mark.parametrize("bad, msg", [
    ({"batch_norm": "no"}, "batch_norm='no' must be true or false"),
    ({"state_sparsity": "0.9"}, "state_sparsity='0.9' must be a number"),
    ({"hidden": 4.9}, "hidden=4.9 must be an integer"),
    ({"hidden": True}, "hidden=True must be an integer"),
    ({"lr": float("inf")}, "must be a finite number"),
    ({"prune_schedule": "cubic"}, "needs prune_end > prune_start"),
    ({"bn_stats": "global"}, "use one of step, shared"),
    ({"batch_norm": True, "weight_norm": True}, "alternatives"),
    ({"distill_weight": 1.5}, "distill_weight=1.5"),
    ({"init_rescale": True, "init_from": "runs/x", "weights": "ternary"}, "init_rescale .* needs --init-from"),
    ({"clip_latent": True}, "clip_latent .* needs --weights binary or --weights ternary"),
    ({"lr_schedule": "cosine"}, "lr_schedule='cosine' needs lr_final"),
    ({"lr_schedule": "linear", "lr_final": 1e-4}, "use one of epoch, step, cosine"),
])
def test_recipe_values_are_type_checked(bad, msg):
    with pytest.raises(ConfigError, match=msg):
        TrainConfig.from_dict(bad)


def test_cubic_schedule_ramps_between_start_and_end():
    cfg = TrainConfig(state_sparsity=0.9, prune_schedule="cubic", prune_start=0.2, prune_end=0.6)
    assert cfg.prune_ramp(0.0) == 0.0 and cfg.prune_ramp(0.2) == 0.0
    assert cfg.prune_ramp(0.4) == pytest.approx(1 - 0.5 ** 3) and cfg.prune_ramp(0.6) == 1.0 == cfg.prune_ramp(1.0)
    lin = TrainConfig(prune_schedule="linear", prune_start=0.0, prune_end=0.5)
    assert lin.prune_ramp(0.25) == pytest.approx(0.5)
    assert TrainConfig().prune_ramp(0.0) == 1.0  # constant: the target from the first step


def test_learning_rate_schedules_start_at_lr_and_end_at_lr_final():
    kw = dict(lr=1e-2, lr_final=1e-3, epochs=4)
    ep, st, cos = (TrainConfig(lr_schedule=k, **kw) for k in ("epoch", "step", "cosine"))
    assert [ep.lr_at(e, 0.3) for e in range(4)] == pytest.approx([1e-2 * 0.1 ** (e / 4) for e in range(4)])
    assert ep.lr_at(0, 0.2) == ep.lr_at(0, 0.0)  # per epoch: flat within one
    assert st.lr_at(0, 0.0) == pytest.approx(1e-2) and st.lr_at(0, 1.0) == pytest.approx(1e-3)
    assert st.lr_at(0, 0.5) == pytest.approx(1e-2 * 0.1 ** 0.5)  # within one epoch, too
    assert cos.lr_at(0, 0.0) == pytest.approx(1e-2) and cos.lr_at(3, 1.0) == pytest.approx(1e-3)
    assert cos.lr_at(1, 0.5) == pytest.approx(5.5e-3)
    assert TrainConfig(lr=3e-3).lr_at(2, 0.9) == 3e-3  # no lr_final: constant


def test_per_step_decay_reaches_the_optimizer(tmp_path):
    kw = dict(TINY, data="pystdlib", epochs=1, steps_per_epoch=6, checkpoint_every=3, lr=1e-2, lr_final=1e-3,
              lr_schedule="step")
    Trainer(TrainConfig(**kw), tmp_path / "a", progress=False, log=lambda *a: None).run()
    rows = [json.loads(x) for x in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    assert rows[0]["lr"] == pytest.approx(1e-2 * 0.1 ** (5 / 6))  # the last step's rate, inside one epoch


def test_shared_bn_keeps_one_row_and_streams_past_training_length():
    torch.manual_seed(0)
    lstm = LeanLSTM(5, 12, weights="ternary", batch_norm=True, bn_stats="shared")
    for _ in range(3):
        lstm(torch.randn(20, 8, 5))
    bn = lstm.layers[0].bn_hh
    assert bn.running_mean.shape == (1, 48) and bn.running_var.shape == (1, 48)
    lstm.eval()
    x = torch.randn(50, 2, 5)
    out, _ = lstm(x)
    # Time-independent: running the second half from the carried state gives the same outputs.
    o1, st = lstm(x[:25])
    o2, _ = lstm(x[25:], st)
    assert torch.allclose(torch.cat([o1, o2]), out, atol=1e-6)
    # Per-step statistics (a run given to --init-from) load pooled into the shared row.
    step = LeanLSTM(5, 12, weights="ternary", batch_norm=True)
    step(torch.randn(20, 8, 5))
    lstm.load_state_dict(step.state_dict())
    assert lstm.layers[0].bn_hh.running_mean.shape == (1, 48)


def test_weight_norm_rows_have_their_gain_and_export_folds_them():
    torch.manual_seed(0)
    lstm = LeanLSTM(6, 10, weights="ternary", weight_norm=True).eval()
    lay = lstm.layers[0]
    w = lstm._weight(lstm.weight_hh_l0, lay.wn_hh)
    nz = w.abs().sum(1) > 0
    assert torch.allclose(w.norm(dim=1)[nz], lay.wn_hh[nz], rtol=1e-5)
    d = lstm.quantized_weights()[0]
    assert d["batch_norm"] is None and d["weight_hh"]["scale"].shape == (40,)
    assert torch.allclose(d["weight_hh"]["codes"].float() * d["weight_hh"]["scale"][:, None], w, atol=1e-6)
    out, _ = lstm(torch.randn(7, 6))
    assert torch.isfinite(out).all()


def test_calibration_gives_the_target_zeros_in_eval_mode():
    torch.manual_seed(0)
    lstm = LeanLSTM(8, 64, weights="ternary", batch_norm=True, state_sparsity=0.9)
    x = torch.randn(30, 16, 8)
    for _ in range(5):  # a short training: thresholds set from training-mode states
        lstm(x)
    lstm.calibrate_pruning(lambda: lstm(x))
    lstm.eval()
    lstm.reset_state_stats()
    lstm(x)
    assert 0.9 <= lstm.state_stats()[0] < 0.93


def _train(tmp_path, name, **kw):
    cfg = TrainConfig(**{**TINY, "epochs": 1, "steps_per_epoch": 6, **kw})
    Trainer(cfg, tmp_path / name, progress=False, log=lambda *a: None).run()
    return [json.loads(x) for x in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]


def test_init_from_and_teacher_and_schedule(tmp_path):
    _train(tmp_path, "fp")
    _, fp, vocab = load_run(tmp_path / "fp")
    # Fine-tune: a ternary, weight-normalized, pruned model starts from the fp run's weights.
    rows = _train(tmp_path, "ft", weights="ternary", weight_norm=True, state_sparsity=0.8,
                  init_from=str(tmp_path / "fp"), teacher=str(tmp_path / "fp"), distill_weight=0.5, distill_temp=2.0,
                  prune_schedule="cubic", prune_start=0.0, prune_end=0.5)
    assert math.isfinite(rows[0]["valid_bpc"]) and rows[0]["valid_state_sparsity"] >= 0.78
    _, ft, _ = load_run(tmp_path / "ft", "checkpoint")
    assert ft.lstm.layers[0].pruner.threshold > 0
    # The copy itself: every core tensor equal to the source's, the extra parts kept.
    from leanrnn.train.trainer import build_model
    m = build_model(TrainConfig(**{**TINY, "weights": "ternary", "batch_norm": True}), len(vocab))
    kept = init_from(m, tmp_path / "fp", vocab)
    assert torch.equal(m.lstm.weight_hh_l0, fp.lstm.weight_hh_l0) and torch.equal(m.decoder.weight, fp.decoder.weight)
    assert any(".bn_" in k for k in kept)
    # Weight-norm gains the fp run lacks start at the loaded rows' norms: the model computes what it did.
    wn = build_model(TrainConfig(**{**TINY, "weight_norm": True}), len(vocab))
    init_from(wn, tmp_path / "fp", vocab)
    assert torch.allclose(wn.lstm.layers[0].wn_hh, fp.lstm.weight_hh_l0.norm(dim=1))
    x = torch.randint(0, len(vocab), (7, 2))
    assert torch.allclose(wn.eval()(x)[0], fp(x)[0], atol=1e-5)


def test_distilled_runs_report_the_cross_entropy_as_train_bpc(tmp_path):
    """A student that starts as its teacher has a KL term near 0; its objective (train_loss) is then
    far below its cross entropy, which is what train_bpc must report."""
    _train(tmp_path, "fp")
    rows = _train(tmp_path, "kd", init_from=str(tmp_path / "fp"), teacher=str(tmp_path / "fp"), distill_weight=1.0,
                  lr=1e-6)
    assert rows[0]["train_bpc"] > 2.0  # a tiny model after 6 steps: several bits per character
    assert rows[0]["train_loss"] < 0.01 * rows[0]["train_bpc"] * math.log(2)


@pytest.mark.parametrize("norm", ["batch_norm", "weight_norm"])
def test_init_rescale_fits_trained_weights_to_the_ternary_threshold(tmp_path, norm):
    """A trained fp matrix ternarizes to a sign pattern as loaded; fitted, about 40% of its codes are
    zero (the TWN rule). Fitting multiplies each matrix by one positive factor, which the norm after
    the product removes."""
    from leanrnn.quant import glorot_scale
    from leanrnn.train.trainer import build_model
    _train(tmp_path, "fp", **{norm: True})
    ck = torch.load(tmp_path / "fp" / "best.pt", weights_only=True)
    for k in ("lstm.weight_ih_l0", "lstm.weight_hh_l0"):  # as large against a as a long run leaves them
        w = ck["model"][k]
        w.mul_(10 * glorot_scale(w) / w.std())
    torch.save(ck, tmp_path / "fp" / "best.pt")
    _, fp, vocab = load_run(tmp_path / "fp")
    cfg = TrainConfig(**{**TINY, "weights": "ternary", "stochastic": False, norm: True})
    zeros = {}
    for rescale in (False, True):
        m = build_model(cfg, len(vocab))
        init_from(m, tmp_path / "fp", vocab, rescale=rescale)
        w, src = m.lstm.weight_hh_l0.detach(), fp.lstm.weight_hh_l0.detach()
        zeros[rescale] = float((w.abs() <= glorot_scale(w) / 3).float().mean())
        factor = float(w.norm() / src.norm())
        assert torch.allclose(w, src * factor, rtol=1e-5, atol=0) and (factor < 1) == rescale
        if rescale:
            assert 0.7 * float(w.abs().mean()) == pytest.approx(glorot_scale(w) / 3, rel=1e-5)
    assert zeros[False] < 0.1 and 0.3 < zeros[True] < 0.55


@pytest.mark.parametrize("weights", ["binary", "ternary"])
def test_clip_latent_keeps_every_quantized_weight_in_range(tmp_path, weights):
    """With --clip-latent no latent weight of a quantized matrix ends outside [-a, a]; without it, a
    learning rate this large drives many past it. The bias and the decoder are not clipped."""
    from leanrnn.quant import glorot_scale
    outside = {}
    for clip in (False, True):
        _train(tmp_path, f"c{clip}", weights=weights, batch_norm=True, clip_latent=clip, lr=0.05, clip=0.0)
        _, m, _ = load_run(tmp_path / f"c{clip}", "checkpoint")
        ws = [m.lstm.weight_ih_l0, m.lstm.weight_hh_l0]
        outside[clip] = max(float((w.abs() > glorot_scale(w) * (1 + 1e-6)).float().mean()) for w in ws)
        if clip:
            assert m.decoder.weight.abs().max() > glorot_scale(m.lstm.weight_hh_l0)
    assert outside[True] == 0.0 and outside[False] > 0.05


def test_best_model_is_never_one_with_fewer_zeros_than_promised(tmp_path):
    # The target ramps until 90% of training: the first epoch ends short of it and cannot be best.pt,
    # although at this tiny learning rate it scores better (fewer zeros, the same weights).
    rows = _train(tmp_path, "ramp", epochs=2, steps_per_epoch=4, state_sparsity=0.8, prune_schedule="linear",
                  prune_start=0.0, prune_end=0.9, lr=1e-6)
    assert rows[0]["valid_bpc"] < rows[1]["valid_bpc"] and rows[0]["valid_state_sparsity"] < 0.7
    ck = torch.load(tmp_path / "ramp" / "best.pt", weights_only=True)
    assert ck["epoch"] == 2
