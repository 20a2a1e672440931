"""TFRecord files and ``tf.train.Example`` protos, read and written without TensorFlow.

The BAIR robot pushing data (:mod:`vdm_lite.datasets.bair`) ships as TFRecord files. This
module reads them with the standard library and NumPy only.

**Framing** of one record (TensorFlow's ``core/lib/io/record_writer.cc``)::

    uint64 length            little-endian
    uint32 masked_crc32c(the 8 bytes of length)
    byte   data[length]
    uint32 masked_crc32c(data)

    masked_crc32c(b) = ((c >> 15) | (c << 17)) + 0xa282ead8  (mod 2**32),  c = crc32c(b)

CRC-32C is the Castagnoli CRC (reflected polynomial ``0x82F63B78``): :func:`crc32c` uses the
C extension of the ``crc32c`` or ``google-crc32c`` package when one is installed, and else a
table-driven pure-Python loop (about 0.15 s per MB: ``verify=False`` skips the data check).

**Protos** (``tensorflow/core/example/example.proto`` and ``feature.proto``)::

    Example   { Features features = 1; }
    Features  { map<string, Feature> feature = 1; }       // map entry: key = 1, value = 2
    Feature   { oneof kind { BytesList bytes_list = 1; FloatList float_list = 2; Int64List int64_list = 3; } }
    BytesList { repeated bytes value = 1; }
    FloatList { repeated float value = 1 [packed = true]; }
    Int64List { repeated int64 value = 1 [packed = true]; }

A ``SequenceExample``'s ``context`` is its field 1 as well, so the context features of a
``SequenceExample`` (how ``tensorflow_datasets`` reads BAIR) parse the same way.

Errors: a truncated file, a bad CRC or a malformed proto raises :class:`TFRecordError` (a
:class:`~vdm_lite.datasets.VideoReadError`) naming the file, the record index and its byte
offset.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Union

import numpy as np

from .video import VideoReadError

__all__ = [
    "TFRecordError",
    "crc32c",
    "masked_crc32c",
    "index_tfrecord",
    "read_record",
    "iter_tfrecord",
    "write_tfrecord",
    "parse_example",
    "encode_example",
    "read_examples",
]

FeatureValue = Union[list, np.ndarray]


class TFRecordError(VideoReadError):
    """A TFRecord file or one of its records is unusable; the message names the file and the
    record (index and byte offset)."""


# -- CRC-32C ------------------------------------------------------------------------------


def _crc_table() -> list[int]:
    poly = 0x82F63B78  # Castagnoli, reflected
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ poly if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc_table()


def crc32c_python(data: bytes, crc: int = 0) -> int:
    """CRC-32C of ``data`` (continuing from ``crc``), by table in pure Python."""
    table = _TABLE
    crc ^= 0xFFFFFFFF
    for b in bytes(data):
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _fast_crc32c():
    try:  # the `crc32c` package (a C extension with hardware support)
        import crc32c as _c

        return lambda data: _c.crc32c(bytes(data))
    except Exception:
        pass
    try:  # google-crc32c
        import google_crc32c as _g

        return lambda data: _g.value(bytes(data))
    except Exception:
        return None


_FAST = _fast_crc32c()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli) of ``data``: ``crc32c(b"123456789") == 0xE3069283``."""
    return _FAST(data) if _FAST is not None else crc32c_python(data)


def masked_crc32c(data: bytes) -> int:
    """TFRecord's masked CRC-32C: ``((c >> 15) | (c << 17)) + 0xa282ead8`` mod 2**32."""
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


# -- framing ------------------------------------------------------------------------------


def index_tfrecord(path: str | os.PathLike) -> list[tuple[int, int]]:
    """``[(offset of the data, length), ...]`` of every record of a TFRecord file, reading
    only the 12-byte headers (each length is checked against its CRC). Raises
    :class:`TFRecordError` for a truncated file or a corrupt header."""
    path = Path(path)
    size = path.stat().st_size
    out: list[tuple[int, int]] = []
    with open(path, "rb") as f:
        pos = 0
        while pos < size:
            i = len(out)
            header = f.read(12)
            if len(header) < 12:
                raise TFRecordError(f"{path}: record {i} (byte offset {pos}): truncated: {len(header)} bytes of "
                                    "its 12-byte header")  # fmt: skip
            length_bytes, (stored,) = header[:8], struct.unpack("<I", header[8:])
            if masked_crc32c(length_bytes) != stored:
                raise TFRecordError(f"{path}: record {i} (byte offset {pos}): the length's CRC does not match "
                                    "(not a TFRecord file, or a corrupt header)")  # fmt: skip
            (length,) = struct.unpack("<Q", length_bytes)
            end = pos + 12 + length + 4
            if end > size:
                raise TFRecordError(f"{path}: record {i} (byte offset {pos}): truncated: its header gives {length} "
                                    f"bytes of data, the file has {max(size - pos - 12, 0)} left (plus a 4-byte CRC)")  # fmt: skip
            out.append((pos + 12, length))
            pos = end
            f.seek(pos)
    return out


def read_record(f, offset: int, length: int, *, verify: bool = True, path: str | os.PathLike = "?",
                index: int | None = None) -> bytes:
    """The data of one record from an open binary file ``f`` (``offset``/``length`` from
    :func:`index_tfrecord`), its CRC checked unless ``verify=False``."""
    where = f"{path}: record {index if index is not None else '?'} (byte offset {offset - 12})"
    f.seek(offset)
    data = f.read(length)
    crc = f.read(4)
    if len(data) < length or len(crc) < 4:
        raise TFRecordError(f"{where}: truncated: {len(data)} of {length} bytes of data")
    if verify:
        (stored,) = struct.unpack("<I", crc)
        computed = masked_crc32c(data)
        if computed != stored:
            raise TFRecordError(f"{where}: data CRC mismatch (stored {stored:#010x}, computed {computed:#010x}): "
                                "the record is corrupt")  # fmt: skip
    return data


def iter_tfrecord(path: str | os.PathLike, *, verify: bool = True) -> Iterator[bytes]:
    """Every record's data, in file order (CRCs checked unless ``verify=False``)."""
    records = index_tfrecord(path)
    with open(path, "rb") as f:
        for i, (offset, length) in enumerate(records):
            yield read_record(f, offset, length, verify=verify, path=path, index=i)


def write_tfrecord(path: str | os.PathLike, records: Iterable[bytes]) -> Path:
    """Write ``records`` (serialized protos) as a TFRecord file with correct masked CRCs."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        for data in records:
            data = bytes(data)
            length = struct.pack("<Q", len(data))
            f.write(length + struct.pack("<I", masked_crc32c(length)) + data + struct.pack("<I", masked_crc32c(data)))
    return path


# -- protobuf wire format -----------------------------------------------------------------


class _ProtoError(ValueError):
    pass


def _varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= end:
            raise _ProtoError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise _ProtoError("varint longer than 10 bytes")


def _fields(buf: bytes, start: int, end: int) -> Iterator[tuple[int, int, object]]:
    """``(field number, wire type, value)``: an int (varint), ``(start, end)`` of a
    length-delimited field, or the raw bytes of a fixed 32/64-bit field."""
    pos = start
    while pos < end:
        key, pos = _varint(buf, pos, end)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos, end)
        elif wire == 1:
            value, pos = buf[pos : pos + 8], pos + 8
        elif wire == 2:
            n, pos = _varint(buf, pos, end)
            value, pos = (pos, pos + n), pos + n
        elif wire == 5:
            value, pos = buf[pos : pos + 4], pos + 4
        else:
            raise _ProtoError(f"unsupported wire type {wire} (field {field})")
        if pos > end:
            raise _ProtoError(f"field {field} runs past the end of its message")
        yield field, wire, value


def _signed64(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _feature(buf: bytes, start: int, end: int) -> FeatureValue:
    for kind, wire, value in _fields(buf, start, end):
        if wire != 2:
            continue
        s, e = value
        if kind == 1:  # BytesList
            return [buf[v[0] : v[1]] for f, w, v in _fields(buf, s, e) if f == 1 and w == 2]
        if kind == 2:  # FloatList: packed (wire 2) or one float per field (wire 5)
            parts = []
            for f, w, v in _fields(buf, s, e):
                if f != 1:
                    continue
                parts.append(np.frombuffer(buf[v[0] : v[1]], dtype="<f4") if w == 2 else np.frombuffer(v, dtype="<f4"))
            return np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)
        if kind == 3:  # Int64List: packed varints (wire 2) or one varint per field (wire 0)
            vals = []
            for f, w, v in _fields(buf, s, e):
                if f != 1:
                    continue
                if w == 0:
                    vals.append(_signed64(v))
                elif w == 2:
                    p, q = v
                    while p < q:
                        x, p = _varint(buf, p, q)
                        vals.append(_signed64(x))
            return np.array(vals, dtype=np.int64)
    return []  # a Feature with no kind set


def parse_example(data: bytes) -> dict[str, FeatureValue]:
    """A serialized ``tf.train.Example`` (or the context of a ``SequenceExample``) as
    ``{key: value}``: a list of ``bytes`` (``bytes_list``), a float32 array (``float_list``)
    or an int64 array (``int64_list``). Raises ``ValueError`` on a malformed proto."""
    buf = bytes(data)
    out: dict[str, FeatureValue] = {}
    try:
        for field, wire, value in _fields(buf, 0, len(buf)):
            if field != 1 or wire != 2:
                continue  # a SequenceExample's feature_lists (field 2) and unknown fields
            for f, w, entry in _fields(buf, *value):
                if f != 1 or w != 2:
                    continue
                key, feat = None, None
                for ef, ew, ev in _fields(buf, *entry):
                    if ef == 1 and ew == 2:
                        key = buf[ev[0] : ev[1]].decode("utf-8")
                    elif ef == 2 and ew == 2:
                        feat = ev
                if key is not None:
                    out[key] = _feature(buf, *feat) if feat is not None else []
    except (_ProtoError, UnicodeDecodeError) as exc:
        raise ValueError(f"not a tf.train.Example proto: {exc}") from None
    return out


def _enc_varint(n: int) -> bytes:
    if n < 0:
        n += 1 << 64
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _len_field(field: int, payload: bytes) -> bytes:
    return _enc_varint(field << 3 | 2) + _enc_varint(len(payload)) + payload


def _enc_feature(value) -> bytes:
    if isinstance(value, (bytes, bytearray, memoryview)):
        value = [bytes(value)]
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, (bytes, bytearray, memoryview)) for v in value):
        return _len_field(1, b"".join(_len_field(1, bytes(v)) for v in value))
    arr = np.asarray(value)
    if arr.dtype.kind == "f":
        return _len_field(2, _len_field(1, arr.astype("<f4").ravel().tobytes()))
    if arr.dtype.kind in "iub":
        return _len_field(3, _len_field(1, b"".join(_enc_varint(int(v)) for v in arr.ravel())))
    raise TypeError(f"cannot encode a feature of {type(value).__name__} ({arr.dtype})")


def encode_example(features: Mapping[str, object]) -> bytes:
    """Serialize ``{key: value}`` as a ``tf.train.Example``: ``bytes`` or a list of ``bytes``
    -> ``bytes_list``; floats -> ``float_list`` (packed float32); ints -> ``int64_list``
    (packed). The inverse of :func:`parse_example`."""
    entries = b"".join(_len_field(1, _len_field(1, k.encode("utf-8")) + _len_field(2, _enc_feature(v)))
                       for k, v in features.items())  # fmt: skip
    return _len_field(1, entries)


def read_examples(path: str | os.PathLike, *, verify: bool = True) -> list[dict[str, FeatureValue]]:
    """Every record of a TFRecord file parsed with :func:`parse_example` (small files only)."""
    out = []
    for i, data in enumerate(iter_tfrecord(path, verify=verify)):
        try:
            out.append(parse_example(data))
        except ValueError as exc:
            raise TFRecordError(f"{path}: record {i}: {exc}") from None
    return out

