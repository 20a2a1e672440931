"""Atomic checkpoints, safetensors weights, config overrides."""

import dataclasses
import os

import pytest
import torch

from vdm_lite import checkpoint as ckpt
from vdm_lite.overrides import apply_overrides, from_dict, parse_value, to_dict


def test_atomic_save_round_trip(tmp_path):
    state = {"step": 3, "w": torch.arange(5.0), "nested": {"rng": torch.get_rng_state()}}
    ckpt.atomic_save(state, tmp_path / "c.pt")
    back = ckpt.load_state(tmp_path / "c.pt")
    assert back["step"] == 3 and torch.equal(back["w"], state["w"])
    assert torch.equal(back["nested"]["rng"], state["nested"]["rng"])


def test_interrupted_write_never_replaces_the_last_good_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    ckpt.atomic_save({"step": 1}, path)

    def dies_mid_write(obj, f):
        f.write(b"PK\x03\x04 half a checkpoint")
        raise KeyboardInterrupt("killed mid-write")

    monkeypatch.setattr(torch, "save", dies_mid_write)
    with pytest.raises(KeyboardInterrupt):
        ckpt.atomic_save({"step": 2}, path)
    monkeypatch.undo()
    assert ckpt.load_state(path)["step"] == 1
    assert os.listdir(tmp_path) == ["checkpoint.pt"], "the partial temporary file must be removed"


def test_corrupt_checkpoint_gives_clear_error(tmp_path):
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="bad.pt is an unknown kind of file .*, not a checkpoint.pt"):
        ckpt.load_state(tmp_path / "bad.pt")
    (tmp_path / "cut.pt").write_bytes(b"PK\x03\x04 the first bytes of a zip")
    with pytest.raises(ValueError, match="cannot read checkpoint .*cut.pt .*is the file complete"):
        ckpt.load_state(tmp_path / "cut.pt")
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        ckpt.load_state(tmp_path / "missing.pt")


def test_safetensors_weights_round_trip(tmp_path):
    sd = {"a.weight": torch.randn(3, 4), "b.bias": torch.zeros(2)}
    ckpt.save_weights(sd, tmp_path / "w.safetensors", {"model": {"dim": 8}, "steps": 10})
    back, cfg = ckpt.load_weights(tmp_path / "w.safetensors")
    assert cfg == {"model": {"dim": 8}, "steps": 10}
    assert all(torch.equal(back[k], sd[k]) for k in sd)
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 10)
    with pytest.raises(ValueError, match="junk.safetensors is an unknown kind of file"):
        ckpt.load_weights(tmp_path / "junk.safetensors")
    (tmp_path / "cut.safetensors").write_bytes((tmp_path / "w.safetensors").read_bytes()[:40])
    with pytest.raises(ValueError, match="cannot read weights"):
        ckpt.load_weights(tmp_path / "cut.safetensors")


def test_input_kind_reads_suffixes_and_first_bytes_only(tmp_path):
    from vdm_lite.viz import save_video

    ckpt.atomic_save({"step": 1}, tmp_path / "run" / "checkpoint.pt")
    ckpt.save_weights({"w": torch.zeros(2)}, tmp_path / "w.safetensors")
    save_video(tmp_path / "clip.mp4", torch.zeros(3, 2, 16, 16))
    (tmp_path / "broken.mp4").write_bytes(b"garbage" * 10)
    (tmp_path / "notes.txt").write_text("hello\n")
    (tmp_path / "empty").mkdir()
    kinds = {name: ckpt.input_kind(tmp_path / name) for name in
             ("run", "run/checkpoint.pt", "w.safetensors", "clip.mp4", "broken.mp4", "notes.txt", "empty")}  # fmt: skip
    assert kinds == {"run": "run", "run/checkpoint.pt": "checkpoint", "w.safetensors": "safetensors", "clip.mp4": "video",
                     "broken.mp4": "video", "notes.txt": "other", "empty": "folder"}  # fmt: skip
    with pytest.raises(FileNotFoundError, match="no such file or folder"):
        ckpt.input_kind(tmp_path / "missing")


def test_check_compatible_names_the_fields():
    ckpt.check_compatible({"model": {"dim": 8}, "lr": 1.0}, {"model": {"dim": 8}, "lr": 2.0}, keys=["model"])
    with pytest.raises(ckpt.CheckpointMismatch, match=r"model\.dim: checkpoint has 8, config asks for 16"):
        ckpt.check_compatible({"model": {"dim": 8}}, {"model": {"dim": 16}})


@dataclasses.dataclass
class Inner:
    mults: tuple[int, ...] = (1, 2)
    dropout: float = 0.0


@dataclasses.dataclass
class Outer:
    steps: int = 10
    name: str = "x"
    flag: bool = False
    maybe: int | None = None
    inner: Inner = dataclasses.field(default_factory=Inner)


def test_overrides_parse_types_and_nesting():
    cfg = apply_overrides(Outer(), ["steps=20", "--flag=true", "inner.mults=1,2,4", "inner.dropout=0.1", "maybe=none", "name=abc"])
    assert cfg == Outer(steps=20, name="abc", flag=True, maybe=None, inner=Inner((1, 2, 4), 0.1))
    assert apply_overrides(Outer(), ["maybe=3"]).maybe == 3
    assert from_dict(Outer, to_dict(cfg)) == cfg
    assert parse_value("no", bool) is False


def test_overrides_reject_unknown_and_bad_values():
    with pytest.raises(ValueError, match="unknown config key 'stpes'.*steps"):
        apply_overrides(Outer(), ["stpes=3"])
    with pytest.raises(ValueError, match="bad value for 'steps'"):
        apply_overrides(Outer(), ["steps=many"])
    with pytest.raises(ValueError, match="key=value"):
        apply_overrides(Outer(), ["steps"])
    with pytest.raises(ValueError, match="boolean"):
        apply_overrides(Outer(), ["flag=maybe"])
