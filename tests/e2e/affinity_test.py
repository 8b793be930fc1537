"""End-to-end: session affinity across replicas, as deploy/kubernetes/scale-out/ingress.yaml
configures it. ingress-nginx's `upstream-hash-by: "$http_x_kiln_session"` becomes nginx's
`hash $http_x_kiln_session consistent;`; here Debian's nginx does the same in front of two
kiln-servers, and the Python client - which draws each session's id and sends it as
x-kiln-session from the create on - builds, predicts and deletes through it: every call of a
session reaches the replica that holds it, and the sessions spread over both."""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

import numpy as np

from kiln_client import Client
from kiln_e2e import KilnServer

NGINX = """
user root;
worker_processes 1;
error_log {dir}/error.log;
pid {dir}/nginx.pid;
events {{}}
http {{
  access_log off;
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  upstream kiln {{
    hash $http_x_kiln_session consistent;
    server {a};
    server {b};
  }}
  server {{
    listen 127.0.0.1:{port} http2;
    client_max_body_size 64m;
    location / {{
      grpc_pass grpc://kiln;
      grpc_read_timeout 3600s;
    }}
  }}
}}
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@unittest.skipUnless(shutil.which("nginx"), "needs Debian's nginx (scripts/setup installs it)")
class AffinityTest(unittest.TestCase):
    def setUp(self):
        self.servers = [KilnServer().start(), KilnServer().start()]
        self.dir = tempfile.mkdtemp(prefix="kiln-affinity-")
        self.port = free_port()
        with open(os.path.join(self.dir, "nginx.conf"), "w") as f:
            f.write(NGINX.format(dir=self.dir, port=self.port, a=self.servers[0].address,
                                 b=self.servers[1].address))
        self.nginx = subprocess.Popen(["nginx", "-p", self.dir, "-c", "nginx.conf", "-g",
                                       "daemon off;"], stderr=subprocess.PIPE)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)

    def tearDown(self):
        self.nginx.send_signal(signal.SIGQUIT)
        self.nginx.wait(30)
        for server in self.servers:
            self.assertEqual(server.stop(), 0, server.log())
            server.cleanup()
        shutil.rmtree(self.dir, ignore_errors=True)

    def test_every_call_of_a_session_reaches_its_replica(self):
        client = Client(f"127.0.0.1:{self.port}")
        self.assertTrue(client.health(wait=10))
        x = np.random.default_rng(0).random((4, 6), dtype=np.float32)
        sessions = []
        for i in range(16):
            session = client.create_session(f"affinity-{i}")
            image = session.add_input([6])
            _, (out,) = session.add_layer({"dense": {"units": 3, "activation": "softmax"}},
                                          [image])
            session.create_model([image], [out], name="m")
            self.assertEqual(session.predict("m", x).shape, (4, 3))
            sessions.append(session)
        held = [{s.id for s in Client(server.address).list_sessions()}
                for server in self.servers]
        self.assertEqual(held[0] | held[1], {s.id for s in sessions})
        self.assertEqual(held[0] & held[1], set())
        self.assertTrue(held[0] and held[1], held)  # both replicas hold some
        for session in sessions:
            session.delete()
        self.assertEqual([Client(server.address).list_sessions() for server in self.servers],
                         [[], []])


if __name__ == "__main__":
    unittest.main()
