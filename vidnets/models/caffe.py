"""Reading (and writing) Caffe ``.caffemodel`` files without Caffe.

A ``.caffemodel`` is a binary protobuf ``NetParameter``. Only the fields that carry weights are
declared here, by their BVLC ``caffe.proto`` numbers; every other field of a real file is kept by
protobuf as an unknown field and ignored. The message classes are built at run time from a
descriptor written in Python, so no compiled ``caffe_pb2`` is needed::

    NetParameter      name = 1, layer = 100 (LayerParameter), layers = 2 (legacy V1LayerParameter)
    LayerParameter    name = 1, type = 2 (string), blobs = 7
    V1LayerParameter  name = 4, type = 5 (enum, kept as its number), blobs = 6
    BlobProto         num, channels, height, width = 1–4 (legacy 4-D shape), data = 5 (packed
                      float), shape = 7 (BlobShape: dim = 1), double_data = 8 (packed double)

C3D v1.0 (facebookarchive/C3D ``src/caffe/proto/caffe.proto``) stores 5-D blobs under other
numbers: num, channels, length, height, width = 1–5 and data = 6. Read with the BVLC layout, such
a blob shows its values in field 6 (BVLC's ``diff``) and none in ``data``; :func:`read_caffemodel`
then reads that layer's blobs with the C3D layout.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

__all__ = ["CaffeLayer", "CaffeFormatError", "LAYOUTS", "read_caffemodel", "write_caffemodel"]


class CaffeFormatError(ValueError):
    """The file is not a readable Caffe NetParameter."""


@dataclass
class CaffeLayer:
    """One layer of a caffemodel: its name, type (a string; V1 enum numbers as ``"V1:<n>"``) and blobs."""

    name: str
    type: str
    blobs: list[np.ndarray] = field(default_factory=list)


_OPTIONAL, _REPEATED = 1, 3  # FieldDescriptorProto labels
_TYPES = {"int32": 5, "int64": 3, "float": 2, "double": 1, "string": 9, "message": 11}


def _message(file_proto, name: str, fields: list[tuple]) -> None:
    msg = file_proto.message_type.add(name=name)
    for field_name, number, kind, label, *rest in fields:
        f = msg.field.add(name=field_name, number=number, type=_TYPES[kind], label=label)
        if kind == "message":
            f.type_name = f".vidnets_caffe.{rest[0]}"
        if label == _REPEATED and kind in ("float", "double", "int64"):
            f.options.packed = True


@lru_cache(maxsize=1)
def _classes() -> dict[str, type]:
    """The message classes of the schema in the module docstring (built once)."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    fp = descriptor_pb2.FileDescriptorProto(name="vidnets_caffe.proto", package="vidnets_caffe", syntax="proto2")
    _message(fp, "BlobShape", [("dim", 1, "int64", _REPEATED)])
    _message(
        fp,
        "BlobProto",
        [
            ("num", 1, "int32", _OPTIONAL),
            ("channels", 2, "int32", _OPTIONAL),
            ("height", 3, "int32", _OPTIONAL),
            ("width", 4, "int32", _OPTIONAL),
            ("data", 5, "float", _REPEATED),
            ("diff", 6, "float", _REPEATED),
            ("shape", 7, "message", _OPTIONAL, "BlobShape"),
            ("double_data", 8, "double", _REPEATED),
        ],
    )
    _message(
        fp,
        "C3DBlobProto",
        [
            ("num", 1, "int32", _OPTIONAL),
            ("channels", 2, "int32", _OPTIONAL),
            ("length", 3, "int32", _OPTIONAL),
            ("height", 4, "int32", _OPTIONAL),
            ("width", 5, "int32", _OPTIONAL),
            ("data", 6, "float", _REPEATED),
        ],
    )
    _message(
        fp,
        "LayerParameter",
        [
            ("name", 1, "string", _OPTIONAL),
            ("type", 2, "string", _OPTIONAL),
            ("blobs", 7, "message", _REPEATED, "BlobProto"),
        ],
    )
    _message(
        fp,
        "V1LayerParameter",
        [
            ("name", 4, "string", _OPTIONAL),
            ("type", 5, "int32", _OPTIONAL),
            ("blobs", 6, "message", _REPEATED, "BlobProto"),
        ],
    )
    _message(
        fp,
        "C3DLayerParameter",
        [
            ("name", 4, "string", _OPTIONAL),
            ("type", 5, "int32", _OPTIONAL),
            ("blobs", 6, "message", _REPEATED, "C3DBlobProto"),
        ],
    )
    _message(
        fp,
        "C3DNetParameter",
        [
            ("name", 1, "string", _OPTIONAL),
            ("layers", 2, "message", _REPEATED, "C3DLayerParameter"),
        ],
    )
    _message(
        fp,
        "NetParameter",
        [
            ("name", 1, "string", _OPTIONAL),
            ("layers", 2, "message", _REPEATED, "V1LayerParameter"),
            ("layer", 100, "message", _REPEATED, "LayerParameter"),
        ],
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fp)
    names = ("BlobProto", "C3DLayerParameter", "C3DNetParameter", "LayerParameter", "V1LayerParameter", "NetParameter")
    return {n: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"vidnets_caffe.{n}")) for n in names}


def _blob_array(blob, where: str) -> np.ndarray:
    if blob.HasField("shape"):
        shape = tuple(int(d) for d in blob.shape.dim)
    else:
        shape = tuple(int(d) for d in (blob.num, blob.channels, blob.height, blob.width))
    values = np.asarray(blob.double_data if len(blob.double_data) else blob.data, dtype=np.float32)
    if values.size != int(np.prod(shape)):
        raise CaffeFormatError(f"{where}: {values.size} values for shape {shape}")
    return values.reshape(shape)


def _c3d_blobs(raw: bytes, where: str) -> list[np.ndarray]:
    layer = _classes()["C3DLayerParameter"].FromString(raw)
    out = []
    for i, blob in enumerate(layer.blobs):
        shape = (blob.num, blob.channels, blob.length, blob.height, blob.width)
        values = np.asarray(blob.data, dtype=np.float32)
        if values.size != int(np.prod(shape)):
            raise CaffeFormatError(f"{where} blob {i}: {values.size} values for C3D shape {shape}")
        out.append(values.reshape(shape))
    return out


def read_caffemodel(path: str | os.PathLike) -> list[CaffeLayer]:
    """The layers of a ``.caffemodel`` (new ``layer`` or legacy ``layers`` syntax), blobs as float32 arrays."""
    from google.protobuf.message import DecodeError

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"caffemodel {path}: no such file")
    try:
        net = _classes()["NetParameter"].FromString(path.read_bytes())
    except DecodeError as e:
        raise CaffeFormatError(f"caffemodel {path}: not a Caffe NetParameter ({e})") from e
    layers = [
        CaffeLayer(p.name, p.type, [_blob_array(b, f"{path}: layer {p.name} blob {i}") for i, b in enumerate(p.blobs)])
        for p in net.layer
    ]
    for p in net.layers:
        where = f"{path}: layer {p.name}"
        if any(len(b.data) == 0 and len(b.double_data) == 0 and len(b.diff) > 0 for b in p.blobs):
            blobs = _c3d_blobs(p.SerializeToString(), where)  # C3D v1.0 numbering (module docstring)
        else:
            blobs = [_blob_array(b, f"{where} blob {i}") for i, b in enumerate(p.blobs)]
        layers.append(CaffeLayer(p.name, f"V1:{p.type}", blobs))
    if not layers:
        raise CaffeFormatError(f"caffemodel {path}: no layers (is it a Caffe .caffemodel?)")
    return layers


LAYOUTS = ("layer", "v1", "c3d")


def write_caffemodel(
    path: str | os.PathLike, layers: list[CaffeLayer], *, name: str = "", layout: str = "layer"
) -> None:
    """Write ``layers`` as a binary NetParameter, atomically.

    ``layout``: ``"layer"`` (current Caffe: ``layer`` = 100, N-D ``shape``), ``"v1"`` (legacy
    ``layers`` = 2 with 4-D num/channels/height/width; fewer dimensions are padded with leading 1s)
    or ``"c3d"`` (C3D v1.0's legacy layers with 5-D blobs). V1 layer types are ``"V1:<number>"``.
    """
    from vidnets.utils.io import atomic_write_bytes

    if layout not in LAYOUTS:
        raise ValueError(f"layout: expected one of {', '.join(LAYOUTS)}, got {layout!r}")
    classes = _classes()
    net = classes["C3DNetParameter" if layout == "c3d" else "NetParameter"](name=name)
    for layer in layers:
        if layout == "layer":
            proto = net.layer.add(name=layer.name, type=layer.type)
        else:
            proto = net.layers.add(name=layer.name, type=int(layer.type.removeprefix("V1:") or 0))
        for array in layer.blobs:
            _fill_blob(proto.blobs.add(), np.asarray(array, dtype=np.float32), layout, layer.name)
    atomic_write_bytes(path, net.SerializeToString())


def _fill_blob(blob, array: np.ndarray, layout: str, layer: str) -> None:
    if layout == "layer":
        blob.shape.dim.extend(array.shape)
    else:
        dims = 4 if layout == "v1" else 5
        if array.ndim > dims:
            raise ValueError(f"layer {layer}: a {layout} blob holds at most {dims} dimensions, got {array.shape}")
        shape = (1,) * (dims - array.ndim) + array.shape
        if layout == "v1":
            blob.num, blob.channels, blob.height, blob.width = shape
        else:
            blob.num, blob.channels, blob.length, blob.height, blob.width = shape
    blob.data.extend(array.reshape(-1).tolist())
