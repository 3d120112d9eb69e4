"""``disbench datasets`` through ``disbench.cli.main``: list, info, import, prepare."""
import dataclasses
import functools
import http.server
import threading

import numpy as np
import pytest
from disbench import datasets
from disbench.cli import main

SEVEN = ("dsprites", "shapes3d", "sprites", "mnist", "fashion_mnist", "omniglot", "celeba")


def _row(out, name):
    return next(line for line in out.splitlines() if line.startswith(name + " ")).split()


@pytest.mark.usefixtures("empty_cache")
def test_list_names_all_seven(capsys):
    assert set(SEVEN) <= set(datasets.names())  # every dataset of the design is registered
    assert main(["datasets", "list"]) == 0
    out = capsys.readouterr().out
    rows = [ln for ln in out.splitlines()[1:] if ln.strip()]
    assert [r.split()[0] for r in rows] == datasets.names()  # every registered one, once
    # name, kind, official cached, twin cached, factors, summary
    assert _row(out, "mnist")[:5] == ["mnist", "labelled", "none", "none", "(labels)"]
    assert _row(out, "dsprites")[:9] == ["dsprites", "ground_truth", "none", "none", "shape=3",
                                         "scale=6", "orientation=40", "posX=32", "posY=32"]
    assert _row(out, "sprites")[1] == "sequence" and "action=9" in _row(out, "sprites")


def test_help_everywhere(capsys):
    for argv in (["datasets", "--help"], ["datasets", "list", "--help"],
                 ["datasets", "info", "--help"], ["datasets", "prepare", "--help"],
                 ["datasets", "import", "--help"]):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 0
        assert "usage:" in capsys.readouterr().out


def test_info(capsys, empty_cache):
    assert main(["datasets", "info", "fashion_mnist"]) == 0
    out = capsys.readouterr().out
    assert "8d4fb7e6c68d591d4c3dfef9ec88bf0d" in out  # published md5 of the train images
    assert str(empty_cache / "fashion_mnist") in out
    assert main(["datasets", "info", "nope"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: unknown dataset 'nope'") and "mnist" in err


@pytest.mark.usefixtures("empty_cache")
def test_import_reports_splits(realdata, capsys, tmp_path):
    assert main(["datasets", "import", "mnist", str(realdata / "mnist")]) == 0
    out = capsys.readouterr().out
    assert "imported and verified 3 file(s)" in out
    assert "official splits available: test" in out
    assert datasets.get("mnist", split="test").source == "official"
    main(["datasets", "list"])
    assert _row(capsys.readouterr().out, "mnist")[2] == "test"
    # a folder with none of the files, a missing folder: one-line errors
    assert main(["datasets", "import", "mnist", str(tmp_path)]) == 1
    assert "holds none of the mnist files" in capsys.readouterr().err
    assert main(["datasets", "import", "mnist", str(tmp_path / "missing")]) == 1
    assert "is not a folder" in capsys.readouterr().err


def test_prepare_synthetic(capsys, empty_cache):
    assert main(["datasets", "prepare", "mnist", "--source", "synthetic", "--split",
                 "test"]) == 0
    assert "rendered the synthetic twin" in capsys.readouterr().out
    folder = empty_cache / "mnist" / "synthetic-v1-seed0"
    assert (folder / "t10k-images-idx3-ubyte.gz").exists()
    main(["datasets", "list"])
    assert _row(capsys.readouterr().out, "mnist")[2:4] == ["none", "test"]  # twin cached
    ds = datasets.get("mnist", source="synthetic", split="test")
    assert ds.images.shape == (10000, 1, 28, 28)
    assert main(["datasets", "prepare", "mnist", "--split", "valid"]) == 1
    assert "unknown split 'valid'" in capsys.readouterr().err


def test_prepare_official_from_local_server(realdata, capsys, empty_cache, monkeypatch):
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(realdata / "fashion_mnist"))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}/"
    cls = datasets.spec("fashion_mnist")
    local = tuple(dataclasses.replace(f, url=base + f.name, mirrors=()) for f in cls.files)
    monkeypatch.setattr(cls, "files", local)
    try:
        assert main(["datasets", "prepare", "fashion_mnist", "--split", "test"]) == 0
        captured = capsys.readouterr()
        assert "official splits available: test" in captured.out
        assert "t10k-images-idx3-ubyte.gz" in captured.err  # progress bar
        ds = datasets.get("fashion_mnist", source="official", split="test")
        assert np.bincount(ds.labels).tolist() == [1000] * 10
        # the train images are not served: a one-line error naming URL and place
        assert main(["datasets", "prepare", "fashion_mnist", "--split", "train"]) == 1
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert err.startswith("error:") and base + "train-images-idx3-ubyte.gz" in err
        assert str(empty_cache / "fashion_mnist" / "train-images-idx3-ubyte.gz") in err
        assert not (empty_cache / "fashion_mnist" / "train-images-idx3-ubyte.gz").exists()
    finally:
        httpd.shutdown()
        httpd.server_close()
