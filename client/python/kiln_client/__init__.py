"""Python client for Kiln: build Keras-style models card by card on a Kiln server, train them
and predict, with numpy arrays in and out.

    from kiln_client import Client
    with Client("localhost").create_session("demo", seed=1) as session:
        x = session.add_input([28, 28, 1])
        _, (y,) = session.add_layer({"depthwise_conv2d": {"kernel_size": [3]}}, [x])

Modules: client (Client), session (Session, TensorRef), errors (KilnError), progress (Keras-style
progress lines), tensors (numpy <-> TensorProto).

It needs Debian's python3-grpcio, python3-protobuf and python3-numpy, and the API modules the
build generates: put build/python (where this package is copied too) on sys.path.
"""
from kiln_client.client import Client, with_default_port
from kiln_client.errors import KilnError
from kiln_client.session import Session, TensorRef

__all__ = ["Client", "KilnError", "Session", "TensorRef", "with_default_port"]
