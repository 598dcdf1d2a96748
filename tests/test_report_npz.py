"""maps_npz never lets a map's name become one of numpy's own keywords or the ``meta`` entry."""

from __future__ import annotations

import io
import json

import numpy as np

from xai_core.report import maps_npz


def test_a_map_named_like_numpys_allow_pickle_flag_is_kept_as_a_map() -> None:
    a, b = np.full((4, 5), 0.25, np.float32), np.arange(20, dtype=np.float32).reshape(4, 5)
    data = maps_npz({"allow_pickle": a, "meta": b}, {"image": "cat.png"})
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        assert sorted(npz.files) == ["allow_pickle_0", "meta", "meta_1"]
        np.testing.assert_array_equal(npz["allow_pickle_0"], a)
        np.testing.assert_array_equal(npz["meta_1"], b)
        assert json.loads(str(npz["meta"])) == {"image": "cat.png"}
