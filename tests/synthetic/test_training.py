"""gmgan.synthetic.training: one seed's three models, paired, saved and found again."""

from __future__ import annotations

import json

import pytest
import torch

from gmgan import synthetic as S

TINY = S.Recipe(psnr_steps=2, gan_steps=2, batch=2, patch=16)


def test_train_seed_pairs_the_two_gans_and_saves_them(tmp_path, monkeypatch):
    trained = S.train_seed(0, TINY)
    assert list(trained) == list(S.MODEL_NAMES)
    gan, ablation = trained["gan"]["log"], trained["gan-no-lq"]["log"]
    # The same parent, noise and batches: only l_Q differs, so the MSE of step 1
    # (before any generator update) is the same; the updates then differ.
    assert gan[0]["mse"] == ablation[0]["mse"]
    w = "body.conv_first.weight"
    assert not torch.equal(
        trained["gan"]["model"].state_dict()[w],
        trained["gan-no-lq"]["model"].state_dict()[w],
    )
    folder = S.save_seed(trained, tmp_path, 0, TINY)
    config = json.loads((folder / "config.json").read_text())
    assert config["recipe"]["gan_steps"] == 2 and "--seeds 0" in config["retrain"]
    models = S.load_seed(tmp_path, 0, TINY)
    lr = torch.rand(1, 3, 4, 4)
    with torch.no_grad():
        torch.testing.assert_close(
            models["psnr"](lr), trained["psnr"]["model"](lr), atol=2e-3, rtol=0
        )
    assert S.load_seed(tmp_path, 0, S.Recipe()) is None  # another recipe
    assert S.load_seed(tmp_path, 1, TINY) is None  # another seed
    with pytest.raises(ValueError, match="unknown"):
        S.train_seed(0, TINY, names=("psnr", "esrgan"))


def test_models_for_trains_once_into_the_derived_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GMGAN_DERIVED", str(tmp_path))
    first = S.models_for([5], TINY)
    assert "training" in capsys.readouterr().out
    again = S.models_for([5], TINY)
    assert "trained earlier" in capsys.readouterr().out
    torch.testing.assert_close(
        first[5]["gan"].state_dict(), again[5]["gan"].state_dict()
    )
    assert (tmp_path / "synthetic" / "s5" / "gan-no-lq.safetensors").is_file()
