"""The training loop behind ``leanrnn train``: epochs of truncated BPTT (language models) or
minibatches (sequence classification), atomic checkpoints, exact resume, metrics and plots.

Resume is exact for a deterministic configuration: a checkpoint holds the model, optimizer,
torch RNG state, the position in the epoch, the hidden states carried between LM segments
(the student's and the teacher's), the epoch's running sums and every finished epoch's metrics row,
so a run killed at any moment and resumed from its last checkpoint takes the same steps as one that
was never interrupted, and ``metrics.jsonl`` (rewritten from the checkpoint) holds one row per epoch.

Fidelity levers (each a ``TrainConfig`` field): a gradual pruning schedule (the zero-state target
ramps between two fractions of training), ``init_from`` (fine-tune a trained run into quantization
and/or pruning), ``teacher`` (distillation: ``(1-w) CE + w T^2 KL(p_teacher^T || p_student^T)``) and
eval-mode threshold calibration before each evaluation, so a model ships with the zeros it promises,
and a learning rate that decays per epoch or per step (``TrainConfig.lr_at``: a function of the
position, set before every step, so there is no scheduler state to save).

Device (``--device``): the model, the teacher and each batch live on the CPU or one GPU; the data
stays on the CPU until a batch is taken, and checkpoints hold CPU-loadable tensors, so a run started on
a GPU resumes, evaluates and exports on a machine without one (bit-exactly only on the device it
started on: the GPU draws its own random numbers).

Distributed (``torchrun``): DDP averages gradients; the buffers each rank updates from its own batch
(pruning thresholds, batch-norm running statistics) are averaged across ranks after every step, so all
ranks hold one model; rank 0 evaluates, logs and saves, and shares its result.
"""
from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ..data import load_for_task
from ..data.sources import IMAGE_CLASSES
from ..facts import METRIC, STORED_BITS
from ..quant import ternary_fit
from ..tasks import LanguageModel, SeqClassifier
from .checkpoint import CheckpointError, load_checkpoint, save_atomic
from .config import TrainConfig
from .lm import batchify, device_of, evaluate_lm

HIGHER_IS_BETTER = {"bpc": False, "perplexity": False, "accuracy": True}


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. a non-finite loss); the message names the fix."""


def load_data(cfg: TrainConfig):
    return load_for_task(cfg.task, cfg.data, cfg.data_dir, cfg.max_chars, cfg.vocab_size, cfg.permute, cfg.seed,
                         cfg.max_examples)


def build_model(cfg: TrainConfig, vocab_size: int | None = None):
    try:
        return _build_model(cfg, vocab_size)
    except (RuntimeError, MemoryError) as e:
        if not isinstance(e, MemoryError) and "alloc" not in str(e):
            raise
        raise TrainingError(f"a model of hidden={cfg.hidden}, embed={cfg.embed}, layers={cfg.layers}"
                            + ("" if vocab_size is None else f" and {vocab_size} tokens") +
                            " does not fit in this machine's memory; lower --hidden, --embed or --layers") from None


def _build_model(cfg: TrainConfig, vocab_size: int | None):
    kw = dict(weights=cfg.weights, stochastic=cfg.stochastic, batch_norm=cfg.batch_norm, bn_stats=cfg.bn_stats,
              weight_norm=cfg.weight_norm, state_sparsity=cfg.state_sparsity, prune_output=cfg.prune_output,
              prune_grad=cfg.prune_grad)
    if cfg.task == "classify":
        return SeqClassifier(1, cfg.hidden, IMAGE_CLASSES, num_layers=cfg.layers, bidirectional=cfg.bidirectional, **kw)
    return LanguageModel(vocab_size, cfg.hidden, num_layers=cfg.layers, embed_size=cfg.embed,
                         dropout=cfg.dropout, **kw)


def _to(x, dev):
    """Tensors (in tuples, as carried LM states are) moved to ``dev``."""
    if isinstance(x, (tuple, list)):
        return type(x)(_to(t, dev) for t in x)
    return x.to(dev) if isinstance(x, torch.Tensor) else x


def model_bits(model) -> dict:
    """Weight memory: the LSTM's matrices as a .lrnn file stores them, everything else at fp32."""
    lstm = model.lstm
    mats = sum(p.numel() for n, p in lstm.named_parameters() if n.startswith("weight_"))
    rest = sum(p.numel() for p in model.parameters()) - mats
    return {"lstm_weight_bits": round(mats * STORED_BITS[lstm.weights]), "lstm_weight_bits_fp32": mats * 32,
            "other_bits": rest * 32}


@torch.no_grad()
def evaluate_classifier(model, x, y, batch: int = 256) -> dict:
    model.eval()
    dev = device_of(model)
    correct, nll = 0, 0.0
    for i in range(0, len(x), batch):
        xb, yb = x[i: i + batch].to(dev), y[i: i + batch].to(dev)
        logits = model(xb)
        nll += F.cross_entropy(logits, yb, reduction="sum").item()
        correct += (logits.argmax(1) == yb).sum().item()
    return {"accuracy": correct / len(x), "loss": nll / len(x), "samples": len(x)}


def evaluate_split(cfg: TrainConfig, model, data, split: str) -> dict:
    """The papers' protocol on a whole split, in eval mode, with the measured state sparsity."""
    lstm = model.lstm
    lstm.reset_state_stats()
    if cfg.task == "classify":
        m = evaluate_classifier(model, *data[split])
    else:
        r = evaluate_lm(model, getattr(data, split), batch=cfg.eval_batch, seq_len=cfg.seq_len)
        m = {"bpc": r["bits_per_token"], "perplexity": r["perplexity"], "accuracy": r["accuracy"],
             "loss": r["bits_per_token"] * math.log(2), "tokens": r["tokens"]}
    sp = [s for s in lstm.state_stats() if not math.isnan(s)]
    m["state_sparsity"] = sum(sp) / len(sp) if sp else 0.0
    return m


@torch.no_grad()
def calibrate(cfg: TrainConfig, model, data, segments: int = 20, images: int = 1024) -> None:
    """Set the pruning thresholds from eval-mode states on the start of the training split."""
    model.eval()
    dev = device_of(model)
    if cfg.task == "classify":
        x = data["train"][0][:images].to(dev)
        model.lstm.calibrate_pruning(lambda: model(x))
        return
    streams = batchify(data.train, min(cfg.batch, max(1, data.train.numel() // (cfg.seq_len + 1)))).to(dev)

    def run():
        state = None
        for k in range(min(segments, (streams.shape[0] - 1) // cfg.seq_len)):
            _, state = model(streams[k * cfg.seq_len: (k + 1) * cfg.seq_len], state)
    model.lstm.calibrate_pruning(run)


def load_run(run_dir: str | Path, which: str = "best"):
    """Rebuild a trained model from a run directory: ``(cfg, model, vocab)`` in eval mode."""
    run_dir = Path(run_dir)
    path = run_dir / f"{which}.pt"
    if which == "best" and not path.exists():
        path = run_dir / "checkpoint.pt"
    if which == "checkpoint" and not path.exists() and (run_dir / "best.pt").exists():
        raise CheckpointError(f"{run_dir} holds no checkpoint.pt (the last checkpoint), only best.pt; "
                              "use --checkpoint best")
    ck = load_checkpoint(path)
    cfg = TrainConfig.from_dict(ck["config"])
    vocab = ck.get("vocab")
    model = build_model(cfg, vocab_size=None if vocab is None else len(vocab))
    model.load_state_dict(ck["model"])
    model.eval()
    return cfg, model, vocab


def check_vocab(run_dir: str | Path, vocab, data) -> None:
    """A run's vocabulary must be its data's now: a data file changed since training gives other
    token ids (out of range, or a meaningless metric)."""
    now = getattr(data, "vocab", None)
    if vocab is None or now is None or list(now) == list(vocab):
        return
    new = sorted(set(now) - set(vocab))
    gone = sorted(set(vocab) - set(now))
    what = (f"{len(new)} token(s) it was not trained on, e.g. {new[0]!r}" if new else
            f"lost {len(gone)} token(s), e.g. {gone[0]!r}" if gone else "the same tokens in another order")
    raise TrainingError(f"the data of {run_dir} has changed since it was trained: its vocabulary now has {what}; "
                        "evaluate on the data it was trained on (restore it), or retrain on the new data")


def init_from(model, run_dir: str | Path, vocab, rescale: bool = False) -> list[str]:
    """Copy a trained run's weights into ``model``: every tensor both have with the same shape. The
    LSTM matrices, biases, embedding and output layer must all be there; normalization and pruning
    parts the source lacks keep their initial values. ``rescale``: fit each LSTM matrix a norm
    follows to the ternary threshold (``quant.ternary_fit``; with batch norm the projection
    ``W_hr``, which none follows, keeps its scale). Returns the names that were not copied."""
    _, src, src_vocab = load_run(run_dir)
    if vocab != src_vocab:
        raise TrainingError(f"--init-from {run_dir}: its vocabulary differs from this run's data; "
                            "use a run trained on the same data and settings")
    theirs, mine = src.state_dict(), model.state_dict()
    core = [k for k, _ in model.named_parameters() if ".layers." not in k]
    bad = [k for k in core if k not in theirs or theirs[k].shape != mine[k].shape]
    if bad:
        raise TrainingError(f"--init-from {run_dir}: {bad[0]} is missing or has another shape there; "
                            "use a run with the same --hidden, --layers, --embed and task")
    take = {k: v for k, v in theirs.items() if k in mine and (v.shape == mine[k].shape or ".bn_" in k)}
    # weight-norm gains the source lacks are left out: LeanLSTM sets them from the loaded rows
    model.load_state_dict({**{k: v for k, v in mine.items() if ".wn_" not in k}, **take})
    if rescale:
        lstm = model.lstm
        with torch.no_grad():
            for name, w in lstm.named_parameters():
                if name.startswith(("weight_ih_l", "weight_hh_l")) or (name.startswith("weight_hr_l")
                                                                       and lstm.weight_norm):
                    w.mul_(ternary_fit(w))
    return sorted(set(mine) - set(take))


@dataclass
class _Run:
    """Everything one training run holds between steps."""
    model: Any
    net: Any
    opt: Any
    data: Any
    vocab: list | None
    teacher: Any = None
    lm_state: Any = None
    teacher_state: Any = None
    pos: dict = field(default_factory=dict)
    plan_len: int = 0


class Trainer:
    def __init__(self, cfg: TrainConfig, out: str | Path, progress: bool = True, log: Callable = print):
        self.cfg = cfg.validate()
        self.out = Path(out)
        self.progress = progress
        self.log = log
        self.rank, self.world = 0, 1
        self._owns_group = False

    # -- distributed ------------------------------------------------------------------------------
    def _setup_distributed(self):
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world > 1:
            import torch.distributed as dist
            if not dist.is_initialized():
                dist.init_process_group("gloo")  # the trainer runs on the CPU
                self._owns_group = True
            self.rank, self.world = dist.get_rank(), dist.get_world_size()
            if self.rank:
                self.log = lambda *a, **k: None  # one log: rank 0's
            if self.cfg.batch % self.world:
                raise TrainingError(f"batch={self.cfg.batch} must be divisible by the {self.world} processes")

    def _device(self) -> torch.device:
        dev = torch.device(self.cfg.device)
        if dev.type == "cuda":
            if not torch.cuda.is_available():
                raise TrainingError(f"device={self.cfg.device!r}: this torch ({torch.__version__}) sees no CUDA GPU; "
                                    "train with --device cpu, or install a CUDA build of torch on a GPU machine")
            if (dev.index or 0) >= torch.cuda.device_count():
                raise TrainingError(f"device={self.cfg.device!r}: there are {torch.cuda.device_count()} GPU(s); "
                                    "use cuda:0 to cuda:N-1")
            if self.world > 1:
                raise TrainingError("torchrun with --device cuda is not supported yet (gradients are averaged over "
                                    "gloo on the CPU); train on one GPU, or on the CPU with torchrun")
        return dev

    @property
    def main(self) -> bool:
        return self.rank == 0

    @torch.no_grad()
    def _sync_buffers(self, model) -> None:
        """Average the floating buffers (thresholds, BN running statistics) over the ranks."""
        if self.world == 1:
            return
        import torch.distributed as dist
        for b in model.buffers():
            if b.is_floating_point() and b.numel():
                dist.all_reduce(b)
                b /= self.world

    @torch.no_grad()
    def _check_ranks_agree(self, model) -> None:
        """All ranks must hold the same model (DDP syncs gradients, ``_sync_buffers`` the rest)."""
        if self.world == 1:
            return
        import torch.distributed as dist
        mine = torch.stack([t.double().sum() for t in model.state_dict().values() if t.is_floating_point()])
        low, high = mine.clone(), mine.clone()
        dist.all_reduce(low, op=dist.ReduceOp.MIN)
        dist.all_reduce(high, op=dist.ReduceOp.MAX)
        if not torch.equal(low, high):
            raise TrainingError("the processes hold different models (a buffer or parameter is not synchronized); "
                                "this is a bug: please report it with the command line")

    def _share(self, obj):
        if self.world == 1:
            return obj
        import torch.distributed as dist
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    # -- the run ----------------------------------------------------------------------------------
    def run(self, resume: bool = False, on_start: Callable[[], None] | None = None) -> dict:
        self._setup_distributed()
        try:
            if self.cfg.threads:
                torch.set_num_threads(self.cfg.threads)
            self.dev = self._device()
            r = self._setup(resume, on_start)
            last = r.pos["rows"][-1] if r.pos["rows"] else {}
            for epoch in range(r.pos["epoch"], self.cfg.epochs):
                if self._stop_early(r):
                    break
                self._epoch(r, epoch)
                last = self._end_epoch(r, epoch)
            if self.main:
                from .plots import plot_curves
                plot_curves(self.out)
            self._leave_group(barrier=True)
            return last
        finally:
            self._leave_group(barrier=False)

    def _stop_early(self, r: _Run) -> bool:
        """Whether ``patience`` epochs in a row have ended without a better validation metric than the
        best (read from the epoch rows, so a resumed run given ``patience`` later stops at once). The
        last row is marked ``stopped_early``: that is what makes the run count as finished."""
        rows, best, cfg = r.pos["rows"], r.pos["best"], self.cfg
        if not rows or rows[-1].get("stopped_early"):
            return bool(rows)
        if not cfg.patience or best is None:
            return False
        key = f"valid_{METRIC[cfg.task]}"
        since = len(rows) - 1 - max((i for i, row in enumerate(rows) if row.get(key) == best), default=len(rows) - 1)
        if since < cfg.patience:
            return False
        rows[-1]["stopped_early"] = True
        self.log(f"stopping early: {since} epochs without a better {key} than {best:.4f} (epoch "
                 f"{len(rows) - since}); best.pt holds that epoch")
        self._save(r, r.pos)  # every rank: the save gathers each rank's state
        return True

    def _leave_group(self, barrier: bool) -> None:
        """Close the process group this trainer opened. A rank that exits with gloo's group still open
        while another rank is busy (rank 0 drawing the curves) can abort at interpreter exit."""
        if not self._owns_group:
            return
        import torch.distributed as dist
        self._owns_group = False
        if barrier:
            dist.barrier()
        dist.destroy_process_group()

    def _setup(self, resume: bool, on_start) -> _Run:
        cfg = self.cfg
        ck_path = self.out / "checkpoint.pt"
        if resume:
            ck = load_checkpoint(ck_path)
        elif ck_path.exists():
            raise TrainingError(f"{self.out} already holds a run; continue it with --resume {self.out} "
                                "or choose another --out")
        torch.manual_seed(cfg.seed + self.rank)
        data = load_data(cfg)
        if cfg.task != "classify":
            short = min(("valid", data.valid.numel()), ("test", data.test.numel()), key=lambda x: x[1])
            if short[1] // cfg.eval_batch < 2:
                raise TrainingError(f"the {short[0]} split of {cfg.data} has {short[1]} tokens, too few for "
                                    f"eval_batch={cfg.eval_batch} streams of 2 or more; give --eval-batch "
                                    f"{max(1, short[1] // 2)} or less")
        vocab = None if cfg.task == "classify" else data.vocab
        model = build_model(cfg, vocab_size=None if vocab is None else len(vocab))
        if cfg.init_from and not resume:
            kept = init_from(model, cfg.init_from, vocab, rescale=cfg.init_rescale)
            self.log(f"initialized from {cfg.init_from}" + (f" ({len(kept)} tensors kept their initial values)"
                                                           if kept else ""))
        model.to(self.dev)
        params = list(model.parameters())
        opt = (torch.optim.Adam(params, lr=cfg.lr) if cfg.optimizer == "adam"
               else torch.optim.SGD(params, lr=cfg.lr, momentum=0.9))
        teacher = None
        if cfg.teacher:
            _, teacher, t_vocab = load_run(cfg.teacher)
            teacher.to(self.dev)
            if t_vocab != vocab:
                raise TrainingError(f"--teacher {cfg.teacher} was trained on another vocabulary; use a run on "
                                    "the same data")
        net = model if self.world == 1 else torch.nn.parallel.DistributedDataParallel(model)
        r = _Run(model, net, opt, data, vocab, teacher,
                 pos={"epoch": 0, "batch": 0, "step": 0, "sums": self._new_sums(), "best": None, "rows": []})
        if resume:
            model.load_state_dict(ck["model"])
            model.to(self.dev)  # buffers a state_dict resizes (per-step BN statistics) are made anew
            opt.load_state_dict(ck["optimizer"])
            ranks = ck.get("ranks") or [(ck["rng"], ck.get("lm_state"), ck.get("teacher_state"))]
            if len(ranks) != self.world:
                raise TrainingError(f"{self.out} was trained by {len(ranks)} process(es); resume it with as many "
                                    f"(torchrun --nproc_per_node {len(ranks)})")
            rng, lm_state, teacher_state, *gpu = ranks[self.rank]
            r.lm_state, r.teacher_state = _to(lm_state, self.dev), _to(teacher_state, self.dev)
            torch.set_rng_state(rng)
            if gpu and gpu[0] is not None and self.dev.type == "cuda" and cfg.device == ck["config"].get("device"):
                torch.cuda.set_rng_state(gpu[0], self.dev)
            r.pos = {"rows": self._old_rows(ck["pos"]), **ck["pos"]}
            # a checkpoint whose sums predate "ce": without a teacher the objective is the cross entropy
            r.pos["sums"].setdefault("ce", r.pos["sums"]["loss"])
            self.log(f"resuming {self.out} at epoch {r.pos['epoch'] + 1}, batch {r.pos['batch']} "
                     f"(step {r.pos['step']})")
            if self.main:
                self._write_logs(r.pos)
        elif self.main:
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=1))
            if on_start:
                on_start()
        r.plan_len = len(self._plan(0, data))
        if r.plan_len == 0 and cfg.task == "classify":
            raise TrainingError(f"the training split of {cfg.data} has {len(data['train'][0])} sequence(s), fewer "
                                f"than one batch of {cfg.batch}; lower --batch or raise --max-examples")
        if r.plan_len == 0:
            raise TrainingError(f"the training split of {cfg.data} gives no step of batch {cfg.batch} x seq_len "
                                f"{cfg.seq_len}; lower --batch or --seq-len, or use more data")
        self.log(f"{cfg.task} on {cfg.data}: weights={cfg.weights} batch_norm={cfg.batch_norm} "
                 f"state_sparsity={cfg.state_sparsity} hidden={cfg.hidden} -> {self.out}")
        return r

    def _epoch(self, r: _Run, epoch: int) -> None:
        cfg, pos = self.cfg, r.pos
        plan = self._plan(epoch, r.data)
        total = cfg.epochs * r.plan_len
        bar = self._bar(len(plan), pos["batch"], epoch)
        t0, tok0 = time.perf_counter(), pos["sums"]["tokens"]
        tc = t0  # time since epoch_seconds was last brought up to date (each checkpoint carries it)
        for b in range(pos["batch"], len(plan)):
            r.net.train()
            r.model.lstm.set_prune_ramp(cfg.prune_ramp(pos["step"] / total))
            lr = cfg.lr_at(epoch, pos["step"] / total)
            for g in r.opt.param_groups:
                g["lr"] = lr
            r.model.lstm.reset_state_stats()
            loss, ce, ntok = self._step(r, plan[b])
            self._sync_buffers(r.model)
            sp = [x for x in r.model.lstm.state_stats() if not math.isnan(x)]
            s = pos["sums"]
            s["loss"] += loss * ntok
            s["ce"] += ce * ntok
            s["tokens"] += ntok
            s["sparsity"] += (sum(sp) / len(sp) if sp else 0.0) * ntok
            pos["step"] += 1
            pos["batch"] = b + 1
            if self.main and pos["step"] % cfg.log_every == 0:
                with open(self.out / "steps.jsonl", "a") as f:
                    f.write(json.dumps({"step": pos["step"], "epoch": epoch + 1, "train_loss": loss,
                                        "state_sparsity": sp[0] if sp else 0.0}) + "\n")
            if bar is not None:
                bar.update(1)
                rate = (s["tokens"] - tok0) * self.world / max(time.perf_counter() - t0, 1e-9)
                bar.set_postfix(loss=f"{loss:.3f}", sparsity=f"{s['sparsity'] / s['tokens']:.2f}", tok_s=f"{rate:.0f}")
            if pos["step"] % cfg.checkpoint_every == 0:
                now = time.perf_counter()
                pos["epoch_seconds"], tc = pos.get("epoch_seconds", 0.0) + now - tc, now
                self._save(r, pos)
        if bar is not None:
            bar.close()
        pos["epoch_seconds"] = pos.get("epoch_seconds", 0.0) + time.perf_counter() - tc

    def _end_epoch(self, r: _Run, epoch: int) -> dict:
        cfg, pos = self.cfg, r.pos
        metric = METRIC[cfg.task]
        if cfg.state_sparsity and cfg.prune_calibrate:
            calibrate(cfg, r.model, r.data)
            self._sync_buffers(r.model)
        self._check_ranks_agree(r.model)
        valid = self._share(evaluate_split(cfg, r.model, r.data, "valid") if self.main else None)
        s = pos["sums"]
        train_loss, train_ce = (s[k] / max(s["tokens"], 1) for k in ("loss", "ce"))
        # train_loss is the objective (with a teacher, cross entropy blended with the KL term); the metric
        # is the cross entropy's
        row = {"epoch": epoch + 1, "step": pos["step"], "lr": r.opt.param_groups[0]["lr"], "train_loss": train_loss,
               f"train_{metric}": (train_ce / math.log(2) if metric == "bpc" else
                                   math.exp(min(train_ce, 50)) if metric == "perplexity" else None),
               "train_state_sparsity": s["sparsity"] / max(s["tokens"], 1),
               f"valid_{metric}": valid[metric], "valid_state_sparsity": valid["state_sparsity"],
               "epoch_seconds": pos.get("epoch_seconds", 0.0), "device": self._device_name()}
        best = pos["best"]
        # While a pruning schedule is still ramping, the model has fewer zeros than promised: only epochs
        # that end at the full target may become best.pt.
        full = cfg.prune_ramp(pos["step"] / (cfg.epochs * r.plan_len)) >= 1.0
        better = full and (best is None or (valid[metric] > best if HIGHER_IS_BETTER[metric] else valid[metric] < best))
        if self.main and better:
            save_atomic({"config": cfg.to_dict(), "model": r.model.state_dict(), "vocab": r.vocab,
                         "epoch": epoch + 1, f"valid_{metric}": valid[metric]}, self.out / "best.pt")
        train_txt = (f"train loss {train_loss:.4f}" if metric == "accuracy"
                     else f"train {metric} {row[f'train_{metric}']:.4f}")
        self.log(f"epoch {epoch + 1}/{cfg.epochs}: {train_txt}, valid {metric} {valid[metric]:.4f}, "
                 f"state sparsity {valid['state_sparsity']:.3f}")
        r.lm_state = r.teacher_state = None
        r.pos = {"epoch": epoch + 1, "batch": 0, "step": pos["step"], "sums": self._new_sums(),
                 "best": valid[metric] if better else best, "rows": pos["rows"] + [row]}
        self._save(r, r.pos)
        return row

    def _device_name(self) -> str:
        return torch.cuda.get_device_name(self.dev) if self.dev.type == "cuda" else "cpu"

    def _save(self, r: _Run, pos: dict) -> None:
        ck_path = self.out / "checkpoint.pt"
        state = r.model.state_dict()
        if not all(torch.isfinite(t).all() for t in state.values() if t.is_floating_point()):
            raise TrainingError(f"the parameters became non-finite at step {pos['step']}; not saved, the last "
                                f"good checkpoint is {ck_path}. Lower --lr and resume with --resume")
        gpu_rng = torch.cuda.get_rng_state(self.dev) if self.dev.type == "cuda" else None
        mine = (torch.get_rng_state(), r.lm_state, r.teacher_state, gpu_rng)
        ranks = [mine]
        if self.world > 1:  # each rank's own RNG and carried states, so a resume is exact on every rank
            import torch.distributed as dist
            ranks = [None] * self.world
            dist.all_gather_object(ranks, mine)
        if self.main:
            save_atomic({"config": self.cfg.to_dict(), "model": state, "optimizer": r.opt.state_dict(),
                         "rng": mine[0], "pos": pos, "lm_state": r.lm_state,
                         "teacher_state": r.teacher_state, "ranks": ranks, "vocab": r.vocab}, ck_path)
            self._write_logs(pos)

    def _write_logs(self, pos: dict) -> None:
        """Make metrics.jsonl the checkpoint's epoch rows and drop step rows past the checkpoint, so a
        kill at any point never leaves a row twice after resume."""
        tmp = self.out / "metrics.jsonl.tmp"
        tmp.write_text("".join(json.dumps(row) + "\n" for row in pos["rows"]))
        os.replace(tmp, self.out / "metrics.jsonl")
        steps = self.out / "steps.jsonl"
        if steps.exists():
            rows = [x for x in steps.read_text().splitlines() if x.strip()]
            keep = [x for x in rows if json.loads(x)["step"] <= pos["step"]]
            if len(keep) < len(rows):
                steps.write_text("".join(x + "\n" for x in keep))

    def _old_rows(self, pos: dict) -> list:
        """Epoch rows of a checkpoint that predates rows in checkpoints: read back from metrics.jsonl."""
        p = self.out / "metrics.jsonl"
        if not p.exists():
            return []
        rows = [json.loads(x) for x in p.read_text().splitlines() if x.strip()]
        return [row for row in rows if row["epoch"] <= pos["epoch"]][: pos["epoch"]]

    # -- pieces -----------------------------------------------------------------------------------
    @staticmethod
    def _new_sums() -> dict:
        return {"loss": 0.0, "ce": 0.0, "tokens": 0, "sparsity": 0.0}

    def _plan(self, epoch: int, data) -> list:
        cfg = self.cfg
        if cfg.task == "classify":
            n = len(data["train"][0])
            g = torch.Generator().manual_seed(cfg.seed * 1000 + epoch)
            perm = torch.randperm(n, generator=g)
            plan = [perm[i: i + cfg.batch] for i in range(0, n - cfg.batch + 1, cfg.batch)]
        else:
            if data.train.numel() // cfg.batch < 2:
                return []
            self._streams = batchify(data.train, cfg.batch)[:, self.rank::self.world].to(self.dev)
            plan = list(range((self._streams.shape[0] - 1) // cfg.seq_len))
        return plan[: cfg.steps_per_epoch] if cfg.steps_per_epoch else plan

    def _loss(self, r: _Run, logits, y, teacher_logits) -> tuple[torch.Tensor, torch.Tensor]:
        """``(objective, cross entropy)``: with a teacher they differ, and only the second is bits/char."""
        V = logits.shape[-1]
        ce = F.cross_entropy(logits.reshape(-1, V), y.reshape(-1))
        if teacher_logits is None:
            return ce, ce
        T, w = self.cfg.distill_temp, self.cfg.distill_weight
        kl = F.kl_div(F.log_softmax(logits.reshape(-1, V) / T, -1),
                      F.log_softmax(teacher_logits.reshape(-1, V) / T, -1), log_target=True, reduction="batchmean")
        return (1 - w) * ce + w * T * T * kl, ce

    def _step(self, r: _Run, item) -> tuple[float, float, int]:
        cfg, pos = self.cfg, r.pos
        t_logits = None
        if cfg.task == "classify":
            idx = item[self.rank::self.world]
            x, y = r.data["train"][0][idx].to(self.dev), r.data["train"][1][idx].to(self.dev)
            logits = r.net(x)
            if r.teacher is not None:
                with torch.no_grad():
                    t_logits = r.teacher(x)
            ntok = len(idx)
        else:
            s = item * cfg.seq_len
            x = self._streams[s: s + cfg.seq_len]
            y = self._streams[s + 1: s + cfg.seq_len + 1].long()
            logits, state = r.net(x, r.lm_state)
            if r.teacher is not None:
                with torch.no_grad():
                    t_logits, t_state = r.teacher(x, r.teacher_state)
                r.teacher_state = tuple(t.detach() for t in t_state)
            ntok = y.numel()
            r.lm_state = tuple(t.detach() for t in state)
        loss, ce = self._loss(r, logits, y, t_logits)
        finite = torch.isfinite(loss.detach()).to(torch.int32)
        if self.world > 1:  # every rank stops together (the others would wait in the gradient all-reduce)
            import torch.distributed as dist
            dist.all_reduce(finite, op=dist.ReduceOp.MIN)
        if not finite:
            raise TrainingError(f"the loss became {loss.item()} at epoch {pos['epoch'] + 1}, step {pos['step'] + 1}; "
                                f"stopped without saving it, the last good checkpoint is {self.out / 'checkpoint.pt'}. "
                                "Lower --lr (or --clip) and resume with --resume")
        r.opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.clip:
            torch.nn.utils.clip_grad_norm_(r.net.parameters(), cfg.clip)
        r.opt.step()
        if cfg.clip_latent:
            r.model.lstm.clip_latent_()
        return loss.item(), ce.item(), ntok

    def _bar(self, total: int, initial: int, epoch: int):
        if not (self.progress and self.main):
            return None
        from tqdm.auto import tqdm
        return tqdm(total=total, initial=initial, desc=f"epoch {epoch + 1}/{self.cfg.epochs}", leave=False)
