"""Views of the labelled sets (size, channels, invert, resize) for the alpha-beta VAE's 32x32
and GWAE's 3x64x64 protocols, and the 28x28 Omniglot view from the CLI and specs (issue 21,
item 11)."""
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from disbench import datasets as D
from disbench.cli import main
from disbench.datasets import views
from disbench.errors import DisbenchError
from disbench.sweeps.spec import parse_spec
from PIL import Image


def test_fashion_mnist_32_is_pils_bilinear_resize_of_each_image():
    base = D.get("fashion_mnist", source="synthetic", split="test")
    v = D.get("fashion_mnist", source="synthetic", split="test", size=32)
    assert v.images.shape == (10000, 1, 32, 32) and v.images.dtype == np.uint8
    assert v.fingerprint == base.fingerprint + "-32px" and not v.binary
    for i in (0, 17, 9999):  # torchvision's Resize of a PIL image calls PIL's resize
        want = Image.fromarray(base.images[i, 0]).resize((32, 32), Image.Resampling.BILINEAR)
        np.testing.assert_array_equal(v.images[i, 0], np.asarray(want))
    np.testing.assert_array_equal(v.labels, base.labels)
    assert views.ALPHA_BETA_CLAMP == 1e-6


def test_mnist_gwae_view_is_torch_bilinear_on_the_tensor_repeated_to_3_channels():
    base = D.get("mnist", source="synthetic", split="test")
    v = D.get("mnist", source="synthetic", split="test", size=64, channels=3,
              resize="tensor_bilinear")
    assert v.images.shape == (10000, 3, 64, 64)
    x = torch.from_numpy(base.images[:8].astype(np.float32) / 255).repeat(1, 3, 1, 1)
    want = F.interpolate(x, size=(64, 64), mode="bilinear", align_corners=False,
                         antialias=False)
    np.testing.assert_array_equal(v.images[:8], (want * 255).round().to(torch.uint8).numpy())
    assert v.fingerprint.endswith("-64px-tensor_bilinear-3ch")


def test_omniglot_polarity_views_and_unchanged_default_fingerprints():
    kw = {"source": "synthetic", "split": "background_small1"}
    stored = D.get("omniglot", **kw)
    assert stored.binary and stored.images[:, 0, 0, 0].max() == 0  # ink 255 on background 0
    assert D.get("omniglot", size=28, **kw).fingerprint == stored.fingerprint + "-28px"
    files = D.get("omniglot", invert=False, **kw)  # the files' black strokes on white
    np.testing.assert_array_equal(files.images, 255 - stored.images)
    assert files.binary and files.images[:, 0, 0, 0].min() == 255
    gwae = D.get("omniglot", size=64, channels=3, invert=False, resize="tensor_bilinear", **kw)
    assert gwae.images.shape == (len(stored), 3, 64, 64)
    assert gwae.images[:, :, 0, 0].min() == 255  # white background kept after the resize
    x = torch.from_numpy((255 - stored.images[:4]).astype(np.float32) / 255)
    want = F.interpolate(x, size=(64, 64), mode="bilinear", align_corners=False)
    np.testing.assert_array_equal(gwae.images[:4, 0], (want * 255).round()[:, 0].to(
        torch.uint8).numpy())
    aa = D.get("omniglot", size=64, channels=3, invert=False,
               resize="tensor_bilinear_antialias", **kw)
    assert not np.array_equal(aa.images, gwae.images)  # shrinking 105 -> 64: it matters


def test_bad_view_options_are_one_line_errors():
    kw = {"source": "synthetic", "split": "test"}
    for opts, match in (({"size": 4}, "size must be an integer in 8..256"),
                        ({"channels": 2}, "channels must be 1 or 3"),
                        ({"invert": "yes"}, "invert must be true or false"),
                        ({"resize": "cubic"}, "resize must be one of area, pil_bilinear")):
        with pytest.raises(DisbenchError, match=match):
            D.get("mnist", **opts, **kw)


def test_train_omniglot_with_the_28x28_view_from_the_cli(tmp_path, capsys):
    args = ["train", "vae", "--dataset", "omniglot", "--source", "synthetic",
            "--split", "background_small1", "--steps", "2", "--batch-size", "4",
            "--device", "cpu", "--out", str(tmp_path), "--no-progress"]
    assert main(args) == 1  # 105x105 is not a size the networks take
    err = capsys.readouterr().err
    assert "image_shape" in err and "--dataset-options size=28 for omniglot" in err, err
    assert main([*args, "--dataset-options", "size=28"]) == 0
    run = tmp_path / capsys.readouterr().out.strip().splitlines()[-1].split(str(tmp_path))[-1] \
        .lstrip("/")
    config = json.loads((tmp_path / run / "config.json").read_text())
    assert config["dataset_options"] == {"size": 28}
    assert config["hparams"]["image_shape"] == [1, 28, 28]
    assert config["dataset_fingerprint"].endswith("-28px")
    # evaluation loads the same view (its provenance names the 28x28 fingerprint)
    assert main(["evaluate", str(tmp_path / run), "--metrics", "psnr", "--num-test", "16",
                 "--device", "cpu"]) == 0
    prov = json.loads((tmp_path / run / "metrics.json").read_text())["provenance"]
    assert prov["dataset"]["fingerprint"] == config["dataset_fingerprint"]
    assert main([*args, "--dataset-options", "sizee=28"]) == 1
    assert "unknown option(s) sizee" in capsys.readouterr().err


def test_spec_dataset_options_are_validated_and_reach_the_run():
    text = ("name: s\ndatasets: [{name: omniglot, source: synthetic, split: background_small1, "
            "options: {size: 28}}]\nmodels: [{name: vae}]\ntrain: {steps: 2}\nseeds: [0]\n"
            "metrics: [psnr]\n")
    (cfg,) = parse_spec(text).run_configs()
    assert cfg.dataset_options == {"size": 28}
    plain = parse_spec(text.replace(", options: {size: 28}", "")).run_configs()[0]
    assert plain.dataset_options is None and plain.run_id() != cfg.run_id()
    with pytest.raises(DisbenchError,
                       match=r"'datasets\[0\].options.sizee' \(line 2\).*valid options are"):
        parse_spec(text.replace("size: 28", "sizee: 28"), source="s.yaml")
