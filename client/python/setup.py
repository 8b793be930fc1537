"""Builds the kiln-client package (pyproject.toml): kiln_client, plus the API modules protoc
generates from the repository's proto/ into the build directory. The version is Kiln's, read
from the top CMakeLists.txt, where it is written once."""
import glob
import os
import re
import subprocess

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
PROTO = os.path.join(REPO, "proto")
GRPC_PLUGIN = "/usr/bin/grpc_python_plugin"  # Debian's protobuf-compiler-grpc


def kiln_version():
    with open(os.path.join(REPO, "CMakeLists.txt")) as f:
        return re.search(r"project\(kiln [^)]*VERSION ([0-9.]+)", f.read()).group(1)


class BuildWithApi(build_py):
    """build_py, then protoc: kiln.v1.*_pb2, service_pb2_grpc and google.rpc.*_pb2."""

    def run(self):
        super().run()
        sources = sorted(glob.glob(os.path.join(PROTO, "**", "*.proto"), recursive=True))
        subprocess.run(["protoc", f"--proto_path={PROTO}", f"--python_out={self.build_lib}",
                        *sources], check=True)
        subprocess.run(["protoc", f"--proto_path={PROTO}",
                        f"--grpc_python_out={self.build_lib}",
                        f"--plugin=protoc-gen-grpc_python={GRPC_PLUGIN}",
                        os.path.join(PROTO, "kiln", "v1", "service.proto")], check=True)


setup(version=kiln_version(), packages=["kiln_client"], cmdclass={"build_py": BuildWithApi})
