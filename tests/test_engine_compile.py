"""The optional torch.compile path of engine.scores gives the eager maps (within float tolerance)."""

from __future__ import annotations

import pytest
import torch
from helpers import random_input

from xai_core import RunOptions, fastpath, get_explainer, options


@pytest.mark.slow
def test_compiled_scores_equal_eager(tiny):
    x = random_input(tiny, 2, seed=3)
    target = torch.tensor([1, 4])
    eager = get_explainer("rise")(tiny, x, target, masks=203, cells=4, seed=2)  # 406 passes: a padded last batch
    with options.using(RunOptions(compile=True)):
        seen: list[str] = []
        compiled = get_explainer("rise")(tiny, x, target, masks=203, cells=4, seed=2,
                                         progress=lambda f, t: seen.append(t))
        again = get_explainer("occlusion")(tiny, x, target, window=8, stride=4)
    torch.testing.assert_close(compiled, eager, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(again, get_explainer("occlusion")(tiny, x, target, window=8, stride=4), rtol=1e-4, atol=1e-5)
    assert seen[0].startswith("compiling")
    assert fastpath.compiled(tiny.module) is None  # outside the block: the default options again
