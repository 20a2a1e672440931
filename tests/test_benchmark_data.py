"""The benchmark data of Tables 1-3, read from small files written in the exact on-disk formats:
TFRecord framing and tf.train.Example protos (BAIR), UCF101 split lists, Kinetics CSV files."""

from __future__ import annotations

import struct
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from vdm_lite.datasets import BAIRPushing, Kinetics600, TFRecordError, UCF101, VideoReadError
from vdm_lite.datasets.bair import bair_key, write_bair_tfrecord
from vdm_lite.datasets.tfrecord import (crc32c, crc32c_python, encode_example, index_tfrecord, iter_tfrecord,
                                        masked_crc32c, parse_example, write_tfrecord)  # fmt: skip

pytestmark = pytest.mark.usefixtures("one_thread")


def uint8(video: torch.Tensor) -> np.ndarray:
    """(3, T, H, W) in [-1, 1] -> uint8 (T, H, W, 3), exact for pixels that came from uint8."""
    return ((video + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 3, 0).numpy()


def write_video(path: Path, frames: np.ndarray, fps: int = 25) -> Path:
    """A losslessly encoded video file (PNG-in-AVI or x264rgb qp 0 in MP4), so decoding gives back ``frames``."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    codec, opts = ("libx264rgb", {"qp": "0"}) if path.suffix == ".mp4" else ("png", None)
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=fps)
        s.width, s.height, s.pix_fmt = frames.shape[2], frames.shape[1], "rgb24"
        if opts:
            s.options = opts
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def rand_frames(seed: int, t: int, h: int = 64, w: int = 64) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (t, h, w, 3), dtype=np.uint8)


# -- CRC-32C and the proto wire format --------------------------------------------------------------------


@pytest.mark.parametrize("fn", [crc32c, crc32c_python])
def test_crc32c_known_vectors(fn):
    assert fn(b"123456789") == 0xE3069283  # the CRC catalogue's check value
    assert fn(b"") == 0
    assert fn(bytes(32)) == 0x8A9136AA  # RFC 3720, B.4
    assert fn(b"\xff" * 32) == 0x62A8AB43
    assert fn(bytes(range(32))) == 0x46DD794E
    assert masked_crc32c(b"") == 0xA282EAD8  # ((0 >> 15) | (0 << 17)) + mask


def test_example_proto_matches_the_wire_format_by_hand():
    # Example{features{feature{key: "a" value{int64_list{value: [1]}}}}}
    assert encode_example({"a": [1]}) == bytes.fromhex("0a0c0a0a0a016112051a030a0101")
    # a float_list written unpacked (wire type 5), as some writers do, built field by field
    feature = b"\x12\x05" + b"\x0d" + struct.pack("<f", 1.5)  # Feature{float_list{value: 1.5}}
    entry = b"\x0a\x01b" + b"\x12" + bytes([len(feature)]) + feature  # map entry: key "b", value
    features = b"\x0a" + bytes([len(entry)]) + entry
    example = b"\x0a" + bytes([len(features)]) + features
    got = parse_example(example)
    assert list(got) == ["b"] and got["b"].tolist() == [1.5]
    feats = {"img": b"\x00\x01\xff", "floats": np.array([0.5, -2.0], np.float32), "ints": [3, -1, 2**40], "two": [b"x", b"yz"]}
    back = parse_example(encode_example(feats))
    assert back["img"] == [b"\x00\x01\xff"] and back["two"] == [b"x", b"yz"]
    assert back["floats"].tolist() == [0.5, -2.0] and back["ints"].tolist() == [3, -1, 2**40]
    with pytest.raises(ValueError, match="tf.train.Example"):
        parse_example(b"\x0a\x7f\x00")  # a length past the end


def test_tfrecord_framing_round_trip_and_header(tmp_path):
    path = write_tfrecord(tmp_path / "x.tfrecords", [b"hello", b"", b"world!"])
    raw = path.read_bytes()
    length = struct.pack("<Q", 5)
    assert raw[:12] == length + struct.pack("<I", masked_crc32c(length))
    assert raw[12:17] == b"hello" and raw[17:21] == struct.pack("<I", masked_crc32c(b"hello"))
    assert index_tfrecord(path) == [(12, 5), (33, 0), (49, 6)]
    assert list(iter_tfrecord(path)) == [b"hello", b"", b"world!"]


# -- BAIR ----------------------------------------------------------------------------------------------


def bair_tree(root: Path, n_first: int = 2, n_second: int = 1, frames: int = 30):
    """softmotion30_44k/test with two files whose numeric order differs from their name order."""
    test = root / "softmotion30_44k" / "test"
    vids = np.stack([rand_frames(i, frames) for i in range(n_first + n_second)])
    main = np.stack([rand_frames(100 + i, frames) for i in range(n_first + n_second)])
    act = np.random.default_rng(7).normal(size=(n_first + n_second, frames, 4)).astype(np.float32)
    pos = np.random.default_rng(8).normal(size=(n_first + n_second, frames, 3)).astype(np.float32)
    write_bair_tfrecord(test / "traj_2_to_3.tfrecords", vids[:n_first], main=main[:n_first], action=act[:n_first],
                        endeffector_pos=pos[:n_first])  # fmt: skip
    write_bair_tfrecord(test / "traj_10_to_10.tfrecords", vids[n_first:], main=main[n_first:], action=act[n_first:],
                        endeffector_pos=pos[n_first:])  # fmt: skip
    return test, vids, main, act, pos


def test_bair_tfrecords_read_exactly_in_order(tmp_path):
    test, vids, main, act, pos = bair_tree(tmp_path)
    keys = parse_example(next(iter_tfrecord(test / "traj_2_to_3.tfrecords")))
    assert {bair_key(0, "aux1"), bair_key(29, "main"), "29/action", "0/endeffector_pos"} <= set(keys) and len(keys) == 120
    assert keys["0/image_aux1/encoded"][0] == vids[0, 0].tobytes()  # raw bytes, not PNG
    ds = BAIRPushing(tmp_path, split="test", with_state=True)
    assert len(ds) == 3  # traj_2_to_3 (2 videos) before traj_10_to_10 (1), whatever the names' sort order
    for i in range(3):
        item = ds[i]
        assert item["video"].shape == (3, 30, 64, 64) and item["video"].dtype == torch.float32
        np.testing.assert_array_equal(uint8(item["video"]), vids[i])
        np.testing.assert_array_equal(item["action"].numpy(), act[i])
        np.testing.assert_array_equal(item["endeffector_pos"].numpy(), pos[i])
    assert [ds[i]["record"] for i in range(3)] == [0, 1, 0] and ds[2]["path"].endswith("traj_10_to_10.tfrecords")
    main_cam = BAIRPushing(test, camera="main", frames=16, start=2)  # the split folder itself works too
    np.testing.assert_array_equal(uint8(main_cam[1]["video"]), main[1, 2:18])
    one = BAIRPushing(test / "traj_10_to_10.tfrecords", frames=16, resolution=32)
    assert one[0]["video"].shape == (3, 16, 32, 32)


def test_bair_png_encoded_images_and_missing_keys(tmp_path):
    import io

    from PIL import Image

    frames = rand_frames(3, 4)
    feats = {}
    for i, f in enumerate(frames):
        buf = io.BytesIO()
        Image.fromarray(f).save(buf, format="PNG")
        feats[bair_key(i, "aux1")] = buf.getvalue()
    path = write_tfrecord(tmp_path / "png.tfrecords", [encode_example(feats)])
    np.testing.assert_array_equal(uint8(BAIRPushing(path, frames=4)[0]["video"]), frames)
    with pytest.raises(TFRecordError, match=r"png\.tfrecords: record 0: no image feature '4/image_aux1/encoded'"):
        BAIRPushing(path, frames=5)[0]


def test_bair_corrupt_and_truncated_records_name_file_and_record(tmp_path):
    test, vids, *_ = bair_tree(tmp_path, n_first=2, n_second=1)
    path = test / "traj_2_to_3.tfrecords"
    (off0, n0), (off1, n1) = index_tfrecord(path)
    raw = bytearray(path.read_bytes())
    pixel = raw.find(vids[1, 15].tobytes(), off1) + 100  # a pixel of frame 15 in record 1
    bad = bytearray(raw)
    bad[pixel] ^= 0xFF
    path.write_bytes(bytes(bad))
    ds = BAIRPushing(tmp_path)
    ds[0]  # record 0 is fine
    with pytest.raises(TFRecordError, match=r"traj_2_to_3\.tfrecords: record 1 \(byte offset \d+\): data CRC mismatch"):
        ds[1]
    unchecked = uint8(BAIRPushing(tmp_path, verify=False)[1]["video"])  # the caller may skip the check
    assert (unchecked != vids[1]).sum() == 1
    path.write_bytes(bytes(raw[: off1 + n1 // 2]))  # cut inside record 1
    with pytest.raises(TFRecordError, match=r"traj_2_to_3\.tfrecords: record 1 \(byte offset \d+\): truncated"):
        BAIRPushing(tmp_path)
    bad = bytearray(raw)
    bad[3] ^= 0x01  # record 0's length no longer matches its CRC
    path.write_bytes(bytes(bad))
    with pytest.raises(TFRecordError, match=r"traj_2_to_3\.tfrecords: record 0 .*length's CRC"):
        BAIRPushing(tmp_path)
    with pytest.raises(VideoReadError):  # TFRecordError is a VideoReadError: the CLI prints one line
        BAIRPushing(tmp_path)


def test_bair_npy_and_errors(tmp_path):
    vids = np.stack([rand_frames(i, 30) for i in range(2)])
    np.save(tmp_path / "test.npy", vids)
    ds = BAIRPushing(tmp_path, split="test", frames=16)  # finds test.npy in the folder
    assert len(ds) == 2 and ds.kind == "npy"
    np.testing.assert_array_equal(uint8(ds[1]["video"]), vids[1, :16])
    np.save(tmp_path / "wrong.npy", vids[:, :, :, :, 0])
    with pytest.raises(VideoReadError, match=r"wrong\.npy: the array must be uint8 of shape \(N, T, H, W, 3\)"):
        BAIRPushing(tmp_path / "wrong.npy")
    with pytest.raises(VideoReadError, match="frames 0..39"):
        BAIRPushing(tmp_path / "test.npy", frames=40)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no .tfrecords files in .*empty"):
        BAIRPushing(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="no BAIR data at"):
        BAIRPushing(tmp_path / "nothing_here")


def test_bair_hdf5(tmp_path):
    h5py = pytest.importorskip("h5py")
    vids = np.stack([rand_frames(i, 30) for i in range(3)])
    with h5py.File(tmp_path / "bair.h5", "w") as f:
        f["videos"] = vids
    ds = BAIRPushing(tmp_path / "bair.h5", frames=16)
    np.testing.assert_array_equal(uint8(ds[2]["video"]), vids[2, :16])
    with h5py.File(tmp_path / "videogpt.hdf5", "w") as f:  # VideoGPT's layout: all frames, and where each video starts
        f["test_data"] = vids.reshape(-1, 64, 64, 3)
        f["test_idx"] = np.array([0, 30, 60])
    ds = BAIRPushing(tmp_path / "videogpt.hdf5", split="test", frames=30)
    assert len(ds) == 3
    np.testing.assert_array_equal(uint8(ds[1]["video"]), vids[1])


# -- UCF101 --------------------------------------------------------------------------------------------


def ucf_tree(root: Path, train_lines=None):
    ucf = root / "UCF-101"
    clips = {
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi": rand_frames(1, 18),
        "Biking/v_Biking_g01_c02.avi": rand_frames(2, 18),
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi": rand_frames(3, 18),
    }
    for rel, frames in clips.items():
        write_video(ucf / rel, frames)
    lists = ucf / "ucfTrainTestlist"
    lists.mkdir()
    (lists / "classInd.txt").write_text("1 ApplyEyeMakeup\n2 Biking\n")
    (lists / "trainlist01.txt").write_text("\n".join(train_lines or ["Biking/v_Biking_g01_c02.avi 2",
                                                                      "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1"]) + "\n")  # fmt: skip
    (lists / "testlist01.txt").write_text("ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi\n")
    return ucf, clips


def test_ucf101_split_lists_read_exactly(tmp_path):
    ucf, clips = ucf_tree(tmp_path)
    train = UCF101(ucf, split="train", fold=1, frames=16, clip="first")
    assert train.classes == ["ApplyEyeMakeup", "Biking"] and len(train) == 2
    assert [s[0] for s in train.samples] == ["Biking/v_Biking_g01_c02.avi", "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi"]
    for i, (rel, label) in enumerate([("Biking/v_Biking_g01_c02.avi", 1), ("ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi", 0)]):
        item = train[i]
        assert item["path"] == rel and int(item["label"]) == label and item["start"] == 0
        np.testing.assert_array_equal(uint8(item["video"]), clips[rel][:16])
    assert train[0]["caption"] == "biking"
    test = UCF101(ucf, split="test", frames=16, clip="first")  # lines without a label: the folder gives it
    assert len(test) == 1 and int(test[0]["label"]) == 0
    np.testing.assert_array_equal(uint8(test[0]["video"]), clips["ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi"][:16])


def test_ucf101_wrong_label_and_unreadable_video(tmp_path):
    ucf, _ = ucf_tree(tmp_path, train_lines=["Biking/v_Biking_g01_c02.avi 1"])
    with pytest.raises(ValueError, match=r"trainlist01\.txt, line 1: 'Biking/v_Biking_g01_c02\.avi' is labelled 1"):
        UCF101(ucf, split="train")
    (ucf / "ucfTrainTestlist" / "trainlist01.txt").write_text("Biking/v_Biking_g09_c01.avi 2\n")
    (ucf / "Biking" / "v_Biking_g09_c01.avi").write_bytes(b"not a video at all" * 10)
    ds = UCF101(ucf, split="train", frames=16)
    with pytest.raises(VideoReadError, match=r"v_Biking_g09_c01\.avi: cannot open as a video"):
        ds[0]
    (ucf / "ucfTrainTestlist" / "trainlist01.txt").write_text("Biking/v_Biking_g07_c01.avi 2\n")
    with pytest.raises(FileNotFoundError, match=r"v_Biking_g07_c01\.avi"):
        UCF101(ucf, split="train")


# -- Kinetics-600 --------------------------------------------------------------------------------------


def kinetics_tree(root: Path, with_missing: bool = True):
    root.mkdir(parents=True, exist_ok=True)
    rows = ["label,youtube_id,time_start,time_end,split,is_cc",
            "playing guitar,abc-_1,10,20,test,0",
            "abseiling,xyz9,0,10,test,0"]  # fmt: skip
    if with_missing:
        rows.append("abseiling,gone00,5,15,test,0")
    (root / "test.csv").write_text("\n".join(rows) + "\n")
    clips = {"abc-_1": rand_frames(4, 18, 24, 32), "xyz9": rand_frames(5, 18, 24, 32)}
    write_video(root / "playing_guitar" / "abc-_1_000010_000020.mp4", clips["abc-_1"])  # per-label folder
    write_video(root / "xyz9_000000_000010.mp4", clips["xyz9"])  # flat
    return clips


def test_kinetics600_csv_read_exactly(tmp_path):
    clips = kinetics_tree(tmp_path / "k600")
    with pytest.warns(UserWarning, match=r"1 of the 3 rows .* have no video file .* gone00_000005_000015"):
        ds = Kinetics600(tmp_path / "k600", split="test", frames=16, resolution=24, clip="first")
    assert len(ds) == 2 and ds.num_missing == 1 and ds.classes == ["abseiling", "playing guitar"]
    a, b = ds[0], ds[1]
    assert (a["youtube_id"], a["time_start"], a["time_end"], int(a["label"])) == ("abc-_1", 10, 20, 1)
    assert a["path"] == "playing_guitar/abc-_1_000010_000020.mp4" and a["caption"] == "playing guitar"
    assert (b["youtube_id"], int(b["label"]), b["path"]) == ("xyz9", 0, "xyz9_000000_000010.mp4")
    # 24x32 frames: the shorter side is already 24, so the center crop keeps columns 4..27 exactly
    np.testing.assert_array_equal(uint8(a["video"]), clips["abc-_1"][:16, :, 4:28])
    np.testing.assert_array_equal(uint8(b["video"]), clips["xyz9"][:16, :, 4:28])
    with pytest.raises(FileNotFoundError, match=r"test\.csv: no video file gone00_000005_000015"):
        Kinetics600(tmp_path / "k600", on_missing="raise")


def test_kinetics600_bad_csv_and_unreadable_video(tmp_path):
    kinetics_tree(tmp_path / "k", with_missing=False)
    (tmp_path / "k" / "playing_guitar" / "abc-_1_000010_000020.mp4").write_bytes(b"\x00garbage" * 50)
    ds = Kinetics600(tmp_path / "k", frames=16, resolution=24)
    with pytest.raises(VideoReadError, match=r"abc-_1_000010_000020\.mp4"):
        ds[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        skipping = Kinetics600(tmp_path / "k", frames=16, resolution=24, on_error="skip")
        assert skipping[0]["youtube_id"] == "xyz9" and skipping.num_skipped == 1
    (tmp_path / "bad.csv").write_text("label,id,start\nx,y,1\n")
    with pytest.raises(ValueError, match=r"bad\.csv: not a Kinetics CSV: no column youtube_id"):
        Kinetics600(tmp_path / "k", csv=tmp_path / "bad.csv")
