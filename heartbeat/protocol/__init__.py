"""heartbeat's sans-IO protocol code: bytes and values in, values out.

Nothing here imports socket, gevent, os or time (DESIGN.md rule 1); the
gevent layer (`heartbeat.transport`) moves the bytes.
"""

from heartbeat.protocol.packet import (
    HEARTBEAT,
    MAGIC,
    MAX_DATAGRAM,
    REPLAY_WINDOW,
    Message,
    ReplayGuard,
    decode,
    encode,
)

__all__ = ["HEARTBEAT", "MAGIC", "MAX_DATAGRAM", "REPLAY_WINDOW", "Message", "ReplayGuard", "decode", "encode"]
