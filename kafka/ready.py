"""Exits 0 when a Kafka broker on 127.0.0.1:<port> answers a metadata request naming at least
one broker (it is up and registered, not only listening), 1 otherwise. Used by ./dev."""
import socket, struct, sys
def probe(host, port):
    client = b"bozor-dev"
    body = struct.pack(">hhih", 3, 4, 1, len(client)) + client + struct.pack(">ib", -1, 0)
    with socket.create_connection((host, port), timeout=2) as s:
        s.sendall(struct.pack(">i", len(body)) + body)
        head = s.recv(4, socket.MSG_WAITALL)
        size = struct.unpack(">i", head)[0]
        data = b""
        while len(data) < size:
            chunk = s.recv(size - len(data))
            if not chunk:
                break
            data += chunk
    corr, throttle, brokers = struct.unpack(">iii", data[:12])
    return corr == 1 and brokers >= 1
try:
    sys.exit(0 if probe("127.0.0.1", int(sys.argv[1])) else 1)
except Exception as e:
    sys.exit(1)
