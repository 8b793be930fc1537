"""The layering shared/design.md describes, checked: core/ and the service logic below the
transports (server/service, server/store, server/http) never include gRPC; inside core/, the
engine's folders include only the folders below them (the executor's contract in core/exec sits
below the layers, which sit below graphs and training); and the kiln CLI links neither the
engine's oneDNN nor OpenMP - only the generated stubs and what it needs."""
import os
import re
import subprocess
import unittest

SOURCE = os.environ.get("KILN_SOURCE_DIR", os.path.join(os.path.dirname(__file__), ".."))
CLI_BIN = os.environ.get("KILN_CLI_BIN", "build/client/kiln")
GRPC_INCLUDE = re.compile(r'#include [<"](grpcpp/|grpc/|grpc\+\+/|kiln/v1/service\.grpc\.pb\.h)')


class LayeringTest(unittest.TestCase):
    def test_no_grpc_below_the_transports(self):
        offenders = []
        for top in ("core", "server/service", "server/store", "server/http"):
            for root, _, files in os.walk(os.path.join(SOURCE, top)):
                for name in files:
                    if not name.endswith((".h", ".cc")):
                        continue
                    path = os.path.join(root, name)
                    with open(path) as f:
                        if GRPC_INCLUDE.search(f.read()):
                            offenders.append(os.path.relpath(path, SOURCE))
        self.assertEqual(offenders, [])

    def test_core_folders_include_only_lower_ones(self):
        # Each folder may include the folders listed after it, never those before it.
        order = ["catalogue", "saving", "train", "graph", "layers", "exec", "keras", "dnnl", "io",
                 "tensor", "base"]
        include = re.compile(r'#include "core/([a-z_]+)/')
        offenders = []
        for rank, folder in enumerate(order):
            above = set(order[:rank])
            root = os.path.join(SOURCE, "core", folder)
            for name in sorted(os.listdir(root)):
                if not name.endswith((".h", ".cc")):
                    continue
                with open(os.path.join(root, name)) as f:
                    for target in include.findall(f.read()):
                        if target in above:
                            offenders.append(f"core/{folder}/{name} includes core/{target}/")
        self.assertEqual(offenders, [])

    def test_the_cli_links_no_engine(self):
        linked = subprocess.run(["ldd", CLI_BIN], capture_output=True, text=True,
                                check=True).stdout
        self.assertIn("libgrpc++", linked)  # the check itself works
        for library in ("libdnnl", "libgomp", "libsqlite3"):
            self.assertNotIn(library, linked)


if __name__ == "__main__":
    unittest.main()
