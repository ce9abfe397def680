"""Small trained models the tests share: a few optimizer steps on random tokens move batch-norm
statistics, gains and pruning thresholds off their initial values, so exports and runtimes are
checked on weights that training produced."""
import torch

from leanrnn.tasks import LanguageModel


def trained_lm(V=10, H=4, embed=3, layers=1, steps=20, seed=0, **lstm_kw) -> LanguageModel:
    torch.manual_seed(seed)
    m = LanguageModel(V, H, num_layers=layers, embed_size=embed, **lstm_kw)
    opt = torch.optim.Adam(m.parameters(), 1e-2)
    for _ in range(steps):
        ids = torch.randint(0, V, (9, 8))
        logits, _ = m(ids[:-1])
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, V), ids[1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return m.eval()
