"""``xai-batch concepts`` (xai_core.batch.concepts): concept discovery over a folder, a class tree or a zip of lab
images, end to end through the batch inputs' boundary; the files agree with the library's discovery on the same
pixels; the time limit and a page's Stop write nothing."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from xai_core import lab
from xai_core.batch.__main__ import main
from xai_core.batch.concepts import ConceptRun, run_concepts
from xai_core.concepts.craft import discover
from xai_core.errors import Cancelled

N_HORSES, N_OTHER, SIDE = 12, 3, 128  # files at 2× the lab CNN's 64-px input: file boxes are 2× the model's
ARGS = ["--model", "lab_horse_cnn", "--class", "horse", "--rank", "3", "--crop", "0.375", "--stride", "0.125",
        "--no-resize", "--top-crops", "5", "--no-progress"]


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``horse/`` (tagged lab horses) and ``other/`` (lab shapes) at 128 px, PNG (lossless)."""
    root = tmp_path_factory.mktemp("concepts") / "tree"
    data = lab.make_dataset(60, seed=11)
    for name, pick, n in (("horse", data.labels == 1, N_HORSES), ("other", data.labels == 0, N_OTHER)):
        (root / name).mkdir(parents=True)
        for i, im in enumerate(data.images[pick][:n]):
            Image.fromarray(im).resize((SIDE, SIDE), Image.Resampling.NEAREST).save(root / name / f"{i:02d}.png")
    return root


def test_a_class_tree_gives_the_concept_files_and_they_match_the_library(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert main(["concepts", str(tree), "--out", str(out), *ARGS]) == 0
    summary = json.loads((out / "concepts.json").read_text())
    assert summary["images"] == [f"horse/{i:02d}.png" for i in range(N_HORSES)]  # the 'other' folder is left out
    assert summary["skipped"] == [f"{N_OTHER} image(s) of other classes left out."]
    assert summary["class_name"] == "horse" and summary["layer"] == "features.9" and summary["factorisation"] == "nmf"
    concepts, crops = pd.read_csv(out / "concepts.csv"), pd.read_csv(out / "crops.csv")
    coef = pd.read_csv(out / "coefficients.csv")
    assert list(concepts["rank"]) == [1, 2, 3] and len(crops) == 3 * 5 and len(coef) == N_HORSES
    assert set(crops["image"]) <= set(summary["images"])
    np.testing.assert_allclose(crops[["file_x0", "file_y0", "file_x1", "file_y1"]].to_numpy(),
                               2 * crops[["x0", "y0", "x1", "y1"]].to_numpy())
    assert np.load(out / "directions.npy", allow_pickle=False).shape == (3, 64)  # the lab CNN has 64 channels there
    # the same discovery run by the library on the same pixels (the model's view of each file)
    model = lab.load_lab_model("cpu")
    x = torch.cat([model.preprocess(np.asarray(Image.open(tree / k).convert("RGB"))) for k in summary["images"]]).cpu()
    ref = discover(model, x, 1, rank=3, crop=0.375, stride=0.125, resize=False, top_crops=5)
    np.testing.assert_allclose(concepts["importance"], [c.importance for c in ref.concepts], rtol=1e-5, atol=1e-7)
    assert ref.image_coefficients is not None
    np.testing.assert_allclose(coef[["coefficient_1", "coefficient_2", "coefficient_3"]].to_numpy(),
                               ref.image_coefficients.numpy(), rtol=1e-4, atol=1e-6)
    first = [(c.image, c.box) for c in ref.concepts[0].crops]
    got = crops[crops["concept"] == 1]
    assert [(summary["images"].index(i), (a, b, c, d)) for i, a, b, c, d in
            got[["image", "x0", "y0", "x1", "y1"]].itertuples(index=False)] == first


def test_a_zip_of_the_same_images_gives_the_same_concepts(tree: Path, tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for p in sorted((tree / "horse").glob("*.png")):
            z.write(p, f"horse/{p.name}")
    (tmp_path / "set.zip").write_bytes(buf.getvalue())
    assert main(["concepts", str(tmp_path / "set.zip"), "--out", str(tmp_path / "z"), *ARGS]) == 0
    assert main(["concepts", str(tree / "horse"), "--out", str(tmp_path / "f"), *ARGS]) == 0
    a, b = (json.loads((tmp_path / d / "concepts.json").read_text()) for d in ("z", "f"))
    assert [c["importance"] for c in a["concepts"]] == pytest.approx([c["importance"] for c in b["concepts"]], rel=1e-5)
    assert a["images"] == [f"horse/{k}" for k in b["images"]]


def test_time_limit_stop_and_bad_arguments_write_nothing(tree: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "late"
    assert main(["concepts", str(tree), "--out", str(out), *ARGS, "--max-seconds", "1e-6"]) == 2
    assert "time limit" in capsys.readouterr().err and not out.exists()

    def stop(fraction: float, _text: str) -> None:
        if fraction > 0.2:
            raise Cancelled("stopped")

    with pytest.raises(Cancelled):
        run_concepts(ConceptRun(str(tree), str(tmp_path / "stopped"), "horse", rank=3), model=lab.load_lab_model("cpu"),
                     progress=stop)
    assert not (tmp_path / "stopped").exists()
    assert main(["concepts", str(tree), "--out", str(tmp_path / "u"), *ARGS[:2], "--class", "zebra", "--no-progress"]) == 2
    assert "neither a class index" in capsys.readouterr().err
    assert main(["concepts", str(tree / "other"), "--out", str(tmp_path / "o"), *ARGS]) == 2  # 3 images: too few
    assert "at least 10" in capsys.readouterr().err


def test_links_planted_in_the_out_folder_are_not_followed(tree: Path, tmp_path: Path) -> None:
    out, victim = tmp_path / "run", tmp_path / "victim.txt"
    out.mkdir()
    victim.write_text("keep")
    (out / ".concepts.json").symlink_to(victim)
    (out / ".crops.csv").symlink_to(victim)
    assert main(["concepts", str(tree / "horse"), "--out", str(out), *ARGS]) == 0
    assert victim.read_text() == "keep"
    assert not (out / "concepts.json").is_symlink() and json.loads((out / "concepts.json").read_text())["concepts"]
