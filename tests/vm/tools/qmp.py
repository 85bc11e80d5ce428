#!/usr/bin/env python3
"""Minimal QMP client: qmp.py SOCKET COMMAND [JSON-ARGUMENTS]

Connects to QEMU's QMP unix socket, negotiates capabilities, runs COMMAND
and prints its "return" value as JSON.  Exit status 1 on a QMP error (the
error goes to stderr), 2 if the socket cannot be reached.
"""
import json
import socket
import sys


def main():
    path, cmd = sys.argv[1], sys.argv[2]
    args = json.loads(sys.argv[3]) if len(sys.argv) > 3 and sys.argv[3] else None
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30)
    try:
        s.connect(path)
    except OSError as e:
        print("qmp: %s: %s" % (path, e), file=sys.stderr)
        return 2
    f = s.makefile("rw")

    def reply():
        while True:
            line = f.readline()
            if not line:
                raise EOFError("QMP connection closed")
            msg = json.loads(line)
            if "return" in msg or "error" in msg:
                return msg
            # greeting and asynchronous events are skipped

    f.readline()  # greeting
    f.write(json.dumps({"execute": "qmp_capabilities"}) + "\n")
    f.flush()
    reply()
    req = {"execute": cmd}
    if args is not None:
        req["arguments"] = args
    f.write(json.dumps(req) + "\n")
    f.flush()
    try:
        msg = reply()
    except EOFError:
        if cmd == "quit":
            print("{}")
            return 0
        raise
    if "error" in msg:
        print("qmp: %s: %s" % (cmd, msg["error"]), file=sys.stderr)
        return 1
    print(json.dumps(msg["return"]))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (OSError, EOFError, ValueError) as e:
        print("qmp: %s" % e, file=sys.stderr)
        sys.exit(2)
