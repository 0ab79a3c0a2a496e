"""Evaluation through lmms-eval, the harness the field reports MMBench, MME, POPE, ScienceQA ... with.

Optional: ``pip install -e '.[eval]'``. :mod:`kit.finetune.lmms.tasks` (the kit's held-out questions as local
lmms-eval tasks and their protocol pins) and :mod:`kit.finetune.lmms.run` import lmms-eval only when run;
:mod:`kit.finetune.lmms.model` (the kit's model as an lmms-eval model) needs it to import.
"""
from kit.finetune.lmms.run import INSTALL_HINT, default_out, run_lmms_eval
from kit.finetune.lmms.tasks import TASKS, protocol, write_tasks

__all__ = ["run_lmms_eval", "write_tasks", "protocol", "TASKS", "default_out", "INSTALL_HINT"]
