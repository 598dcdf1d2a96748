"""xai-batch --ray local: a local Ray instance (started and stopped here) gives the same table as the local path."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_batch import comparable, lab_args, make_tree

from xai_core.batch import open_run
from xai_core.batch.__main__ import main

ray = pytest.importorskip("ray", reason="Ray is in requirements-dev.txt; install it to test --ray")


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_six_images_on_local_ray_give_the_local_table(tmp_path):
    tree = make_tree(tmp_path / "imgs")
    assert main(lab_args(tree, tmp_path / "local")) == 0
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(Path(__file__).resolve().parents[1])}})
    try:
        assert main(lab_args(tree, tmp_path / "ray", "--ray", "local", "--workers", "2")) == 0
    finally:
        ray.shutdown()
    local, on_ray = open_run(tmp_path / "local"), open_run(tmp_path / "ray")
    assert on_ray.meta["config"]["ray"] == "local" and len(on_ray.table) == 12
    pd = pytest.importorskip("pandas")
    pd.testing.assert_frame_equal(comparable(on_ray.table), comparable(local.table))
    for (_, a), (_, b) in zip(local.table.iterrows(), on_ray.table.iterrows(), strict=True):
        if a["map_index"] >= 0:
            assert (local.map_of(a) == on_ray.map_of(b)).all()
