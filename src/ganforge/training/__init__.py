"""Training: the loop (trainer), per-method steps (recipes), EMA and checkpoints."""

from .recipes import RECIPES, Recipe
from .trainer import Run, Trainer, train

__all__ = ["RECIPES", "Recipe", "Run", "Trainer", "train"]
