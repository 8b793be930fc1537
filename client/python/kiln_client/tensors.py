"""numpy arrays <-> the API's TensorProto (dtype, shape, raw little-endian bytes)."""
import numpy as np

from kiln.v1 import data_pb2

_DTYPES = {
    data_pb2.FLOAT32: np.float32,
    data_pb2.INT32: np.int32,
    data_pb2.INT64: np.int64,
    data_pb2.UINT8: np.uint8,
}


def to_tensor(array) -> data_pb2.TensorProto:
    a = np.ascontiguousarray(array)
    if a.dtype == np.float64:
        a = a.astype(np.float32)
    dtype = {np.dtype(v): k for k, v in _DTYPES.items()}.get(a.dtype)
    if dtype is None:
        raise TypeError(f"unsupported dtype {a.dtype}; use float32, int32, int64 or uint8")
    return data_pb2.TensorProto(dtype=dtype, shape=list(a.shape), data=a.tobytes())


def to_array(tensor: data_pb2.TensorProto) -> np.ndarray:
    if tensor.float_values:
        return np.array(tensor.float_values, dtype=np.float32).reshape(tuple(tensor.shape))
    dtype = _DTYPES.get(tensor.dtype, np.float32)
    return np.frombuffer(tensor.data, dtype=dtype).reshape(tuple(tensor.shape))
