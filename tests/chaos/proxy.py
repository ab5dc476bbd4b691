"""A TCP proxy on each member's peer port, for partitions and delayed or dropped messages.

Every member advertises its proxy's port as its peer URL, so each raft connection from
member A to member B goes through B's proxy. The proxy learns A from the connecting socket
(the /proc/net/tcp inode of the client end, then the member PID whose fds hold that inode),
so a rule can act on one direction: A -> B blocked is a one-way partition, both directions
a symmetric one. Blocking closes the pair's live connections and refuses new ones; delay
holds every chunk for the delay; a drop rate closes a connection (losing what was in
flight) with that probability per chunk. Only 127.0.0.1 is used.
"""

import os
import random
import socket
import threading
import time


class Net:
    """The fault rules shared by every proxy: blocked (src, dst) pairs, delay, drop rate."""

    def __init__(self, seed=0):
        self.lock = threading.Lock()
        self.blocked = set()
        self.delay = 0.0
        self.drop = 0.0
        self.rnd = random.Random(seed)
        self.conns = []  # (src, dst, sock_a, sock_b)
        self.names = []  # every member name (set by the runner)

    def set(self, blocked=None, delay=None, drop=None):
        """Changes the rules; connections a new block covers are closed at once."""
        with self.lock:
            if blocked is not None:
                self.blocked = set(blocked)
            if delay is not None:
                self.delay = delay
            if drop is not None:
                self.drop = drop
            doomed = [c for c in self.conns if self._cut(c[0], c[1])]
        for c in doomed:
            _close(c[2], c[3])

    def heal(self):
        self.set(blocked=(), delay=0.0, drop=0.0)

    def _cut(self, src, dst):
        if src is None:  # an unknown source is cut only when the destination is isolated
            return all((s, dst) in self.blocked for s in self.names if s != dst)
        return (src, dst) in self.blocked

    def cut(self, src, dst):
        with self.lock:
            return self._cut(src, dst)

    def chunk_fate(self):
        """(delay seconds, drop?) for one forwarded chunk."""
        with self.lock:
            return self.delay, self.drop > 0 and self.rnd.random() < self.drop


def _close(*socks):
    for s in socks:
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            s.close()
        except OSError:
            pass


def _socket_inode(local_port, remote_port):
    """The inode of the 127.0.0.1:local_port -> 127.0.0.1:remote_port TCP socket, or None."""
    want_l = "0100007F:%04X" % local_port
    want_r = "0100007F:%04X" % remote_port
    try:
        with open("/proc/net/tcp") as f:
            for line in f.readlines()[1:]:
                p = line.split()
                if p[1] == want_l and p[2] == want_r:
                    return p[9]
    except OSError:
        pass
    return None


def source_member(pids, src_port, proxy_port):
    """Name of the member (pids: {name: pid}) owning the connecting socket, or None."""
    inode = _socket_inode(src_port, proxy_port)
    if inode is None:
        return None
    target = "socket:[%s]" % inode
    for name, pid in pids.items():
        if pid is None:
            continue
        try:
            for fd in os.listdir("/proc/%d/fd" % pid):
                try:
                    if os.readlink("/proc/%d/fd/%s" % (pid, fd)) == target:
                        return name
                except OSError:
                    continue
        except OSError:
            continue
    return None


class Proxy:
    """Listens on 127.0.0.1:port and forwards to 127.0.0.1:target for member `dst`."""

    def __init__(self, net, dst, port, target, pids):
        self.net, self.dst, self.port, self.target, self.pids = net, dst, port, target, pids
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(64)
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self):
        self.stopped = True
        _close(self.sock)

    def _accept(self):
        while not self.stopped:
            try:
                a, (_h, sport) = self.sock.accept()
            except OSError:
                return
            src = source_member(self.pids(), sport, self.port)
            if self.net.cut(src, self.dst):
                _close(a)
                continue
            try:
                b = socket.create_connection(("127.0.0.1", self.target), timeout=2)
                b.settimeout(None)
            except OSError:
                _close(a)
                continue
            c = (src, self.dst, a, b)
            with self.net.lock:
                self.net.conns.append(c)
            threading.Thread(target=self._pump, args=(c, a, b), daemon=True).start()
            threading.Thread(target=self._pump, args=(c, b, a), daemon=True).start()

    def _pump(self, c, frm, to):
        try:
            while True:
                data = frm.recv(65536)
                if not data:
                    break
                delay, drop = self.net.chunk_fate()
                if drop or self.net.cut(c[0], c[1]):
                    break
                if delay:
                    time.sleep(delay)
                to.sendall(data)
        except OSError:
            pass
        _close(frm, to)
        with self.net.lock:
            if c in self.net.conns:
                self.net.conns.remove(c)
