"""``python -m leanrnn.cli``: the form ``torchrun -m leanrnn.cli`` starts each rank with."""
from . import entry

entry()
