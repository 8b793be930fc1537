"""End-to-end: the catalogue and Keras model files through the `kiln` CLI and the Python client
against a real kiln-server. Exported archives are read with h5py (Debian python3-h5py) and
Python's zipfile to find the members, layer groups and weight paths Keras 3 expects; an
imported model's definition (kiln model definition, Session.model_definition) defines it
again."""
import io
import json
import os
import zipfile

import h5py
import numpy as np

from kiln_client import Client
from kiln_e2e import CliTestCase

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "keras")


def fixture(name):
    return os.path.join(FIXTURES, name)


class KerasFilesTest(CliTestCase):
    def test_catalogue_palette_card_and_json(self):
        palette = self.kiln("catalogue").stdout
        for name in ("DepthwiseConv2D", "GlorotUniform", "MaxNorm", "Adam", "swish",
                     "sparse_categorical_crossentropy", "accuracy"):
            self.assertIn(name, palette)
        card = self.kiln("catalogue", "DepthwiseConv2D").stdout
        self.assertIn("kernel_size", card)
        self.assertIn("required", card)
        self.assertIn('"valid"', card)
        self.assertIn("one of valid, same", card)
        catalogue = json.loads(self.kiln("catalogue", "--json").stdout)
        layers = {c["class_name"]: c for c in catalogue["layers"]}
        self.assertIn("DepthwiseConv2D", layers)
        args = {a["name"]: a for a in layers["DepthwiseConv2D"]["arguments"]}
        self.assertEqual(args["depth_multiplier"]["default_json"], "1")
        self.assertEqual(args["depthwise_initializer"]["type"], "ARGUMENT_TYPE_INITIALIZER")
        run = self.kiln("catalogue", "Conv3D", expect=1)
        self.assertIn("NOT_FOUND", run.stderr)

    def test_import_export_and_h5py_sees_keras_paths(self):
        s = self.new_session()
        out = self.kiln("model", "import", fixture("keras2_mobilenet.json"), "--name=mob",
                        session=s).stdout
        self.assertIn("Total params: 2,666", out)
        archive = self.path("mob.keras")
        self.kiln("model", "export", "--model=mob", archive, session=s)
        with zipfile.ZipFile(archive) as z:
            members = [(i.filename, i.compress_type) for i in z.infolist()]
            self.assertEqual(members, [("metadata.json", zipfile.ZIP_STORED),
                                       ("config.json", zipfile.ZIP_STORED),
                                       ("model.weights.h5", zipfile.ZIP_STORED)])
            config = json.loads(z.read("config.json"))
            self.assertEqual(config["class_name"], "Functional")
            self.assertEqual(config["registered_name"], "Functional")
            metadata = json.loads(z.read("metadata.json"))
            self.assertTrue(metadata["keras_version"].startswith("3."))
            weights = h5py.File(io.BytesIO(z.read("model.weights.h5")), "r")
        self.assertEqual(weights["vars"].attrs["name"], "mob")
        self.assertEqual(weights["layers/depthwise_conv2d/vars"].attrs["name"],
                         "depthwise_conv2d")
        self.assertEqual(weights["layers/depthwise_conv2d/vars/0"].shape, (3, 3, 16, 1))
        self.assertEqual(weights["layers/depthwise_conv2d_1/vars/0"].shape, (3, 3, 32, 2))
        self.assertEqual(weights["layers/depthwise_conv2d_1/vars/1"].shape, (64,))
        self.assertEqual(len(weights["layers/batch_normalization/vars"]), 4)  # gamma..variance
        self.assertEqual(weights["layers/dense/vars/0"].shape, (64, 10))
        self.assertEqual(weights["layers/dense/vars/0"].dtype, np.float32)
        self.assertIn("layers/input_layer/vars", weights)
        self.assertEqual(len(weights["layers/dropout/vars"]), 0)
        # Every layer of the config has its group, named by class and rank.
        classes = [layer["class_name"] for layer in config["config"]["layers"]]
        self.assertEqual(len(weights["layers"]), len(classes))
        # The weights alone, and back into another model of the same graph.
        self.kiln("model", "export", "--model=mob", self.path("mob.weights.h5"), session=s)
        self.kiln("model", "export", "--model=mob", "--format=json", self.path("mob.json"),
                  session=s)
        self.kiln("model", "import", self.path("mob.json"), "--name=copy", session=s)
        self.kiln("model", "import", self.path("mob.weights.h5"), "--model=copy", session=s)
        self.kiln("model", "import", archive, "--name=copy2", session=s)
        x = np.random.default_rng(1).random((3, 32, 32, 3), dtype=np.float32)
        np.save(self.path("x32.npy"), x)
        outputs = {}
        for model in ("mob", "copy", "copy2"):
            path = self.path(f"{model}.npy")
            self.kiln("predict", f"--model={model}", f"--input={self.path('x32.npy')}",
                      f"--output={path}", session=s)
            outputs[model] = np.load(path)
        np.testing.assert_array_equal(outputs["copy"], outputs["mob"])
        np.testing.assert_array_equal(outputs["copy2"], outputs["mob"])

    def test_import_errors_name_the_place_in_the_file(self):
        s = self.new_session()
        with open(fixture("keras2_sequential.json")) as f:
            model = json.load(f)
        model["config"]["layers"][1]["config"]["filters"] = 0
        bad = self.path("bad.json")
        with open(bad, "w") as f:
            json.dump(model, f)
        run = self.kiln("model", "import", bad, session=s, expect=1)
        self.assertIn("INVALID_ARGUMENT: data.config.layers[1].config.filters:", run.stderr)
        self.assertEqual(self.kiln("model", "list", session=s).stdout, "")

    def test_python_client_round_trip(self):
        client = Client(self.server.address)
        with client.create_session(seed=5) as s:
            info = s.import_model(fixture("keras3_shared_two_inputs.json"), name="two")
            self.assertEqual(info.total_params, 239)
            archive = s.export_model("two", format="keras")
            again = s.import_model(archive, name="again")
            self.assertEqual(again.total_params, 239)
            rng = np.random.default_rng(2)
            xs = [rng.random((2, 8, 8, 3), dtype=np.float32) for _ in range(2)]
            first, second = s.predict("two", xs), s.predict("again", xs)
            for a, b in zip(first, second):
                np.testing.assert_array_equal(a, b)
            self.assertEqual(len(client.catalogue("Dense").layers), 1)
            # The imported model as a definition (what the editor draws as cards) defines it
            # again; the shared layer's second call is node "<layer>#1".
            definition = s.model_definition("two")
            self.assertIn("shared_dw#1", [n.id for n in definition.nodes])
            definition.name = "drawn"
            self.assertEqual(s.define_model(definition).total_params, 239)

    def test_cli_model_definition(self):
        s = self.new_session()
        self.kiln("model", "import", fixture("keras2_mobilenet.json"), "--name=mob", session=s)
        path = self.path("mob.definition.json")
        out = self.kiln("model", "definition", "--model=mob", path, session=s).stdout
        with open(path) as f:
            definition = json.load(f)
        self.assertIn(f"as a definition of {len(definition['nodes'])} nodes", out)
        self.assertEqual(definition["name"], "mob")
        printed = json.loads(self.kiln("model", "definition", "--model=mob", session=s).stdout)
        self.assertEqual(printed, definition)
        definition["name"] = "mob2"
        with open(path, "w") as f:
            json.dump(definition, f)
        self.assertIn("Total params: 2,666",
                      self.kiln("model", "define", path, session=s).stdout)


if __name__ == "__main__":
    import unittest
    unittest.main()
