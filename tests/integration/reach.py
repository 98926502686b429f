"""A program run inside a container to tell whether it reaches HOST:PORT over TCP: it prints
`connected`, or `failed <why>` (a refusal, a timeout after 2 s, a name that does not resolve)."""

CONNECT = (
    "import socket, sys\n"
    "try:\n"
    "    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2).close()\n"
    "    print('connected')\n"
    "except OSError as e:\n"
    "    print('failed', e)\n"
)
