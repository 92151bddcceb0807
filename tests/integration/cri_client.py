"""A small CRI (runtime.v1) client: the handful of RuntimeService calls a kubelet makes
to run a pod, over grpcio, with the protobuf messages encoded by hand.

Why by hand: no Debian package ships the CRI api.proto, and crictl is not packaged;
the few messages used here are plain fields, so a forty-line encoder is less fragile
than generated code pinned to a protoc version. Field numbers follow
k8s.io/cri-api/pkg/apis/runtime/v1/api.proto.

A message is written as a list of (field number, value) pairs: str/bytes are
length-delimited, int is a varint (negative ones as 64-bit two's complement, as
protobuf does for int64), bool a varint, list-of-pairs a nested message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

Value = Union[str, bytes, int, bool, "Message"]
Message = list[tuple[int, Value]]

SERVICE = "/runtime.v1.RuntimeService/"
# NamespaceMode
POD, CONTAINER, NODE = 0, 1, 2
# ContainerState
CONTAINER_CREATED, CONTAINER_RUNNING, CONTAINER_EXITED = 0, 1, 2


# --- wire format ---------------------------------------------------------------------

def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def encode(msg: Message) -> bytes:
    out = bytearray()
    for number, value in msg:
        if isinstance(value, bool) or isinstance(value, int):
            out += _varint(number << 3) + _varint(int(value))
        else:
            raw = value.encode() if isinstance(value, str) else (
                value if isinstance(value, bytes) else encode(value))
            out += _varint(number << 3 | 2) + _varint(len(raw)) + raw
    return bytes(out)


def decode(data: bytes) -> dict[int, list[int | bytes]]:
    """Fields by number; length-delimited values stay bytes (decode nested ones again)."""
    fields: dict[int, list[int | bytes]] = {}
    i = 0

    def varint() -> int:
        nonlocal i
        shift = result = 0
        while True:
            byte = data[i]
            i += 1
            result |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return result

    while i < len(data):
        key = varint()
        number, wire = key >> 3, key & 7
        value: int | bytes
        if wire == 0:
            value = varint()
        elif wire == 2:
            length = varint()
            value, i = data[i:i + length], i + length
        elif wire == 1:
            value, i = int.from_bytes(data[i:i + 8], "little"), i + 8
        elif wire == 5:
            value, i = int.from_bytes(data[i:i + 4], "little"), i + 4
        else:
            raise ValueError(f"protobuf wire type {wire} not handled")
        fields.setdefault(number, []).append(value)
    return fields


def _str(fields: dict[int, list[int | bytes]], number: int) -> str:
    value = fields.get(number, [b""])[-1]
    return value.decode() if isinstance(value, bytes) else str(value)


def _int(fields: dict[int, list[int | bytes]], number: int) -> int:
    value = fields.get(number, [0])[-1]
    assert isinstance(value, int)
    return value - (1 << 64) if value >= 1 << 63 else value


# --- messages --------------------------------------------------------------------------

def namespace_options(network: int = NODE, pid: int = POD, ipc: int = POD) -> Message:
    return [(1, network), (2, pid), (3, ipc)]


def pod_config(name: str, uid: str, cgroup_parent: str, log_dir: str, hostname: str) -> Message:
    """A pod on the host's network (no CNI), pid and ipc shared by its containers."""
    metadata: Message = [(1, name), (2, uid), (3, "default"), (4, 0)]
    security: Message = [(1, namespace_options())]
    linux: Message = [(1, cgroup_parent), (2, security)]
    return [(1, metadata), (2, hostname), (3, log_dir), (8, linux)]


def container_config(name: str, image: str, command: list[str], *, env: dict[str, str] | None = None,
                     workdir: str = "", memory_limit: int = 0, log_path: str = "") -> Message:
    msg: Message = [(1, [(1, name), (2, 0)]), (2, [(1, image)])]
    msg += [(3, arg) for arg in command]
    if workdir:
        msg.append((5, workdir))
    msg += [(6, [(1, k), (2, v)]) for k, v in (env or {}).items()]
    if log_path:
        msg.append((11, log_path))
    resources: Message = [(4, memory_limit)] if memory_limit else []
    security: Message = [(3, namespace_options())]
    msg.append((15, [(1, resources), (2, security)]))
    return msg


@dataclass
class ExecResult:
    stdout: str
    stderr: str
    exit_code: int


@dataclass
class ContainerStatus:
    id: str
    state: int
    exit_code: int
    reason: str
    message: str


class RuntimeService:
    def __init__(self, socket: str, timeout: float = 60) -> None:
        import grpc  # lazily: only the CRI tests need it
        self._grpc = grpc
        self.channel = grpc.insecure_channel(f"unix://{socket}")
        self.timeout = timeout

    def close(self) -> None:
        self.channel.close()

    def call(self, method: str, request: Message, timeout: float | None = None
             ) -> dict[int, list[int | bytes]]:
        stub = self.channel.unary_unary(SERVICE + method, request_serializer=encode,
                                        response_deserializer=decode)
        return stub(request, timeout=timeout or self.timeout)

    def version(self) -> tuple[str, str]:
        f = self.call("Version", [(1, "v1")])
        return _str(f, 2), _str(f, 3)

    def run_pod_sandbox(self, config: Message, handler: str = "") -> str:
        request: Message = [(1, config)] + ([(2, handler)] if handler else [])
        return _str(self.call("RunPodSandbox", request, timeout=120), 1)

    def stop_pod_sandbox(self, pod_id: str) -> None:
        self.call("StopPodSandbox", [(1, pod_id)], timeout=120)

    def remove_pod_sandbox(self, pod_id: str) -> None:
        self.call("RemovePodSandbox", [(1, pod_id)], timeout=120)

    def create_container(self, pod_id: str, config: Message, pod: Message) -> str:
        return _str(self.call("CreateContainer", [(1, pod_id), (2, config), (3, pod)]), 1)

    def start_container(self, container_id: str) -> None:
        self.call("StartContainer", [(1, container_id)])

    def stop_container(self, container_id: str, timeout: int = 10) -> None:
        self.call("StopContainer", [(1, container_id), (2, timeout)], timeout=timeout + 60)

    def remove_container(self, container_id: str) -> None:
        self.call("RemoveContainer", [(1, container_id)])

    def exec_sync(self, container_id: str, cmd: list[str], timeout: int = 30) -> ExecResult:
        request: Message = [(1, container_id)] + [(2, c) for c in cmd] + [(3, timeout)]
        f = self.call("ExecSync", request, timeout=timeout + 30)
        out = f.get(1, [b""])[-1]
        err = f.get(2, [b""])[-1]
        assert isinstance(out, bytes) and isinstance(err, bytes)
        return ExecResult(out.decode(), err.decode(), _int(f, 3))

    def container_status(self, container_id: str) -> ContainerStatus:
        f = self.call("ContainerStatus", [(1, container_id)])
        raw = f.get(1, [b""])[-1]
        assert isinstance(raw, bytes)
        s = decode(raw)
        return ContainerStatus(_str(s, 1), _int(s, 3), _int(s, 7), _str(s, 10), _str(s, 11))

    def list_pod_ids(self) -> list[str]:
        f = self.call("ListPodSandbox", [])
        ids = []
        for raw in f.get(1, []):
            assert isinstance(raw, bytes)
            ids.append(_str(decode(raw), 1))
        return ids

    def list_container_ids(self) -> list[str]:
        f = self.call("ListContainers", [])
        ids = []
        for raw in f.get(1, []):
            assert isinstance(raw, bytes)
            ids.append(_str(decode(raw), 1))
        return ids
