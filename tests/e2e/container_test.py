"""End-to-end: Kiln's image as an operator runs it, with podman through ./scripts/container (no
Docker engine on these machines). It builds the image from this checkout, runs it with a state
volume and a tokens file, waits for the image's HEALTHCHECK to pass, trains the demo model for
one epoch on Fashion-MNIST from the host through the Python client and predicts, checks that
/metrics counted it, stops the container with SIGTERM (exit 0), starts a new one on the same
volume and finds the trained model scoring as before; then `podman kube play` runs
deploy/kubernetes/ and the same client check passes against it.

Run by `./scripts/test --container`. Prints the image's size and the times it measured."""
import glob
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.request

import yaml

REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
CONTAINER = os.path.join(REPO, "scripts", "container")
EXAMPLE = os.path.join(REPO, "client", "python", "examples", "mobilenet_fashion_mnist.py")
IMAGE = "localhost/kiln:e2e"
TOKEN = "container-e2e-" + hashlib.sha256(os.urandom(16)).hexdigest()[:16]
FASHION_MNIST = "/usr/share/datasets/fashion-mnist"


def podman(*args, check=True, timeout=900):
    run = subprocess.run([CONTAINER, "podman", *args], capture_output=True, text=True,
                         timeout=timeout)
    if check and run.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)}: exit {run.returncode}\n{run.stdout}\n"
                             f"{run.stderr}")
    return run


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def example(address, *args):
    """The README's demo, run from the host against `address` with the tenant's token."""
    env = dict(os.environ, KILN_TOKEN=TOKEN)
    run = subprocess.run(["/usr/bin/python3", EXAMPLE, "--server", address, *args], env=env,
                         capture_output=True, text=True, timeout=1200)
    if run.returncode != 0:
        raise AssertionError(f"the example failed:\n{run.stdout}\n{run.stderr}")
    return run.stdout


def metrics_at(host, port):
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=10) as response:
        return response.read().decode()


class ContainerTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        start = time.time()
        build = subprocess.run([CONTAINER, "build", IMAGE], capture_output=True, text=True,
                               timeout=3600, cwd=REPO)
        if build.returncode != 0:
            raise AssertionError(f"the image did not build:\n{build.stdout[-4000:]}\n"
                                 f"{build.stderr[-4000:]}")
        cls.build_seconds = time.time() - start
        cls.dir = tempfile.mkdtemp(prefix="kiln-container-")
        cls.tokens = os.path.join(cls.dir, "tokens")
        with open(cls.tokens, "w") as f:
            f.write(f"e2e:{hashlib.sha256(TOKEN.encode()).hexdigest()}\n")
        os.chmod(cls.tokens, 0o644)
        cls.volume = f"kiln-e2e-{os.getpid()}"
        podman("volume", "create", cls.volume)

    @classmethod
    def tearDownClass(cls):
        podman("rm", "-f", "-v", "-t", "0", "kiln-e2e", "kiln-e2e-2", check=False)
        podman("volume", "rm", "-f", cls.volume, check=False)
        shutil.rmtree(cls.dir, ignore_errors=True)

    def run_container(self, name, grpc_port, http_port):
        return podman("run", "-d", "--name", name, "--cpus=2",
                      "-p", f"127.0.0.1:{grpc_port}:50051", "-p", f"127.0.0.1:{http_port}:8080",
                      "-v", f"{self.volume}:/var/lib/kiln",
                      "-v", f"{self.tokens}:/etc/kiln/tokens:ro",
                      "-v", f"{FASHION_MNIST}:{FASHION_MNIST}:ro", IMAGE).stdout.strip()

    def wait_healthy(self, name, timeout=120):
        """Runs the image's HEALTHCHECK until it passes (podman runs it on a systemd timer,
        which these machines lack, so the test runs it as the timer would)."""
        start = time.time()
        while time.time() - start < timeout:
            if podman("healthcheck", "run", name, check=False).returncode == 0:
                state = json.loads(podman("inspect", name).stdout)[0]["State"]
                health = state.get("Health") or state.get("Healthcheck") or {}
                self.assertEqual(health.get("Status"), "healthy", state)
                return time.time() - start
            time.sleep(0.5)
        raise AssertionError(f"{name} never became healthy:\n{podman('logs', name).stderr}")

    def test_the_image(self):
        info = json.loads(podman("image", "inspect", IMAGE).stdout)[0]
        config = info["Config"]
        self.assertEqual(config["User"], "kiln:kiln")  # uid and gid 10001
        self.assertIn("/var/lib/kiln", config["Volumes"])
        self.assertEqual(set(config["ExposedPorts"]), {"50051/tcp", "8080/tcp"})
        self.assertEqual(config["StopSignal"], "SIGTERM")
        healthcheck = info.get("Healthcheck") or config.get("Healthcheck") or {}
        self.assertEqual(healthcheck.get("Test"),
                         ["CMD", "kiln", "health", "--server=127.0.0.1:50051"])
        tools = podman("run", "--rm", "--entrypoint", "sh", IMAGE, "-c",
                       "for t in g++ gcc cc cmake; do command -v $t; done; "
                       "ls /usr/include | wc -l; dpkg -l | grep -c -- '-dev ' || true").stdout
        self.assertEqual(tools.split(), ["0", "0"], tools)  # no compiler, headers, -dev packages
        size = int(info["Size"])
        print(f"\nimage {IMAGE}: {size / 2**20:.0f} MiB, built in {self.build_seconds:.0f} s")

    def test_train_stop_and_restart_on_the_same_volume(self):
        grpc_port, http_port = free_port(), free_port()
        started = time.time()
        self.run_container("kiln-e2e", grpc_port, http_port)
        healthy = self.wait_healthy("kiln-e2e")
        print(f"\npodman run to healthy: {time.time() - started:.1f} s")
        kept = os.path.join(self.dir, "kept.json")
        start = time.time()
        out = example(f"127.0.0.1:{grpc_port}", "--epochs", "1", "--keep", kept)
        print(f"one epoch of the demo in the container: {time.time() - start:.0f} s")
        self.assertRegex(out, r"test accuracy 0\.[7-9]")
        with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/", timeout=10) as response:
            self.assertIn("<title>Kiln card editor</title>", response.read().decode())
        text = metrics_at("127.0.0.1", http_port)
        self.assertRegex(text, r'kiln_rpc_requests_total\{method="/kiln.v1.JobService/StartFit",'
                               r'code="OK"\} [1-9]')
        self.assertIn('kiln_jobs_finished_total{kind="fit",state="SUCCEEDED"} ', text)
        self.assertRegex(text, r"\nkiln_training_samples_total [1-9]")
        rss = re.search(r"\nprocess_resident_memory_bytes (\d+)", text).group(1)
        print(f"server RSS after the epoch: {int(rss) / 2**20:.0f} MiB")

        podman("stop", "-t", "30", "kiln-e2e")
        state = json.loads(podman("inspect", "kiln-e2e").stdout)[0]["State"]
        self.assertEqual(state["ExitCode"], 0, podman("logs", "kiln-e2e").stderr)
        logs = podman("logs", "kiln-e2e").stderr.splitlines()
        self.assertTrue(all(json.loads(line)["message"] for line in logs if line.strip()))
        self.assertTrue(any("SIGTERM" in json.loads(line)["message"] for line in logs))

        grpc_port, http_port = free_port(), free_port()
        self.run_container("kiln-e2e-2", grpc_port, http_port)
        self.wait_healthy("kiln-e2e-2")
        out = example(f"127.0.0.1:{grpc_port}", "--restored", kept)
        self.assertIn("the same as before the restart", out)
        podman("rm", "-f", "-v", "-t", "0", "kiln-e2e-2")

    def test_kube_play_runs_the_kubernetes_manifests(self):
        """deploy/kubernetes/ as `kubectl apply -f` takes it, through podman 4.3's kube play,
        which lacks three things; each stand-in is made here, on the way in:
        - a Deployment that mounts a Secret as a volume makes podman 4.3 panic (a nil
          secrets manager in VolumeFromSecret), so the Secret document is left out and its
          volume becomes a hostPath directory holding the test's tokens file;
        - Services are not run, so the client reaches the pod at its own IP address;
        - grpc probes are not run, so the test asks the same gRPC health service itself.
        It also adds a read-only hostPath of Fashion-MNIST for the demo's built-in dataset,
        and names the image built here."""
        documents = []
        for path in sorted(glob.glob(os.path.join(REPO, "deploy", "kubernetes", "*.yaml"))):
            with open(path) as f:
                documents += [d for d in yaml.safe_load_all(f) if d]
        kinds = sorted(d["kind"] for d in documents)
        self.assertEqual(kinds, ["ConfigMap", "Deployment", "PersistentVolumeClaim", "Secret",
                                 "Service"])
        deployment = next(d for d in documents if d["kind"] == "Deployment")
        pod = deployment["spec"]["template"]["spec"]
        container = pod["containers"][0]
        self.assertEqual({p["grpc"]["port"] for p in (container["livenessProbe"],
                                                      container["readinessProbe"])}, {50051})
        self.assertGreater(pod["terminationGracePeriodSeconds"], 10 + 3)  # grace + slack
        self.assertFalse(container["securityContext"]["allowPrivilegeEscalation"])
        self.assertTrue(container["securityContext"]["readOnlyRootFilesystem"])
        container["image"] = IMAGE
        tokens_dir = os.path.join(self.dir, "kube-tokens")
        os.makedirs(tokens_dir)
        shutil.copy(self.tokens, os.path.join(tokens_dir, "tokens"))
        os.chmod(tokens_dir, 0o755)
        for volume in pod["volumes"]:
            if "secret" in volume:
                del volume["secret"]
                volume["hostPath"] = {"path": tokens_dir, "type": "Directory"}
        pod["volumes"].append({"name": "fashion-mnist",
                               "hostPath": {"path": FASHION_MNIST, "type": "Directory"}})
        container["volumeMounts"].append({"name": "fashion-mnist", "mountPath": FASHION_MNIST,
                                          "readOnly": True})
        played = yaml.safe_dump_all([d for d in documents if d["kind"] != "Secret"])
        manifest = os.path.join(self.dir, "kube.yaml")
        with open(manifest, "w") as f:
            f.write(played)
        try:
            podman("kube", "play", manifest)
            infra = json.loads(podman("pod", "inspect", "kiln-pod-0").stdout)
            infra = infra[0] if isinstance(infra, list) else infra
            networks = json.loads(podman("inspect", infra["InfraContainerID"]).stdout)[0][
                "NetworkSettings"]["Networks"]
            ip = next(iter(networks.values()))["IPAddress"]
            health = None
            for _ in range(120):
                health = subprocess.run([os.environ.get("KILN_CLI_BIN", "build/client/kiln"),
                                         "health", f"--server={ip}:50051"],
                                        capture_output=True, text=True)
                if health.returncode == 0:
                    break
                time.sleep(0.5)
            self.assertEqual(health.stdout.strip(), "SERVING", health.stderr)
            with urllib.request.urlopen(f"http://{ip}:8080/readyz", timeout=10) as response:
                self.assertEqual(response.status, 200)
            out = example(f"{ip}:50051", "--epochs", "1")
            self.assertRegex(out, r"test accuracy 0\.[7-9]")
            text = metrics_at(ip, 8080)
            self.assertIn('kiln_jobs_finished_total{kind="fit",state="SUCCEEDED"} 1', text)
            logs = podman("logs", "kiln-pod-0-kiln-server").stderr
            self.assertIn("cgroup quota 2.00 CPUs", logs)  # the Deployment's CPU limit
        finally:
            podman("kube", "down", manifest, check=False)
            podman("volume", "rm", "-f", "kiln-state", check=False)
        self.assertNotIn("kiln-pod-0", podman("pod", "ps", "--format", "{{.Name}}").stdout)


if __name__ == "__main__":
    unittest.main()
