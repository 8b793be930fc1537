"""KilnError, and turning what a caller passes or the server answers into it: gRPC errors with
the BadRequest field path, and malformed specs with the field at fault and the closest real
field name (the same rule as the kiln CLI's)."""
import json

import grpc
from google.protobuf import json_format, symbol_database

from google.rpc import error_details_pb2, status_pb2


class KilnError(Exception):
    """A refused request: the gRPC status code, the server's message, and - for invalid
    arguments - the request field at fault (e.g. "spec.depthwise_conv2d.strides"). A job that
    did not succeed also gives its job_id and end state (jobs_pb2.JobState): an INTERRUPTED or
    FAILED fit can be resumed with Session.resume(job_id)."""

    def __init__(self, code: grpc.StatusCode, message: str, field: str = "",
                 job_id: str = "", state: int = 0):
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message
        self.field = field
        self.job_id = job_id
        self.state = state


CODES = {c.value[0]: c for c in grpc.StatusCode}


def from_rpc_error(e: grpc.RpcError) -> KilnError:
    field = ""
    for key, value in e.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                bad = error_details_pb2.BadRequest()
                if detail.Unpack(bad) and bad.field_violations:
                    field = bad.field_violations[0].field
    return KilnError(e.code(), e.details(), field)


def _edit_distance(a: str, b: str) -> int:
    """Inserts, deletes, replacements and swaps of neighbours (optimal string alignment)."""
    d = [[i + j if i * j == 0 else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1,
                          d[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[len(a)][len(b)]


def closest_match(word: str, candidates):
    """The candidate a typo of `word` most likely meant: a third of it at most (one edit for a
    short word), never all of it."""
    if not word:
        return None
    limit = min(max(1, len(word) // 3), len(word) - 1)
    best = min(candidates, key=lambda c: _edit_distance(word, c), default=None)
    return best if best is not None and _edit_distance(word, best) <= limit else None


def _check_field_names(value, descriptor, path: str):
    """Raises KilnError for the first dict key, depth first, that names no field of its
    message: protobuf's ParseError names neither the path nor a likely fix."""
    if not isinstance(value, dict) or descriptor.full_name.startswith("google.protobuf."):
        return
    for key, child in value.items():
        field = descriptor.fields_by_name.get(key) or descriptor.fields_by_camelcase_name.get(key)
        if field is None:
            close = closest_match(str(key), list(descriptor.fields_by_name))
            hint = f'; did you mean "{close}"?' if close else ""
            where = f"{path}: " if path else ""
            raise KilnError(grpc.StatusCode.INVALID_ARGUMENT,
                            f'{where}no field "{key}" in {descriptor.full_name}{hint}',
                            f"{path}.{key}" if path else str(key))
        if field.message_type is None or field.message_type.GetOptions().map_entry:
            continue
        child_path = f"{path}.{key}" if path else str(key)
        if field.label == field.LABEL_REPEATED and isinstance(child, list):
            for i, item in enumerate(child):
                _check_field_names(item, field.message_type, f"{child_path}[{i}]")
        else:
            _check_field_names(child, field.message_type, child_path)


def _refused_value_path(value, descriptor, path: str) -> str:
    """The path of the first value, depth first, that protobuf's JSON parser refuses (its
    ParseError names the field but not where it sits)."""
    if not isinstance(value, dict):
        return path
    prototype = symbol_database.Default().GetPrototype
    for key, child in value.items():
        field = descriptor.fields_by_name.get(key) or descriptor.fields_by_camelcase_name.get(key)
        child_path = f"{path}.{key}" if path else str(key)
        if field.message_type is not None and not field.message_type.GetOptions().map_entry:
            repeated = field.label == field.LABEL_REPEATED and isinstance(child, list)
            for i, item in enumerate(child) if repeated else [(None, child)]:
                try:
                    json_format.ParseDict(item, prototype(field.message_type)())
                except json_format.ParseError:
                    item_path = child_path if i is None else f"{child_path}[{i}]"
                    return _refused_value_path(item, field.message_type, item_path)
        else:
            try:
                json_format.ParseDict({key: child}, prototype(descriptor)())
            except json_format.ParseError:
                return child_path
    return path


def to_message(value, message_type, path: str = ""):
    """A message from a dict (protobuf JSON mapping, Keras argument names), a JSON string, or
    the message itself. A malformed value raises KilnError naming the field below `path`."""
    if isinstance(value, message_type):
        return value
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as e:
            raise KilnError(grpc.StatusCode.INVALID_ARGUMENT,
                            f"not valid JSON: line {e.lineno}, column {e.colno}: {e.msg}",
                            path) from None
    _check_field_names(value, message_type.DESCRIPTOR, path)
    try:
        return json_format.ParseDict(value, message_type())
    except json_format.ParseError as e:
        field = _refused_value_path(value, message_type.DESCRIPTOR, path)
        raise KilnError(grpc.StatusCode.INVALID_ARGUMENT,
                        f"{field + ': ' if field else ''}{e}", field) from None
