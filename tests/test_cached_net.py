"""The cached helper networks' one checksum policy (judge and feature classifier alike)."""
import pytest
import torch
from disbench.errors import DisbenchError
from disbench.metrics import cached_net


def test_round_trip_and_absent(tmp_path):
    path = tmp_path / "nets" / "a.pt"
    assert cached_net.load(path, rebuild="make it", format_version=1) is None  # absent: train
    payload = {"format_version": 1, "state_dict": {"w": torch.arange(3.0)}, "info": {"k": 1}}
    assert cached_net.save(path, payload) == path
    assert cached_net.sidecar(path).read_text().split()[1] == "a.pt"
    back = cached_net.load(path, rebuild="make it", format_version=1)
    torch.testing.assert_close(back["state_dict"]["w"], torch.arange(3.0))
    assert back["info"] == {"k": 1}


def test_mismatch_missing_sidecar_and_format_are_errors_naming_file_and_rebuild(tmp_path):
    path = cached_net.save(tmp_path / "b.pt", {"format_version": 2, "x": torch.zeros(2)})
    with pytest.raises(DisbenchError, match="format 2 is not 1.*rebuild it with: run X"):
        cached_net.load(path, rebuild="run X", format_version=1)
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(DisbenchError, match=r"b\.pt: sha256 does not match .*run X"):
        cached_net.load(path, rebuild="run X", format_version=2)
    cached_net.sidecar(path).unlink()
    with pytest.raises(DisbenchError, match=r"b\.pt\.sha256 is missing.*run X"):
        cached_net.load(path, rebuild="run X", format_version=2)


def test_judge_mismatch_names_the_rebuild_command(tmp_path, monkeypatch):
    from disbench.metrics import judge_net as J

    monkeypatch.setenv("DISBENCH_DATA", str(tmp_path))
    torch.manual_seed(0)
    path = J.save_judge(J.SpritesJudge(J.JudgeConfig(width=4, pool=4, hidden=8)), "fp")
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(DisbenchError, match="disbench judge train --force"):
        J.load_judge("fp")
