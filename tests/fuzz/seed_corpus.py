#!/usr/bin/python3
"""Writes the fuzz targets' seed corpora (tests/fuzz/corpus/<target>/) from real messages:
requests encoded by python3-etcd3's generated protobuf classes, the JSON gateway's bodies,
and the client-to-server bytes of real connections to a running cetcd (python grpc, etcdctl
and curl, recorded by a forwarding proxy). The seeds are committed; run this again (after
`make build`) only to refresh them. Each seed starts with the target's mode byte."""

import base64
import hashlib
import hmac
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import harness  # noqa: E402
from harness import pb_field  # noqa: E402
from etcd3.etcdrpc import rpc_pb2 as pb  # noqa: E402

CORPUS = os.path.join(HERE, "corpus")


def requests():
    """(type index in fuzz_request_decode's table, serialized request) for real requests."""
    put = pb.PutRequest(key=b"foo", value=b"bar", lease=0x694d7a1b2c3d4e5f, prev_kv=True)
    rng = pb.RangeRequest(key=b"a", range_end=b"b", limit=10, revision=3, sort_order=1, sort_target=3,
                          serializable=True, keys_only=True, min_mod_revision=1, max_create_revision=9)
    dele = pb.DeleteRangeRequest(key=b"k/", range_end=b"k0", prev_kv=True)
    txn = pb.TxnRequest(
        compare=[pb.Compare(result=pb.Compare.EQUAL, target=pb.Compare.VERSION, key=b"k", version=0),
                 pb.Compare(result=pb.Compare.GREATER, target=pb.Compare.MOD, key=b"m", mod_revision=4),
                 pb.Compare(result=pb.Compare.LESS, target=pb.Compare.VALUE, key=b"v", value=b"x")],
        success=[pb.RequestOp(request_put=put), pb.RequestOp(request_range=rng)],
        failure=[pb.RequestOp(request_delete_range=dele),
                 pb.RequestOp(request_txn=pb.TxnRequest(success=[pb.RequestOp(request_range=rng)]))])
    create = pb.WatchCreateRequest(key=b"w", range_end=b"x", start_revision=2, progress_notify=True,
                                   filters=[1], prev_kv=True).SerializeToString()
    # etcd 3.4's watch_id (7) and fragment (8), and WatchRequest's progress_request (3):
    # python3-etcd3's stubs predate them
    watch_create = pb_field(1, create + pb_field(7, 7) + pb_field(8, 1))
    watch_progress = pb_field(3, b"")
    lock = pb_field(1, b"mylock") + pb_field(2, 0x694d7a1b2c3d4e5f)
    leader = pb_field(1, b"elect") + pb_field(2, b"elect/694d7a1b2c3d4e5f") + pb_field(3, 5) + pb_field(4, 12)
    return [
        (0, rng.SerializeToString()), (1, put.SerializeToString()), (2, dele.SerializeToString()),
        (3, txn.SerializeToString()), (4, pb.CompactionRequest(revision=5, physical=True).SerializeToString()),
        (5, watch_create),
        (5, pb.WatchRequest(cancel_request=pb.WatchCancelRequest(watch_id=7)).SerializeToString()),
        (5, watch_progress), (6, pb.LeaseGrantRequest(TTL=60, ID=0x1234).SerializeToString()),
        (7, pb.LeaseKeepAliveRequest(ID=0x1234).SerializeToString()),
        (8, pb.AlarmRequest(action=1, memberID=0x8e9e05c52164694d, alarm=1).SerializeToString()),
        (9, lock), (10, pb_field(1, b"elect") + pb_field(2, 12) + pb_field(3, b"v1")),
        (11, pb_field(1, leader) + pb_field(2, b"v2")),
    ]


JSON_BODIES = [  # the gateway's request bodies (bytes fields in base64), as etcd's docs show
    (0, b'{"key":"Zm9v","range_end":"Zm9w","limit":"5","sort_order":"DESCEND","keys_only":true}'),
    (1, b'{"key":"Zm9v","value":"YmFy","lease":"7587848880722730077"}'),
    (2, b'{"key":"Zm9v","prev_kv":true}'),
    (3, b'{"compare":[{"target":"CREATE","key":"Zm9v","createRevision":"2"}],'
        b'"success":[{"requestPut":{"key":"Zm9v","value":"YmFy"}}],'
        b'"failure":[{"request_range":{"key":"Zm9v"}}]}'),
    (5, b'{"create_request":{"key":"Zm9v","start_revision":"1","filters":["NOPUT"]}}'),
    (6, b'{"TTL":60,"ID":0}'),
    (9, b'{"name":"bXlsb2Nr","lease":"7587848880722730077"}'),
]


def grpc_frame(msg):
    return b"\0" + len(msg).to_bytes(4, "big") + msg


class Recorder:
    """A TCP proxy to the server that keeps the client-to-server bytes of each connection."""

    def __init__(self, port):
        self.port, self.conns = port, []
        self.ls = socket.socket()
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(16)
        self.endpoint = "127.0.0.1:%d" % self.ls.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            c, _ = self.ls.accept()
            s = socket.create_connection(("127.0.0.1", self.port))
            rec = bytearray()
            self.conns.append(rec)
            threading.Thread(target=self._pump, args=(c, s, rec), daemon=True).start()
            threading.Thread(target=self._pump, args=(s, c, None), daemon=True).start()

    @staticmethod
    def _pump(src, dst, rec):
        while True:
            try:
                d = src.recv(65536)
            except OSError:
                d = b""
            if not d:
                for s in (src, dst):
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                return
            if rec is not None:
                rec += d
            dst.sendall(d)


def record_connections():
    """Client bytes of real sessions: python grpc (kv, txn, watch, lease), etcdctl, curl."""
    import etcd3
    srv = harness.Server(label="seed")
    srv.start()
    try:
        rec = Recorder(srv.client_port)
        host, port = rec.endpoint.split(":")
        c = etcd3.client(host=host, port=int(port))
        c.put("foo", "bar")
        c.get("foo")
        c.transaction(compare=[c.transactions.value("foo") == "bar"], success=[c.transactions.put("foo", "baz")],
                      failure=[])
        events, cancel = c.watch("foo")
        c.put("foo", "qux")
        next(events)
        cancel()
        lease = c.lease(30)
        lease.refresh()
        c.close()
        harness.etcdctl([rec.endpoint], "put", "k", "v")
        harness.etcdctl([rec.endpoint], "get", "--prefix", "k", "-w", "json")
        for path, body in (("/v3/kv/range", '{"key":"Zm9v"}'), ("/v3/kv/put", '{"key":"YQ==","value":"Yg=="}')):
            subprocess.run(["curl", "-s", "-X", "POST", "-d", body, "http://%s%s" % (rec.endpoint, path)],
                           capture_output=True, timeout=10)
        subprocess.run(["curl", "-s", "--http2-prior-knowledge", "http://%s/version" % rec.endpoint],
                       capture_output=True, timeout=10)
        time.sleep(0.5)
        return [bytes(b) for b in rec.conns if b]
    finally:
        srv.close()


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=")


def jwt_hs256(claims, secret=b"cetcd-fuzz-hs256-secret", alg=b"HS256"):
    """A JWS compact token signed as fuzz_auth_token's HS256 provider signs (its secret)."""
    signing = b64url(b'{"alg":"' + alg + b'","typ":"JWT"}') + b"." + b64url(claims)
    return signing + b"." + b64url(hmac.new(secret, signing, hashlib.sha256).digest())


def auth_tokens():
    """Mode byte (0 simple store, 1 HS256, 3 ES256) + token: valid, truncated and forged ones."""
    good = jwt_hs256(b'{"exp":4102444800,"revision":1,"username":"alice"}')
    expired = jwt_hs256(b'{"exp":1,"revision":1,"username":"alice"}')
    escaped = jwt_hs256(b'{"exp":4102444800,"revision":7,"username":"a\\"b"}')
    forged = jwt_hs256(b'{"exp":4102444800,"revision":1,"username":"root"}', secret=b"wrong")
    none_alg = b64url(b'{"alg":"none"}') + b"." + b64url(b'{"username":"root","revision":1}') + b"."
    h, c, _ = good.split(b".")
    return [b"\0abcdefghijklmnop.42", b"\0abcdefghijklmnop.4", b"\0abcdefghijklmnop.", b"\0x.18446744073709551615",
            b"\0a.b.c", b"\1" + good, b"\1" + good[:-5], b"\1" + good[:len(h) + 10], b"\1" + expired,
            b"\1" + escaped, b"\1" + forged, b"\1" + none_alg, b"\1" + h + b"." + c + b"." + b"A" * 43,
            b"\3" + good, b"\3" + jwt_hs256(b'{"exp":4102444800,"revision":1,"username":"alice"}', alg=b"ES256")]


def client_hello(alpn, max_tls12=False, sni="localhost"):
    """The first flight of a real client (Python's ssl over memory BIOs): its ClientHello."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(alpn)
    if max_tls12:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    out = ssl.MemoryBIO()
    conn = ctx.wrap_bio(ssl.MemoryBIO(), out, server_hostname=sni)
    try:
        conn.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def tls_records():
    """Mode byte (bit 0: server wants a client cert, the rest * 13 + 1 = chunk size) + records:
    real ClientHellos (TLS 1.3 and 1.2, h2 / http/1.1 ALPN, with and without SNI), truncated
    ones, and records a handshake must refuse."""
    h13, h12 = client_hello(["h2"]), client_hello(["h2", "http/1.1"], max_tls12=True)
    hellos = [h13, h12, client_hello(None, sni=None), client_hello(["http/1.1"])]
    bad = [h13[:5], h13[:60], h13[:-1], b"\x16\x03\x01\xff\xff" + h13[5:],  # torn, overlong length
           b"\x15\x03\x03\x00\x02\x02\x28",  # a fatal alert before any hello
           h12 + b"\x14\x03\x03\x00\x01\x01" + b"\x17\x03\x03\x00\x10" + b"\xaa" * 16,  # CCS + app data early
           b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"]  # cleartext h2 on a TLS port
    return ([bytes([0x00]) + h for h in hellos] + [bytes([0x01]) + h13, bytes([0x01]) + h12, bytes([0x06]) + h13] +
            [bytes([0x00]) + b for b in bad])


def write(target, seeds):
    d = os.path.join(CORPUS, target)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    for s in seeds:
        with open(os.path.join(d, hashlib.sha1(s).hexdigest()), "wb") as f:
            f.write(s)
    print("%s: %d seeds, %d bytes" % (target, len(seeds), sum(map(len, seeds))))


def main():
    only = set(sys.argv[1:])  # target names: write only those (the others need a running server)
    if only:
        for name, fn in (("fuzz_auth_token", auth_tokens), ("fuzz_tls_record", tls_records)):
            if name in only:
                write(name, fn())
        return
    write("fuzz_auth_token", auth_tokens())
    write("fuzz_tls_record", tls_records())
    reqs = requests()
    write("fuzz_request_decode", [bytes([t]) + m for t, m in reqs] + [bytes([t]) + j for t, j in JSON_BODIES])
    # mode byte: low nibble = size limit / 256 (0 = none), high nibble + 1 = chunk size
    frames = [grpc_frame(m) for _, m in reqs]
    write("fuzz_grpc_frame", [bytes([0x00]) + f for f in frames] + [bytes([0x31]) + b"".join(frames),
                                                                      bytes([0xf0]) + grpc_frame(b"")])
    # mode byte: bit 0 = prepend a preface (the recordings have their own), the rest * 7 = chunk size
    conns = record_connections()
    write("fuzz_h2_input", [bytes([0x00]) + b for b in conns] + [bytes([0x0e]) + b for b in conns[:2]])


if __name__ == "__main__":
    main()
