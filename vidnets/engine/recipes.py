"""The recipe table: for every data recipe (``data.recipe``), which dataset builder makes its
clips, which models train on them, and how they are tested.

This is the one place that knows which recipes read decoded RGB video
(:func:`vidnets.data.presets.build_dataset`) and which read stored optical flow
(:func:`vidnets.flow.datasets.build_flow_dataset`); configs, the dataset builder, the input-shape
check and ``vidnets features`` all ask it. (A *config* file in ``vidnets/configs/`` names a data recipe
and a model; the data recipe is the papers' sampling and transforms.)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

__all__ = ["DataRecipe", "RECIPES", "RECIPE_NAMES", "data_recipe", "recipe_for_model"]


@dataclass(frozen=True)
class DataRecipe:
    """One row of the table."""

    name: str
    modality: str  # "rgb": decoded frames; "flow": stored optical flow
    models: tuple[str, ...]  # registered model names (prefixes) trained on it
    protocol: str  # the test protocol, in words
    segments: bool = False  # TSN: a training item is K segments, not one clip

    @property
    def reads_flow(self) -> bool:
        return self.modality == "flow"

    def build_dataset(
        self, records: Sequence[Any], *, train: bool, flow_root: str | Path | None = None, **overrides: Any
    ):
        """The recipe's dataset of ``records`` (training items, or test items with views stacked in front)."""
        if self.reads_flow:
            from vidnets.flow.datasets import build_flow_dataset

            if not flow_root:
                raise ValueError(
                    f"recipe {self.name} reads stored optical flow: give flow_root "
                    "(data.flow_root; see `vidnets flow extract`)"
                )
            return build_flow_dataset(self.name, records, train=train, flow_root=flow_root, **overrides)
        from vidnets.data.presets import build_dataset

        return build_dataset(self.name, records, train=train, **overrides)

    def override_keys(self) -> frozenset[str]:
        """The ``data.train_kwargs`` / ``test_kwargs`` keys the recipe's dataset builder takes."""
        if self.reads_flow:
            from vidnets.flow.datasets import override_keys

            return override_keys(self.name)
        from vidnets.data.presets import OVERRIDE_KEYS

        return OVERRIDE_KEYS

    def defaults(self):
        """The paper settings (:class:`vidnets.data.presets.Recipe`) of an RGB recipe; None for flow."""
        if self.reads_flow:
            return None
        from vidnets.data.presets import recipe_defaults

        return recipe_defaults(self.name)


RECIPES: dict[str, DataRecipe] = {
    r.name: r
    for r in (
        DataRecipe("c3d", "rgb", ("c3d",), "10 clips × centre crop, softmax averaged"),
        DataRecipe("res3d", "rgb", ("res3d",), "10 clips × centre crop, softmax averaged"),
        DataRecipe("p3d", "rgb", ("p3d",), "20 clips × centre crop, softmax averaged"),
        DataRecipe("t3d", "rgb", ("t3d", "densenet3d"), "every non-overlapping 32-frame clip × centre crop"),
        DataRecipe("two_stream_spatial", "rgb", ("two_stream_spatial",), "25 frames × 10 crops"),
        DataRecipe("tsn_rgb", "rgb", ("tsn_bninception",), "25 segments × 10 crops", segments=True),
        DataRecipe("tsn_rgbdiff", "rgb", ("tsn_bninception",), "25 segments × 10 crops", segments=True),
        DataRecipe("two_stream_temporal", "flow", ("two_stream_temporal",), "25 flow stacks × 10 crops"),
        DataRecipe("tsn_flow", "flow", ("tsn_bninception",), "25 segments × 10 crops", segments=True),
    )
}
RECIPE_NAMES = tuple(RECIPES)


def data_recipe(name: str) -> DataRecipe:
    """The table row of ``name``; an unknown name is a ValueError listing the recipes."""
    try:
        return RECIPES[name]
    except KeyError:
        raise ValueError(f"unknown data recipe {name!r}; expected one of {', '.join(RECIPE_NAMES)}") from None


def recipe_for_model(model_name: str, default: str = "c3d") -> DataRecipe:
    """The RGB recipe whose frame size and normalisation ``model_name`` was trained with (the first
    row that lists it), else ``default``."""
    for row in RECIPES.values():
        if not row.reads_flow and model_name.startswith(row.models):
            return row
    return RECIPES[default]
