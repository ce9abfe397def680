"""``python -m leanrnn.cli``: the form ``torchrun -m leanrnn.cli`` starts each rank with.

A torchrun rank leaves through ``os._exit`` once its output is flushed: the trainer has closed the
process group by then, but gloo's worker threads can still be torn down during interpreter finalization,
where they abort the process ("terminate called without an active exception") after a finished run."""
import os
import sys

from . import main

rc = main()
if int(os.environ.get("WORLD_SIZE", "1")) > 1:
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(rc or 0)
sys.exit(rc)
