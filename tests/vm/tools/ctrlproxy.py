#!/usr/bin/env python3
"""Transparent proxy for a swtpm-style control socket, with a traffic log.

    ctrlproxy.py --listen PROXY_SOCK --connect DAEMON_CTRL_SOCK --log LOG.jsonl

QEMU (or any ctrl client) connects to PROXY_SOCK; every connection is relayed
to a new connection to DAEMON_CTRL_SOCK.  Bytes are forwarded chunk by chunk,
exactly as they were received, so the daemon sees the same write boundaries
the client produced.

CMD_SET_DATAFD carries a file descriptor (SCM_RIGHTS).  The proxy does not
hand the client's descriptor to the daemon: it creates its own socketpair,
passes one end on with SCM_RIGHTS in the same message, and relays between the
client's descriptor and the other end.  That makes the data channel (TPM
commands) visible in the log as well.  EOF on either side of a channel closes
the other side, so `--terminate` and SHUTDOWN behave as without the proxy.

Log: one JSON object per message and direction, in order:
    {"t": seconds, "ch": "ctrl"|"data", "dir": ">"|"<", "len": N,
     "hex": first 64 bytes, "sha256": of the whole message,
     "tail_sha256": of the bytes after the first 16, "fds": n,
     "chunks": how many reads it took}
">" is client -> daemon, "<" daemon -> client.  The client waits for each
reply before it sends the next request (QEMU does, and swtpm requires it), so
a message is everything sent in one direction until the other direction
speaks; the log is written when a message is complete.  Events
{"ev": "connect"|"eof"|"error", ...} mark connection changes.  "seq" numbers
messages and events in the order they began; sort by it, not by file order.

The proxy exits once a client has come and gone and every channel is closed
(or on SIGTERM).
"""
import argparse
import array
import hashlib
import json
import os
import select
import signal
import socket
import sys
import time

T0 = time.monotonic()


class Log:
    def __init__(self, path):
        self.f = open(path, "a", buffering=1)
        self.seq = 0

    def next_seq(self):
        self.seq += 1
        return self.seq

    def write(self, obj):
        obj = dict(obj)
        obj.setdefault("t", round(time.monotonic() - T0, 6))
        obj.setdefault("seq", self.next_seq())
        self.f.write(json.dumps(obj, sort_keys=True) + "\n")


class Turn:
    """Groups the bytes of a request/response channel into messages."""

    def __init__(self, log, ch):
        self.log, self.ch = log, ch
        self.dir, self.buf, self.fds, self.t, self.seq = None, bytearray(), 0, 0.0, 0
        self.chunks = 0

    def add(self, direction, data, fds=0):
        if direction != self.dir:
            self.flush()
            self.dir, self.t = direction, round(time.monotonic() - T0, 6)
            self.seq = self.log.next_seq()
        self.buf += data
        self.fds += fds
        self.chunks += 1

    def flush(self):
        if self.dir is None or (not self.buf and not self.fds):
            self.dir = None
            return
        b = bytes(self.buf)
        self.log.write({"t": self.t, "seq": self.seq, "ch": self.ch, "dir": self.dir,
                        "len": len(b), "hex": b[:64].hex(), "fds": self.fds,
                        "chunks": self.chunks,
                        "sha256": hashlib.sha256(b).hexdigest(),
                        "tail_sha256": hashlib.sha256(b[16:]).hexdigest()})
        self.dir, self.buf, self.fds, self.chunks = None, bytearray(), 0, 0


def recv_with_fds(sock, maxfds=4):
    fds = array.array("i")
    data, anc, _flags, _addr = sock.recvmsg(
        65536, socket.CMSG_SPACE(maxfds * fds.itemsize))
    for level, typ, cdata in anc:
        if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
            n = len(cdata) - (len(cdata) % fds.itemsize)
            fds.frombytes(cdata[:n])
    return data, list(fds)


class Session:
    """One ctrl client connection and the data channel it sets up."""

    def __init__(self, proxy, client, upstream):
        self.p = proxy
        self.client, self.up = client, upstream
        self.ctrl = Turn(proxy.log, "ctrl")
        self.data = Turn(proxy.log, "data")
        self.d_client = None   # client's data fd (received with SET_DATAFD)
        self.d_daemon = None   # our end of the socketpair handed to the daemon

    def sockets(self):
        return [s for s in (self.client, self.up, self.d_client, self.d_daemon) if s]

    def close_ctrl(self):
        self.ctrl.flush()
        for s in (self.client, self.up):
            if s:
                s.close()
        self.client = self.up = None

    def close_data(self):
        self.data.flush()
        for s in (self.d_client, self.d_daemon):
            if s:
                s.close()
        self.d_client = self.d_daemon = None

    def done(self):
        return not self.sockets()

    def on_readable(self, s):
        log = self.p.log
        if s is self.client:
            try:
                data, fds = recv_with_fds(s)
            except OSError as e:
                log.write({"ev": "error", "ch": "ctrl", "side": "client", "err": str(e)})
                data, fds = b"", []
            if not data and not fds:
                log.write({"ev": "eof", "ch": "ctrl", "side": "client"})
                self.close_ctrl()
                return
            self.ctrl.add(">", data, len(fds))
            if fds:
                # SET_DATAFD: swap in our own socketpair to see the data channel
                for extra in fds[1:]:
                    os.close(extra)
                try:
                    if self.d_client is not None:
                        # a second data fd while one is active: pass it on as is
                        self.up.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                                  array.array("i", fds[:1]))])
                        os.close(fds[0])
                        return
                    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
                    try:
                        self.up.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                                  array.array("i", [theirs.fileno()]))])
                    finally:
                        theirs.close()
                except OSError as e:
                    log.write({"ev": "error", "ch": "ctrl", "side": "send", "err": str(e)})
                    os.close(fds[0])
                    self.close_ctrl()
                    return
                self.d_client = socket.socket(fileno=fds[0])
                self.d_daemon = mine
                log.write({"ev": "connect", "ch": "data"})
            else:
                try:
                    self.up.sendall(data)
                except OSError as e:
                    log.write({"ev": "error", "ch": "ctrl", "side": "send", "err": str(e)})
                    self.close_ctrl()
        elif s is self.up:
            try:
                data = s.recv(65536)
            except OSError as e:
                log.write({"ev": "error", "ch": "ctrl", "side": "daemon", "err": str(e)})
                data = b""
            if not data:
                log.write({"ev": "eof", "ch": "ctrl", "side": "daemon"})
                self.close_ctrl()
                return
            self.ctrl.add("<", data)
            try:
                self.client.sendall(data)
            except OSError as e:
                log.write({"ev": "error", "ch": "ctrl", "side": "send", "err": str(e)})
                self.close_ctrl()
        elif s in (self.d_client, self.d_daemon):
            side = "client" if s is self.d_client else "daemon"
            try:
                data = s.recv(65536)
            except OSError as e:
                log.write({"ev": "error", "ch": "data", "side": side, "err": str(e)})
                data = b""
            if not data:
                log.write({"ev": "eof", "ch": "data", "side": side})
                self.close_data()
                return
            peer = self.d_daemon if s is self.d_client else self.d_client
            self.data.add(">" if s is self.d_client else "<", data)
            try:
                peer.sendall(data)
            except OSError as e:
                log.write({"ev": "error", "ch": "data", "side": "send", "err": str(e)})
                self.close_data()


class Proxy:
    def __init__(self, listen, connect, logpath):
        self.connect_path = connect
        self.log = Log(logpath)
        try:
            os.unlink(listen)
        except FileNotFoundError:
            pass
        self.lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o077)
        self.lsock.bind(listen)
        os.umask(old)
        self.lsock.listen(4)
        self.listen_path = listen
        self.sessions = []
        self.served = 0

    def run(self):
        while True:
            if self.served and not self.sessions:
                return
            socks = [self.lsock]
            for sess in self.sessions:
                socks += sess.sockets()
            r, _, _ = select.select(socks, [], [])
            for s in r:
                if s is self.lsock:
                    self.accept()
                    continue
                for sess in self.sessions:
                    if s in sess.sockets():
                        sess.on_readable(s)
                        break
            for sess in [x for x in self.sessions if x.done()]:
                sess.ctrl.flush()
                sess.data.flush()
                self.sessions.remove(sess)

    def accept(self):
        client, _ = self.lsock.accept()
        up = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            up.connect(self.connect_path)
        except OSError as e:
            self.log.write({"ev": "error", "ch": "ctrl", "side": "connect", "err": str(e)})
            client.close()
            up.close()
            return
        self.log.write({"ev": "connect", "ch": "ctrl"})
        self.sessions.append(Session(self, client, up))
        self.served += 1

    def close(self):
        for sess in self.sessions:
            sess.ctrl.flush()
            sess.data.flush()
        try:
            os.unlink(self.listen_path)
        except OSError:
            pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--listen", required=True)
    ap.add_argument("--connect", required=True)
    ap.add_argument("--log", required=True)
    a = ap.parse_args()
    proxy = Proxy(a.listen, a.connect, a.log)

    def on_term(_sig, _frm):
        proxy.close()
        sys.exit(0)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    try:
        proxy.run()
    finally:
        proxy.close()


if __name__ == "__main__":
    main()
