"""Writes the seed corpora of the fuzz targets (fuzz/corpus/<target>/): small valid inputs of
each kind, so that the fuzzers start past the parsers' first checks. Run with Debian's python3
and build/python on PYTHONPATH; the stored_state seeds are tensor files a server wrote."""
import io
import os
import struct

import numpy as np

from kiln.v1 import data_pb2, layers_pb2, model_pb2
from google.protobuf import json_format

HERE = os.path.dirname(os.path.abspath(__file__))


def write(target, name, data):
    directory = os.path.join(HERE, "corpus", target)
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, name), "wb") as f:
        f.write(data)


def npy(array):
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


write("readers_fuzz", "npy", b"\x00" + npy(np.arange(12, dtype=np.float32).reshape(3, 4)))
write("readers_fuzz", "npy_int", b"\x03" + npy(np.arange(6, dtype=np.int64)))
write("readers_fuzz", "idx", b"\x01" + bytes([0, 0, 8, 2]) + struct.pack(">ii", 2, 3) + bytes(6))
write("readers_fuzz", "csv", b"\x02" + b"a,b,label\n1,2,0\n3.5,-4,1\n")

write("tensor_proto_fuzz", "float", data_pb2.TensorProto(
    dtype=data_pb2.FLOAT32, shape=[2, 3], data=np.ones(6, np.float32).tobytes())
    .SerializeToString())
write("tensor_proto_fuzz", "values", data_pb2.TensorProto(
    dtype=data_pb2.FLOAT32, shape=[2], float_values=[1, 2]).SerializeToString())
write("tensor_proto_fuzz", "int64", data_pb2.TensorProto(
    dtype=data_pb2.INT64, shape=[3], data=np.arange(3).tobytes()).SerializeToString())

for name, spec in {
        "dense": {"dense": {"units": 4, "activation": "relu"}},
        "conv2d": {"conv2d": {"filters": 2, "kernel_size": [3], "padding": "same"}},
        "depthwise": {"depthwise_conv2d": {"kernel_size": [3], "depth_multiplier": 2}},
        "batchnorm": {"batch_normalization": {}},
        "dropout": {"dropout": {"rate": 0.5}},
        "pool": {"global_average_pooling2d": {}}}.items():
    message = json_format.ParseDict(spec, layers_pb2.LayerSpec())
    write("layer_spec_fuzz", name, bytes([2, 8, 8]) + message.SerializeToString())

definition = {
    "name": "tiny",
    "nodes": [
        {"id": "image", "input": {"shape": [8, 8, 1]}},
        {"id": "dw", "layer": {"depthwise_conv2d": {"kernel_size": [3]}}, "inputs": ["image"]},
        {"id": "flat", "layer": {"flatten": {}}, "inputs": ["dw"]},
        {"id": "out", "layer": {"dense": {"units": 2}}, "inputs": ["flat"]},
    ],
}
write("model_definition_fuzz", "tiny",
      json_format.ParseDict(definition, model_pb2.ModelDefinition()).SerializeToString())
