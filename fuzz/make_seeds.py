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


# Keras files, by the server's import path (fuzz/keras_file_fuzz.cc). The .keras and
# .weights.h5 seeds are kiln-server's own exports of keras_file_fuzz.cc's kWeightsModel:
#   KILN_SEED_SERVER=127.0.0.1:50051 /usr/bin/python3 fuzz/make_seeds.py
# (any running kiln-server; build/python on PYTHONPATH). The full-model .h5 seed is written
# here with h5py in Keras 2's layout (model_config attribute, model_weights group).
SEED_MODEL = {"class_name": "Sequential", "config": {"name": "seed", "layers": [
    {"class_name": "InputLayer", "config": {"batch_shape": [None, 4], "name": "x"}},
    {"class_name": "Dense", "config": {"units": 3, "name": "dense"}},
    {"class_name": "Dense", "config": {"units": 2, "name": "dense_1"}}]}}


def keras2_full_model_h5():
    import json
    import h5py
    buffer = io.BytesIO()
    rng = np.random.default_rng(0)
    keras2 = {"class_name": "Sequential", "config": {"name": "seed", "layers": [
        {"class_name": "Dense", "config": {"name": "dense", "units": 3,
                                           "batch_input_shape": [None, 4]}},
        {"class_name": "Dense", "config": {"name": "dense_1", "units": 2}}]},
        "keras_version": "2.12.0", "backend": "tensorflow"}
    with h5py.File(buffer, "w") as f:
        f.attrs["keras_version"] = "2.12.0"
        f.attrs["backend"] = "tensorflow"
        f.attrs["model_config"] = json.dumps(keras2)
        weights = f.create_group("model_weights")
        weights.attrs["layer_names"] = np.array([b"dense", b"dense_1"])
        weights.attrs["backend"] = b"tensorflow"
        weights.attrs["keras_version"] = b"2.12.0"
        for name, shape in (("dense", (4, 3)), ("dense_1", (3, 2))):
            group = weights.create_group(name)
            group.attrs["weight_names"] = np.array([f"{name}/kernel:0".encode(),
                                                    f"{name}/bias:0".encode()])
            inner = group.create_group(name)
            inner["kernel:0"] = rng.standard_normal(shape).astype(np.float32)
            inner["bias:0"] = np.zeros(shape[1], np.float32)
    return buffer.getvalue()


write("keras_h5_fuzz", "keras2_full_model", keras2_full_model_h5())

if os.environ.get("KILN_SEED_SERVER"):
    import json
    from kiln_client import Client
    session = Client(os.environ["KILN_SEED_SERVER"]).create_session()
    session.import_model(json.dumps(SEED_MODEL).encode(), name="seed")
    for target, kind in (("keras_archive_fuzz", "keras"), ("keras_weights_fuzz", "weights")):
        write(target, "kiln_export", session.export_model("seed", format=kind))
    session.delete()
