"""Early stopping on a validation number: keep the best weights, stop after ``patience`` stale epochs."""

from __future__ import annotations

import torch


class EarlyStopping:
    """Tracks the best validation value (lower is better) and a copy of the weights that reached it."""

    def __init__(self, patience: int) -> None:
        self.patience = patience
        self.best = float("inf")
        self.best_metrics: dict = {}
        self.best_state: dict[str, torch.Tensor] | None = None
        self.stale = 0

    def update(self, value: float, model: torch.nn.Module, metrics: dict) -> bool:
        """Record an epoch's validation ``value``; ``True`` when training should stop."""
        if value < self.best:
            self.best, self.best_metrics, self.stale = value, metrics, 0
            self.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            return False
        self.stale += 1
        return self.stale >= self.patience
