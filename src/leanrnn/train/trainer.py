"""The training loop behind ``leanrnn train``: epochs of truncated BPTT (language models) or
minibatches (sequence classification), atomic checkpoints, exact resume, metrics and plots.

Resume is exact for a deterministic configuration: a checkpoint holds the model, optimizer,
scheduler, torch RNG state, the position in the epoch, the hidden state carried between LM segments
and the epoch's running sums, so a run killed at any moment and resumed from its last checkpoint
takes the same steps as one that was never interrupted.
"""
from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Callable, Optional

import torch
import torch.nn.functional as F

from ..data import load_images, load_text
from ..tasks import LanguageModel, SeqClassifier
from .checkpoint import load_checkpoint, save_atomic
from .config import TrainConfig
from .lm import batchify, evaluate_lm

METRIC = {"char-lm": "bpc", "word-lm": "perplexity", "classify": "accuracy"}
HIGHER_IS_BETTER = {"bpc": False, "perplexity": False, "accuracy": True}
_BITS = {"fp": 32, "binary": 1, "ternary": 2}


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. a non-finite loss); the message names the fix."""


def load_data(cfg: TrainConfig):
    if cfg.task == "classify":
        return load_images(cfg.data, cfg.data_dir, permute=cfg.permute, seed=cfg.seed)
    return load_text(cfg.data, "char" if cfg.task == "char-lm" else "word", cfg.data_dir, cfg.max_chars,
                     cfg.vocab_size)


def build_model(cfg: TrainConfig, vocab_size: Optional[int] = None, num_classes: int = 10, input_size: int = 1):
    kw = dict(weights=cfg.weights, stochastic=cfg.stochastic, batch_norm=cfg.batch_norm,
              state_sparsity=cfg.state_sparsity, prune_warmup=cfg.prune_warmup)
    if cfg.task == "classify":
        return SeqClassifier(input_size, cfg.hidden, num_classes, num_layers=cfg.layers, **kw)
    return LanguageModel(vocab_size, cfg.hidden, num_layers=cfg.layers, embed_size=cfg.embed,
                         dropout=cfg.dropout, **kw)


def model_bits(model) -> dict:
    """Weight memory: the LSTM's matrices at their code width, everything else at fp32."""
    lstm = model.lstm
    mats = sum(p.numel() for n, p in lstm.named_parameters() if n.startswith("weight_"))
    rest = sum(p.numel() for p in model.parameters()) - mats
    return {"lstm_weight_bits": mats * _BITS[lstm.weights], "lstm_weight_bits_fp32": mats * 32,
            "other_bits": rest * 32}


@torch.no_grad()
def evaluate_classifier(model, x, y, batch: int = 256) -> dict:
    model.eval()
    correct, nll = 0, 0.0
    for i in range(0, len(x), batch):
        logits = model(x[i: i + batch])
        nll += F.cross_entropy(logits, y[i: i + batch], reduction="sum").item()
        correct += (logits.argmax(1) == y[i: i + batch]).sum().item()
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
    sp = [s for s in lstm.state_stats() if s == s]
    m["state_sparsity"] = sum(sp) / len(sp) if sp else 0.0
    return m


class Trainer:
    def __init__(self, cfg: TrainConfig, out: str | Path, progress: bool = True, log: Callable = print):
        self.cfg = cfg.validate()
        self.out = Path(out)
        self.progress = progress
        self.log = log
        self.rank, self.world = 0, 1

    # -- distributed ------------------------------------------------------------------------------
    def _setup_distributed(self):
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world > 1:
            import torch.distributed as dist
            if not dist.is_initialized():
                dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
            self.rank, self.world = dist.get_rank(), dist.get_world_size()
            if self.cfg.batch % self.world:
                raise TrainingError(f"batch={self.cfg.batch} must be divisible by the {self.world} processes")

    @property
    def main(self) -> bool:
        return self.rank == 0

    # -- the run ----------------------------------------------------------------------------------
    def run(self, resume: bool = False, on_start: Optional[Callable[[], None]] = None) -> dict:
        cfg = self.cfg
        self._setup_distributed()
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        ck_path = self.out / "checkpoint.pt"
        if resume:
            ck = load_checkpoint(ck_path)
        elif ck_path.exists():
            raise TrainingError(f"{self.out} already holds a run; continue it with --resume {self.out} "
                                "or choose another --out")
        if self.main:
            self.out.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(cfg.seed + self.rank)
        data = load_data(cfg)
        vocab = None if cfg.task == "classify" else data.vocab
        model = build_model(cfg, vocab_size=None if vocab is None else len(vocab))
        params = list(model.parameters())
        opt = (torch.optim.Adam(params, lr=cfg.lr) if cfg.optimizer == "adam"
               else torch.optim.SGD(params, lr=cfg.lr, momentum=0.9))
        gamma = 1.0 if cfg.lr_final is None else (cfg.lr_final / cfg.lr) ** (1.0 / cfg.epochs)
        sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma)
        pos = {"epoch": 0, "batch": 0, "step": 0, "sums": self._new_sums(), "best": None}
        lm_state = None
        if resume:
            model.load_state_dict(ck["model"])
            opt.load_state_dict(ck["optimizer"])
            sched.load_state_dict(ck["scheduler"])
            torch.set_rng_state(ck["rng"])
            pos = ck["pos"]
            lm_state = ck.get("lm_state")
            self.log(f"resuming {self.out} at epoch {pos['epoch'] + 1}, batch {pos['batch']} (step {pos['step']})")
        elif self.main:
            (self.out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=1))
            if on_start:
                on_start()
        net = model
        if self.world > 1:
            net = torch.nn.parallel.DistributedDataParallel(model)
        metric = METRIC[cfg.task]
        self.log(f"{cfg.task} on {cfg.data}: weights={cfg.weights} batch_norm={cfg.batch_norm} "
                 f"state_sparsity={cfg.state_sparsity} hidden={cfg.hidden} -> {self.out}")

        def save(p, state):
            if not all(torch.isfinite(t).all() for t in model.state_dict().values() if t.is_floating_point()):
                raise TrainingError(f"the parameters became non-finite at step {p['step']}; not saved, the last "
                                    f"good checkpoint is {ck_path}. Lower --lr and resume with --resume")
            if self.main:
                save_atomic({"config": cfg.to_dict(), "model": model.state_dict(), "optimizer": opt.state_dict(),
                             "scheduler": sched.state_dict(), "rng": torch.get_rng_state(), "pos": p,
                             "lm_state": state, "vocab": vocab}, ck_path)

        last = {}
        for epoch in range(pos["epoch"], cfg.epochs):
            plan = self._plan(epoch, data)
            bar = self._bar(len(plan), pos["batch"], epoch)
            t_epoch = time.perf_counter()
            for b in range(pos["batch"], len(plan)):
                net.train()
                model.lstm.reset_state_stats()
                loss, ntok, lm_state = self._step(net, opt, data, plan[b], lm_state, pos)
                sp = model.lstm.state_stats()
                s = pos["sums"]
                s["loss"] += loss * ntok
                s["tokens"] += ntok
                s["sparsity"] += (sum(sp) / len(sp) if sp[0] == sp[0] else 0.0) * ntok
                pos["step"] += 1
                pos["batch"] = b + 1
                if bar is not None:
                    bar.update(1)
                    el = time.perf_counter() - t_epoch
                    bar.set_postfix(loss=f"{loss:.3f}", sparsity=f"{s['sparsity'] / s['tokens']:.2f}",
                                    tok_s=f"{s['tokens'] * self.world / max(el, 1e-9) if b else 0:.0f}")
                if pos["step"] % cfg.checkpoint_every == 0:
                    save(pos, lm_state)
            if bar is not None:
                bar.close()
            s = pos["sums"]
            eval_model = model
            valid = evaluate_split(cfg, eval_model, data, "valid")
            train_loss = s["loss"] / max(s["tokens"], 1)
            last = {"epoch": epoch + 1, "step": pos["step"], "lr": opt.param_groups[0]["lr"],
                    "train_loss": train_loss,
                    f"train_{metric}": (train_loss / math.log(2) if metric == "bpc" else
                                        math.exp(min(train_loss, 50)) if metric == "perplexity" else None),
                    "train_state_sparsity": s["sparsity"] / max(s["tokens"], 1),
                    f"valid_{metric}": valid[metric], "valid_state_sparsity": valid["state_sparsity"],
                    "epoch_seconds": time.perf_counter() - t_epoch}
            best = pos["best"]
            better = best is None or (valid[metric] > best if HIGHER_IS_BETTER[metric] else valid[metric] < best)
            if self.main:
                with open(self.out / "metrics.jsonl", "a") as f:
                    f.write(json.dumps(last) + "\n")
                if better:
                    save_atomic({"config": cfg.to_dict(), "model": model.state_dict(), "vocab": vocab,
                                 "epoch": epoch + 1, f"valid_{metric}": valid[metric]}, self.out / "best.pt")
            self.log(f"epoch {epoch + 1}/{cfg.epochs}: train loss {train_loss:.4f}, valid {metric} "
                     f"{valid[metric]:.4f}, state sparsity {valid['state_sparsity']:.3f}")
            sched.step()
            lm_state = None
            pos = {"epoch": epoch + 1, "batch": 0, "step": pos["step"], "sums": self._new_sums(),
                   "best": valid[metric] if better else best}
            save(pos, None)
        if self.main:
            from .plots import plot_curves
            plot_curves(self.out)
        return last

    # -- pieces -----------------------------------------------------------------------------------
    @staticmethod
    def _new_sums() -> dict:
        return {"loss": 0.0, "tokens": 0, "sparsity": 0.0}

    def _plan(self, epoch: int, data) -> list:
        cfg = self.cfg
        if cfg.task == "classify":
            n = len(data["train"][0])
            g = torch.Generator().manual_seed(cfg.seed * 1000 + epoch)
            perm = torch.randperm(n, generator=g)
            plan = [perm[i: i + cfg.batch] for i in range(0, n - cfg.batch + 1, cfg.batch)]
        else:
            self._streams = batchify(data.train, cfg.batch)[:, self.rank::self.world]
            n = (self._streams.shape[0] - 1) // cfg.seq_len
            plan = list(range(n))
        return plan[: cfg.steps_per_epoch] if cfg.steps_per_epoch else plan

    def _step(self, net, opt, data, item, lm_state, pos):
        cfg = self.cfg
        if cfg.task == "classify":
            idx = item[self.rank::self.world]
            x, y = data["train"][0][idx], data["train"][1][idx]
            loss = F.cross_entropy(net(x), y)
            ntok, new_state = len(idx), None
        else:
            s = item * cfg.seq_len
            x = self._streams[s: s + cfg.seq_len]
            y = self._streams[s + 1: s + cfg.seq_len + 1].long()
            logits, state = net(x, lm_state)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
            ntok = y.numel()
            new_state = tuple(t.detach() for t in state)
        if not torch.isfinite(loss):
            raise TrainingError(f"the loss became {loss.item()} at epoch {pos['epoch'] + 1}, step {pos['step'] + 1}; "
                                f"stopped without saving it, the last good checkpoint is {self.out / 'checkpoint.pt'}. "
                                "Lower --lr (or --clip) and resume with --resume")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.clip:
            torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.clip)
        opt.step()
        return loss.item(), ntok, new_state

    def _bar(self, total: int, initial: int, epoch: int):
        if not (self.progress and self.main):
            return None
        from tqdm.auto import tqdm
        return tqdm(total=total, initial=initial, desc=f"epoch {epoch + 1}/{self.cfg.epochs}", leave=False)


def load_run(run_dir: str | Path, which: str = "best"):
    """Rebuild a trained model from a run directory: ``(cfg, model, vocab)`` in eval mode."""
    run_dir = Path(run_dir)
    path = run_dir / f"{which}.pt"
    if which == "best" and not path.exists():
        path = run_dir / "checkpoint.pt"
    ck = load_checkpoint(path)
    cfg = TrainConfig.from_dict(ck["config"])
    vocab = ck.get("vocab")
    model = build_model(cfg, vocab_size=None if vocab is None else len(vocab))
    model.load_state_dict(ck["model"])
    model.eval()
    return cfg, model, vocab
