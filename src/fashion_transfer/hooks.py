"""Project hooks: check every parameter before any node runs, then set up PyTorch once."""

from __future__ import annotations

import logging

import torch
from kedro.framework.hooks import hook_impl

from fashion_transfer.params import validate_parameters

logger = logging.getLogger(__name__)


class ProjectHooks:
    @hook_impl
    def after_context_created(self, context) -> None:
        runtime = validate_parameters(context.params).runtime
        # Denormal floats (weights decaying towards zero late in training) can slow CPU
        # kernels down by orders of magnitude; flushing them to zero costs no accuracy.
        torch.set_flush_denormal(True)
        if runtime.num_threads:
            torch.set_num_threads(runtime.num_threads)
        logger.info("PyTorch uses %d CPU threads", torch.get_num_threads())
