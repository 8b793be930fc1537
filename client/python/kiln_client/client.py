"""Client: a connection to a Kiln server, and the sessions it creates."""
import itertools
import secrets
import os
import time
from typing import List, Optional

import grpc

from kiln.v1 import catalogue_pb2, service_pb2, service_pb2_grpc
from kiln_client.errors import KilnError, from_rpc_error
from kiln_client.session import Session

DEFAULT_PORT = 50051


def with_default_port(target: str) -> str:
    """"host" -> "host:50051", "::1" -> "[::1]:50051"; a target with a port or a scheme
    ("unix:...", "dns:///...") is left as it is - the kiln CLI reads --server the same way."""
    if "://" in target or target.startswith(("unix:", "unix-abstract:", "ipv4:", "ipv6:")):
        return target
    if target.startswith("["):
        return target if "]:" in target else f"{target}:{DEFAULT_PORT}"
    colons = target.count(":")
    if colons == 0:
        return f"{target}:{DEFAULT_PORT}"
    if colons == 1 and target.endswith(":"):
        return f"{target}{DEFAULT_PORT}"
    if colons > 1:
        return f"[{target}]:{DEFAULT_PORT}"
    return target


SESSION_METADATA = "x-kiln-session"


class _MetadataInterceptor(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
                           grpc.StreamUnaryClientInterceptor,
                           grpc.StreamStreamClientInterceptor):
    """Adds to every call - streams and health checks too - `authorization: Bearer <token>`
    when there is a token, and `x-kiln-session: <id>` when the request names a session (the
    first message of a client stream), so that a load balancer can keep a session's calls on
    the replica that holds it, and the server's logs name the session."""

    def __init__(self, token: str):
        self._headers = [("authorization", f"Bearer {token}")] if token else []

    def _details(self, details, request):
        metadata = list(details.metadata or []) + self._headers
        session = _session_of(request)
        if session:
            metadata.append((SESSION_METADATA, session))
        return details._replace(metadata=metadata)

    def intercept_unary_unary(self, continuation, details, request):
        return continuation(self._details(details, request), request)

    def intercept_unary_stream(self, continuation, details, request):
        return continuation(self._details(details, request), request)

    def intercept_stream_unary(self, continuation, details, requests):
        first, requests = _peek(requests)
        return continuation(self._details(details, first), requests)

    def intercept_stream_stream(self, continuation, details, requests):
        first, requests = _peek(requests)
        return continuation(self._details(details, first), requests)


def _session_of(request) -> str:
    """The session a request names: its session_id, or its upload header's."""
    session = getattr(request, "session_id", "")
    if not session and getattr(request, "header", None) is not None:
        session = getattr(request.header, "session_id", "")
    return session if isinstance(session, str) else ""


def _peek(requests):
    """The first of `requests` (None when there is none) and all of them, unchanged."""
    requests = iter(requests)
    try:
        first = next(requests)
    except StopIteration:
        return None, iter(())
    return first, itertools.chain([first], requests)


def _read(path: Optional[str]) -> Optional[bytes]:
    if not path:
        return None
    with open(path, "rb") as f:
        return f.read()


class Client:
    """A connection to a Kiln server at `target` (host[:port]; the port defaults to 50051).

    token: sent with every call to a server started with --auth_tokens_file (default:
    $KILN_TOKEN). tls_ca: PEM roots that sign the server's certificate - connects with TLS
    (tls=True alone uses the system's roots); tls_cert and tls_key: a client certificate for
    mutual TLS."""

    def __init__(self, target: str = "localhost", timeout: float = 600.0,
                 max_message_bytes: int = 256 << 20, token: Optional[str] = None,
                 tls: bool = False, tls_ca: Optional[str] = None,
                 tls_cert: Optional[str] = None, tls_key: Optional[str] = None):
        self.target = with_default_port(target)
        self.timeout = timeout
        options = [("grpc.max_send_message_length", max_message_bytes),
                   ("grpc.max_receive_message_length", max_message_bytes),
                   # reconnect soon after a server (re)starts; gRPC's first backoff is 1 s.
                   # Not grpc.min_reconnect_backoff_ms: gRPC takes it as the connect timeout
                   # too, and a loaded machine may take longer to answer the handshake.
                   ("grpc.initial_reconnect_backoff_ms", 100),
                   ("grpc.max_reconnect_backoff_ms", 2000)]
        if bool(tls_cert) != bool(tls_key):
            raise ValueError("tls_cert and tls_key go together")
        if tls or tls_ca or tls_cert:
            credentials = grpc.ssl_channel_credentials(
                root_certificates=_read(tls_ca), private_key=_read(tls_key),
                certificate_chain=_read(tls_cert))
            self.channel = grpc.secure_channel(self.target, credentials, options=options)
        else:
            self.channel = grpc.insecure_channel(self.target, options=options)
        token = os.environ.get("KILN_TOKEN", "") if token is None else token
        self.channel = grpc.intercept_channel(self.channel, _MetadataInterceptor(token))
        self._sessions = service_pb2_grpc.SessionServiceStub(self.channel)
        self._models = service_pb2_grpc.ModelServiceStub(self.channel)
        self._data = service_pb2_grpc.DataServiceStub(self.channel)
        self._jobs = service_pb2_grpc.JobServiceStub(self.channel)
        self._inference = service_pb2_grpc.InferenceServiceStub(self.channel)
        self._catalogue = service_pb2_grpc.CatalogueServiceStub(self.channel)
        # grpc.health.v1.Health/Check with raw bytes: Debian ships no Python health stubs.
        self._health = self.channel.unary_unary("/grpc.health.v1.Health/Check",
                                                request_serializer=lambda b: b,
                                                response_deserializer=lambda b: b)

    def _call(self, stub, method: str, request):
        try:
            return getattr(stub, method)(request, timeout=self.timeout)
        except grpc.RpcError as e:
            error = from_rpc_error(e)
        if error.code == grpc.StatusCode.UNAVAILABLE and "shutting down" not in error.message:
            error = KilnError(error.code, f"cannot reach a Kiln server at {self.target} "
                              f"(is kiln-server running there?): {error.message}")
        raise error

    def health(self, service: str = "", wait: float = 0.0) -> bool:
        """grpc.health.v1 Check of the server, or of `service` ("kiln.v1.ModelService"): True
        when SERVING. With wait > 0, keeps asking for that many seconds (the server may still
        be starting) before it answers False. Raises KilnError(NOT_FOUND) for an unknown
        service."""
        name = service.encode()
        if len(name) > 127:
            raise KilnError(grpc.StatusCode.INVALID_ARGUMENT, "service name too long", "service")
        request = (b"\x0a" + bytes([len(name)]) + name) if name else b""  # field 1: service
        deadline = time.time() + wait
        while True:
            try:
                timeout = max(deadline - time.time(), 0.05) if wait > 0 else 10.0
                response = self._health(request, timeout=timeout, wait_for_ready=wait > 0)
                if response == b"\x08\x01":  # status: SERVING
                    return True
            except grpc.RpcError as e:
                if e.code() == grpc.StatusCode.NOT_FOUND:
                    raise KilnError(e.code(), f'the server has no service "{service}"') from None
            if time.time() + 0.1 >= deadline:
                return False
            time.sleep(0.1)

    def wait_ready(self, timeout: float = 30.0):
        """Returns once the server answers SERVING; raises KilnError(UNAVAILABLE) after
        `timeout` seconds."""
        if not self.health(wait=timeout):
            raise KilnError(grpc.StatusCode.UNAVAILABLE,
                            f"no Kiln server answered SERVING at {self.target} within "
                            f"{timeout:g} s")

    def create_session(self, name: str = "", ttl_seconds: int = 0,
                       seed: Optional[int] = None) -> Session:
        """A new session. With `seed` (Keras's set_random_seed for the session), the same calls
        give the same initial weights, shuffling and dropout on every run. Use it in a `with`
        block to delete it at the end.

        The client draws the session's id (128 random bits) and sends it with the create, so
        that x-kiln-session routes the create and every later call to one replica."""
        request = service_pb2.CreateSessionRequest(name=name, ttl_seconds=ttl_seconds,
                                                   session_id=f"s-{secrets.token_hex(16)}")
        if seed is not None:
            request.seed = seed
        return Session(self, self._call(self._sessions, "CreateSession", request))

    def session(self, session_id: str) -> Session:
        return Session(self, self._call(self._sessions, "GetSession",
                                        service_pb2.GetSessionRequest(session_id=session_id)))

    def list_sessions(self) -> List[service_pb2.Session]:
        return list(self._call(self._sessions, "ListSessions",
                               service_pb2.ListSessionsRequest()).sessions)

    def catalogue(self, name: str = "") -> catalogue_pb2.Catalogue:
        """Every layer, initializer, regularizer, constraint, optimizer, activation, loss and
        metric the server supports, with each argument's type, Keras default, range and doc -
        or only the entries `name` names ("DepthwiseConv2D", "glorot_uniform", "relu").
        Raises KilnError(NOT_FOUND) when nothing has that name."""
        return self._call(self._catalogue, "DescribeCatalogue",
                          catalogue_pb2.DescribeCatalogueRequest(name=name))
