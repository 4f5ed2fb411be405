import pytest

from ganforge.errors import UserError
from ganforge.registry import Registry


def test_register_get_alias_and_suggestion():
    reg = Registry("widget")

    @reg.register("spanner", aliases=("wrench",))
    def spanner():
        """Turns nuts."""
        return 1

    assert reg.get("spanner") is spanner and reg.get("wrench") is spanner
    assert reg.names() == ["spanner"] and "wrench" in reg
    assert reg.describe("wrench") == "Turns nuts."
    with pytest.raises(UserError, match=r"unknown widget 'spaner'; did you mean 'spanner'\?"):
        reg.get("spaner")
    with pytest.raises(UserError, match=r"available: spanner"):
        reg.get("hammer")
    with pytest.raises(ValueError, match="already registered"):
        reg.add("wrench", object())


def test_every_registry_is_populated():
    from ganforge.data import DATASETS
    from ganforge.losses import LOSSES
    from ganforge.models import MODELS
    from ganforge.training import RECIPES

    assert {"digits", "mnist", "cifar10", "image-folder", "celeba", "ring8", "grid25"} <= set(DATASETS.names())
    assert {"mlp", "dcgan"} <= set(MODELS.names())
    assert {"minimax", "nonsaturating", "wasserstein", "hinge", "least-squares"} <= set(LOSSES.names())
    assert "gan" in RECIPES
