"""Wraps a generation pipeline (diffusers-style ``__call__(prompt=…, negative_prompt=…)``) with the guard.

Duck-typed: diffusers need not be installed. A refused prompt raises :class:`GuardRefusal` before any
compute is spent; generated images that the guard blocks are replaced by black images, as the Stable
Diffusion safety checker does, and every decision is attached to the result as ``guard_decisions``.
"""

from __future__ import annotations

import contextlib
from typing import Any

from vigie.errors import VigieError
from vigie.guard.core import Guard, GuardDecision


class GuardRefusal(VigieError):
    """A generation request refused by the guard; ``decision`` says why."""

    def __init__(self, decision: GuardDecision) -> None:
        super().__init__(f"generation refused: {decision.label} (score {decision.score:.2f})")
        self.decision = decision


class GuardedPipeline:
    """``GuardedPipeline(pipe, guard)(prompt=…)`` behaves like ``pipe(prompt=…)`` with screening around it."""

    def __init__(
        self, pipeline: Any, guard: Guard | None = None, refuse_on: tuple[str, ...] = ("block",)
    ) -> None:
        self.pipeline = pipeline
        self.guard = guard or Guard()
        self.refuse_on = refuse_on

    def __getattr__(self, name: str) -> Any:  # behave like the wrapped pipeline for everything else
        return getattr(self.pipeline, name)

    def __call__(self, prompt: str | list[str] | None = None, *args: Any, **kwargs: Any) -> Any:
        prompts = [prompt] if isinstance(prompt, str) else list(prompt or [])
        negative = kwargs.get("negative_prompt")
        negatives = negative if isinstance(negative, list) else [negative] * len(prompts)
        for p, n in zip(prompts, negatives, strict=False):
            decision = self.guard.check_prompt(p, n)
            if decision.action in self.refuse_on:
                raise GuardRefusal(decision)
        result = self.pipeline(prompt, *args, **kwargs)
        images: Any = getattr(result, "images", None)
        if images is None and isinstance(result, (list, tuple)) and result:
            images = result[0]
        decisions: list[GuardDecision] = []
        for i, im in enumerate(images or []):
            d = self.guard.check_image(im)
            decisions.append(d)
            if d.action in self.refuse_on:
                images[i] = _black_like(im)
        with contextlib.suppress(AttributeError):  # tuples: the decisions stay on the wrapper only
            result.guard_decisions = decisions
        self.last_decisions = decisions
        return result


def _black_like(im: Any) -> Any:
    import numpy as np

    if isinstance(im, np.ndarray):
        return np.zeros_like(im)
    from PIL import Image

    return Image.new(im.mode, im.size)
