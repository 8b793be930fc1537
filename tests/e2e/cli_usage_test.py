"""End-to-end: what the `kiln` CLI and kiln-server say when they are used wrongly - help for
every command, usage errors that name the closest real command or flag (exit 2), hints for an
unreachable server or a missing session, file and JSON errors that say what is wrong where.
"""
import json
import socket
import subprocess
import time
import unittest

from kiln_e2e import CLI_BIN, SERVER_BIN, CliTestCase, KilnServer


class CliUsageTest(CliTestCase):
    def test_every_command_has_its_own_help(self):
        listing = self.kiln("help").stdout
        commands = [line.strip().split("  ")[0] for line in listing.splitlines()
                    if line.startswith("  ") and not line.startswith("   ")]
        self.assertIn("fit", commands)
        self.assertIn("weights set LAYER WEIGHT=FILE.npy...", commands)
        for command in commands:
            words = [w for w in command.split() if w.islower() and not w.endswith("...")]
            with self.subTest(command=command):
                shown = self.kiln(*words, "--help").stdout
                self.assertIn(f"Usage: kiln {command}", shown)
                self.assertEqual(self.kiln("help", *words).stdout, shown)
                self.assertIn("--server", shown)
        fit = self.kiln("fit", "--help").stdout
        for flag in ("--epochs=1", "--batch_size=32", "--dataset", "--detach", "Ctrl-C"):
            self.assertIn(flag, fit)
        self.assertNotIn("--ttl", fit)  # only the flags fit takes

    def test_usage_errors_exit_2_and_suggest(self):
        cases = [
            (["fti"], 'unknown command "fti"; did you mean fit?'),
            (["model", "defne", "x.json"], "did you mean define?"),
            (["model"], "kiln model takes: define, summary, definition, list, delete"),
            (["fit", "--epoch=3"], "unknown flag --epoch; did you mean --epochs?"),
            (["fit", "--ttl=3"], "kiln fit does not take --ttl"),
            (["fit", "--epochs=three"], "--epochs=three"),
            (["model", "define"], "usage: kiln model define FILE.json"),
            (["jobs", "cancel", "a", "b"], "too many arguments"),
            ([], "no command given"),
        ]
        for args, message in cases:
            with self.subTest(args=args):
                run = self.kiln(*args, expect=2)
                self.assertIn(message, run.stderr)
                self.assertEqual(run.stdout, "")

    def test_server_help_lists_its_flags(self):
        run = subprocess.run([SERVER_BIN, "--help"], capture_output=True, text=True)
        self.assertEqual(run.returncode, 0)
        for flag in ("--listen (default: 127.0.0.1:50051)", "--worker_threads",
                     "--max_session_bytes", "--shutdown_grace"):
            self.assertIn(flag, run.stdout)
        self.assertNotIn("No flags matched", run.stdout)

    def test_a_second_server_on_a_port_in_use_refuses_to_start(self):
        port = self.server.address.split(":")[1]
        run = subprocess.run([SERVER_BIN, f"--listen=127.0.0.1:{port}"],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(run.returncode, 1)
        self.assertIn(f"cannot listen on 127.0.0.1:{port}: the address is in use", run.stderr)
        self.assertEqual(self.kiln("health").stdout, "SERVING\n")  # the first one, untouched

    def test_unreachable_server_names_the_address_and_the_way_to_fix_it(self):
        env = self.env()
        env["KILN_SERVER"] = "127.0.0.1:1"
        run = self.kiln("session", "list", expect=1, env=env)
        self.assertIn("cannot reach a Kiln server at 127.0.0.1:1 ($KILN_SERVER)", run.stderr)
        self.assertIn("--server", run.stderr)
        run = self.kiln("session", "list", "--server=127.0.0.1:1", expect=1)
        self.assertIn("at 127.0.0.1:1 (--server)", run.stderr)

    def test_a_server_without_a_port_means_the_default_port(self):
        run = subprocess.run([CLI_BIN, "health", "--server=127.0.0.1"], env=self.env(),
                             capture_output=True, text=True, timeout=60)
        if run.returncode == 0:  # a server happens to listen on 50051 here
            self.assertEqual(run.stdout, "SERVING\n")
        else:
            self.assertIn("127.0.0.1:50051 (--server)", run.stderr)

    def test_health_waits_for_a_server_and_checks_services_by_name(self):
        for service in ("kiln.v1.SessionService", "kiln.v1.ModelService",
                        "kiln.v1.JobService"):
            self.assertEqual(self.kiln("health", f"--service={service}").stdout, "SERVING\n")
        run = self.kiln("health", "--service=kiln.v1.NoSuchService", expect=1)
        self.assertIn("NOT_FOUND", run.stderr)
        # --wait: a server that comes up while it waits.
        with socket.socket() as probe_port:
            probe_port.bind(("127.0.0.1", 0))
            port = probe_port.getsockname()[1]
        probe = subprocess.Popen([CLI_BIN, "health", "--wait=30s", f"--server=127.0.0.1:{port}"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(0.5)
        server = KilnServer(f"--listen=127.0.0.1:{port}").start()
        try:
            out, err = probe.communicate(timeout=60)
            self.assertEqual(probe.returncode, 0, err)
            self.assertEqual(out, "SERVING\n")
        finally:
            server.cleanup()
        run = self.kiln("health", "--wait=1s", "--server=127.0.0.1:1", expect=1)
        self.assertIn("no server answered SERVING within 1s", run.stderr)

    def test_a_missing_session_says_how_to_get_one(self):
        run = self.kiln("model", "list", expect=2)
        self.assertIn("kiln session create", run.stderr)
        self.assertIn("$KILN_SESSION", run.stderr)

    def test_file_errors_say_why(self):
        s = self.new_session()
        run = self.kiln("model", "define", self.path("missing.json"), session=s, expect=2)
        self.assertIn(f"cannot read {self.path('missing.json')}: No such file or directory",
                      run.stderr)
        run = self.kiln("model", "define", self.dir.name, session=s, expect=2)
        self.assertIn("Is a directory", run.stderr)
        run = self.kiln("data", "upload", "--name=d", "--x=/nonexistent.npy", session=s,
                        expect=2)
        self.assertIn("/nonexistent.npy: No such file or directory", run.stderr)
        run = self.kiln("predict", f"--input={self.path('model.json')}", session=s, expect=2)
        self.assertIn("model.json", run.stderr)  # not an .npy file: says which one

    def test_json_errors_give_line_column_path_and_suggestion(self):
        s = self.new_session()
        cases = {
            "syntax.json": ('{"name": "m",\n "nodes": [\n  {"id": "a"}\n  {"id": "b"}\n ]}',
                            "line 4, column 3"),
            "layer.json": (json.dumps({"name": "m", "nodes": [
                {"id": "image", "input": {"shape": [8, 8, 1]}},
                {"id": "dw", "layer": {"depthwse_conv2d": {"kernel_size": [3]}},
                 "inputs": ["image"]}]}),
                'nodes[1].layer: no field "depthwse_conv2d" in kiln.v1.LayerSpec; '
                'did you mean "depthwise_conv2d"?'),
            "argument.json": (json.dumps({"name": "m", "nodes": [
                {"id": "image", "input": {"shape": [8]}},
                {"id": "d", "layer": {"dense": {"unit": 3}}, "inputs": ["image"]}]}),
                'nodes[1].layer.dense: no field "unit" in kiln.v1.Dense; did you mean '
                '"units"?'),
            "value.json": (json.dumps({"name": "m", "nodes": [
                {"id": "image", "input": {"shape": [8]}},
                {"id": "d", "layer": {"dense": {"units": "three"}}, "inputs": ["image"]}]}),
                "nodes[1].layer.dense.units"),
        }
        for name, (text, message) in cases.items():
            with self.subTest(file=name):
                with open(self.path(name), "w") as f:
                    f.write(text)
                run = self.kiln("model", "define", self.path(name), session=s, expect=2)
                self.assertIn(message, run.stderr)
        self.assertEqual(self.kiln("model", "list", session=s).stdout, "")

    def test_json_shows_ids_that_are_zero(self):
        s = self.new_session()
        shown = json.loads(self.kiln("model", "define", self.path("model.json"), "--json",
                                     session=s).stdout)
        self.assertEqual(shown["inputs"][0]["id"], "0")


if __name__ == "__main__":
    unittest.main()
