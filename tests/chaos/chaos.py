#!/usr/bin/python3
"""Fault-injection runs against real cetcd clusters on loopback, checked for linearizability.

One run: a 3- or 5-member cluster (tests/integration/cluster_harness.py) whose peer links go
through TCP proxies (proxy.py); client threads issue put, get (linearizable and serializable,
through every member), delete, txn compare-and-swap (on value and on mod revision) and lease
grant / leased puts / keep-alive / revoke, recording each operation's invocation and return
time and result; watchers (one from revision 1, more started during the run at random
revisions, resumed on another member when their stream breaks) record every event; a nemesis
injects faults (SIGKILL and restart, the leader most often; SIGSTOP/SIGCONT past the
election timeout; symmetric and one-way partitions; delayed and dropped peer messages; a
slow disk (every fsync of one member delayed, through the LD_PRELOAD shim slowdisk.py
drives); a member removed, wiped and added back; compaction and defragmentation). At the end
the faults are healed and the record is checked (linearizability.py): per-key
linearizability, store-wide revision order, watch guarantees, serializable reads, no
acknowledged write lost, and equal HashKV on every member at the same revision.

  chaos.py --seed S --members N --duration SECONDS          one run (replayable by seed)
  chaos.py --runs R --duration SECONDS [--first-seed S]     a sweep over 3 and 5 members

A failed run keeps its record, logs and data dirs, and prints the command that replays it
(the seed fixes the fault schedule and the operation mix; thread timing is not replayed).
"""

import argparse
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))

import grpc  # noqa: E402
from etcd3.etcdrpc import rpc_pb2 as pb, rpc_pb2_grpc as rpcg  # noqa: E402

import cluster_harness  # noqa: E402
import harness  # noqa: E402
import linearizability as lin  # noqa: E402
import proxy  # noqa: E402
import slowdisk  # noqa: E402

OP_TIMEOUT = 2.0
PREFIX = "k/"
N_KEYS = 6


def now():
    return time.monotonic()


class ProxiedMember(cluster_harness.Member):
    """A member whose advertised peer URL is its proxy's port, running under the slow-disk
    shim (no delay until the nemesis sets one)."""

    def __init__(self, cluster, name, binary):
        super().__init__(cluster, name, binary)
        self.proxy_port = harness.free_port()
        self.added_id = None  # the member id MemberAdd gave it when it was re-added
        slowdisk.attach(self)

    @property
    def proxy_url(self):
        return "http://127.0.0.1:%d" % self.proxy_port

    @property
    def id(self):
        return self.added_id or cluster_harness.member_id(self.proxy_url, self.cluster.token)

    def argv(self):
        argv = super().argv()
        argv[argv.index("--initial-advertise-peer-urls") + 1] = self.proxy_url
        return argv


class Recorder:
    """The history: operations with invocation/return times and results."""

    def __init__(self):
        self.lock = threading.Lock()
        self.ops = []

    def add(self, op):
        with self.lock:
            op["id"] = len(self.ops)
            self.ops.append(op)


class Run:
    """One fault-injection run; `execute()` returns (ok, summary dict)."""

    def __init__(self, seed, members, duration, binary, out_dir, clients=6, force=()):
        self.seed, self.n, self.duration = seed, members, duration
        self.force = list(force)  # fault kinds injected first (every other fault), then random
        self.rnd = random.Random(seed)
        self.out_dir = out_dir
        self.n_clients = clients
        self.cluster = cluster_harness.Cluster(binary, 0, token="chaos-%d" % seed)
        self.cluster.members = [ProxiedMember(self.cluster, "m%d" % i, binary) for i in range(members)]
        ic = ",".join("%s=%s" % (m.name, m.proxy_url) for m in self.cluster.members)
        for m in self.cluster.members:
            m.initial_cluster = ic
        self.net = proxy.Net(seed)
        self.net.names = [m.name for m in self.cluster.members]
        self.proxies = []
        self.rec = Recorder()
        self.stop = threading.Event()
        self.watchers = []
        self.faults = []
        self.errors = []
        self.compacted = 0
        self.slow_syncs = []  # per slow-disk fault: the syncs the shim delayed
        self.rejoins = []  # per wipe-and-re-add fault: member, old and new id
        self.stuck = []  # stacks of client threads still in a call 30 s after the load ended
        self.chans = {}

    # -- plumbing ---------------------------------------------------------------------------
    def pids(self):
        return {m.name: (m.pid if m.running() else None) for m in self.cluster.members}

    def channel(self, m):
        ch = self.chans.get(m.name)
        if ch is None:
            ch = self.chans[m.name] = grpc.insecure_channel(m.endpoint)
        return ch

    def status(self, m, timeout=0.5):
        try:
            return rpcg.MaintenanceStub(self.channel(m)).Status(pb.StatusRequest(), timeout=timeout)
        except grpc.RpcError:
            return None

    def leader(self):
        """The member a majority of running members name as leader, or None."""
        votes = {}
        for m in self.cluster.members:
            if m.running():
                s = self.status(m)
                if s is not None and s.leader:
                    votes[s.leader] = votes.get(s.leader, 0) + 1
        for m in self.cluster.members:
            if votes.get(m.id, 0) > self.n // 2:
                return m
        return None

    # -- client load -------------------------------------------------------------------------
    def client(self, c):
        rnd = random.Random(self.seed * 1000 + c)
        seq = 0
        seen = {}  # key -> (value, mod) this client last read
        deadline = now() + self.duration
        while not self.stop.is_set() and now() < deadline:
            seq += 1
            m = rnd.choice(self.cluster.members)
            kv = rpcg.KVStub(self.channel(m))
            key = PREFIX + "%d" % rnd.randrange(N_KEYS)
            kind = rnd.choice(["put", "put", "get", "get", "sget", "delete", "cas_v", "cas_m",
                               "lease"])
            if kind == "lease":
                self.lease_ops(c, seq, rnd, m)
                continue
            op = {"client": c, "key": key, "member": m.name}
            bkey = key.encode()
            try:
                op["t0"] = now()
                if kind in ("get", "sget"):
                    op.update(type="get", serializable=kind == "sget")
                    r = kv.Range(pb.RangeRequest(key=bkey, serializable=kind == "sget"),
                                 timeout=OP_TIMEOUT)
                    op["t1"] = now()
                    op.update(rev=r.header.revision, **_read(r.kvs))
                    seen[key] = (op["resp_value"], op["resp_mod"])
                elif kind == "put":
                    op.update(type="put", value="c%d-%d" % (c, seq))
                    r = kv.Put(pb.PutRequest(key=bkey, value=op["value"].encode()), timeout=OP_TIMEOUT)
                    op["t1"] = now()
                    op["rev"] = r.header.revision
                elif kind == "delete":
                    op["type"] = "delete"
                    r = kv.DeleteRange(pb.DeleteRangeRequest(key=bkey), timeout=OP_TIMEOUT)
                    op["t1"] = now()
                    op.update(rev=r.header.revision, deleted=r.deleted)
                else:
                    last = seen.get(key, (None, 0))
                    op.update(type="txn", value="c%d-%d" % (c, seq))
                    if kind == "cas_v":
                        op["cmp"] = {"target": "value", "expect": last[0] or "absent"}
                        cmp = pb.Compare(result=pb.Compare.EQUAL, target=pb.Compare.VALUE, key=bkey,
                                         value=op["cmp"]["expect"].encode())
                    else:
                        op["cmp"] = {"target": "mod", "expect": last[1] or 0}
                        cmp = pb.Compare(result=pb.Compare.EQUAL, target=pb.Compare.MOD, key=bkey,
                                         mod_revision=op["cmp"]["expect"])
                    put = pb.RequestOp(request_put=pb.PutRequest(key=bkey, value=op["value"].encode()))
                    get = pb.RequestOp(request_range=pb.RangeRequest(key=bkey))
                    r = kv.Txn(pb.TxnRequest(compare=[cmp], success=[put], failure=[get]),
                               timeout=OP_TIMEOUT)
                    op["t1"] = now()
                    op.update(rev=r.header.revision, succeeded=r.succeeded)
                    if not r.succeeded:
                        got = _read(r.responses[0].response_range.kvs)
                        op["resp_value"] = got["resp_value"]
                        seen[key] = (got["resp_value"], got["resp_mod"])
            except grpc.RpcError as e:
                op["t1"] = None
                op["error"] = "%s" % (e.code(),)
                time.sleep(0.05)
            self.rec.add(op)

    def lease_ops(self, c, seq, rnd, m):
        """Grant a lease, put 1-2 keys with it, keep it alive once, revoke it (recorded as
        puts and a revoke_delete of each key)."""
        ch = self.channel(m)
        ls, kv = rpcg.LeaseStub(ch), rpcg.KVStub(ch)
        try:
            g = ls.LeaseGrant(pb.LeaseGrantRequest(TTL=300), timeout=OP_TIMEOUT)
        except grpc.RpcError:
            return
        keys = ["%slease-%d-%d-%d" % (PREFIX, c, seq, i) for i in range(rnd.randint(1, 2))]
        for i, key in enumerate(keys):
            op = {"client": c, "key": key, "member": m.name, "type": "put",
                  "value": "c%d-%d-l%d" % (c, seq, i), "t0": now()}
            try:
                r = kv.Put(pb.PutRequest(key=key.encode(), value=op["value"].encode(), lease=g.ID),
                           timeout=OP_TIMEOUT)
                op.update(t1=now(), rev=r.header.revision)
            except grpc.RpcError as e:
                op.update(t1=None, error=str(e.code()))
            self.rec.add(op)
        try:
            for _ in ls.LeaseKeepAlive(iter([pb.LeaseKeepAliveRequest(ID=g.ID)]), timeout=OP_TIMEOUT):
                break
        except grpc.RpcError:
            pass
        t0 = now()
        try:
            r = ls.LeaseRevoke(pb.LeaseRevokeRequest(ID=g.ID), timeout=OP_TIMEOUT)
            t1, rev = now(), r.header.revision
        except grpc.RpcError:
            t1, rev = None, None
        for key in keys:
            self.rec.add({"client": c, "key": key, "member": m.name, "type": "revoke_delete",
                          "t0": t0, "t1": t1, "rev": rev})

    # -- watches -----------------------------------------------------------------------------
    def watcher(self, w, start_member):
        """Records every event under PREFIX from w["start"]; when the stream breaks, resumes
        on another member from the next revision. Stops at self.watch_stop."""
        mi = self.cluster.members.index(start_member)
        nxt = w["start"]
        for attempt in range(1000):
            if self.watch_stop.is_set():
                return
            m = self.cluster.members[(mi + attempt) % self.n]
            req = pb.WatchRequest(create_request=pb.WatchCreateRequest(
                key=PREFIX.encode(), range_end=_prefix_end(PREFIX), start_revision=nxt, prev_kv=True))
            reqs = _Requests(req)
            call = rpcg.WatchStub(self.channel(m)).Watch(iter(reqs), timeout=self.duration + 120)
            w["calls"].append(call)
            try:
                for resp in call:
                    if resp.canceled or resp.compact_revision:
                        w["problems"].append("watch canceled at %d (compact %d): %s"
                                             % (nxt, resp.compact_revision, resp.cancel_reason))
                        return
                    if not resp.events:
                        continue
                    evs = [_event(e) for e in resp.events]
                    w["responses"].append(evs)
                    nxt = evs[-1]["mod"] + 1
                    w["next"] = nxt
            except grpc.RpcError:
                pass
            reqs.close()
            time.sleep(0.1)

    def start_watcher(self, start, member):
        w = {"start": start, "prefix": PREFIX, "responses": [], "problems": [], "calls": [],
             "next": start}
        t = threading.Thread(target=self.watcher, args=(w, member), daemon=True)
        self.watchers.append((w, t))
        t.start()

    # -- nemesis -----------------------------------------------------------------------------
    def pick(self, leader_bias=0.6):
        """A member: the leader with probability leader_bias when there is one."""
        if self.rnd.random() < leader_bias:
            ld = self.leader()
            if ld is not None:
                return ld
        return self.rnd.choice(self.cluster.members)

    def nemesis(self):
        deadline = now() + self.duration
        kinds = ["kill", "kill", "pause", "partition", "oneway", "delay", "drop", "slowdisk",
                 "rejoin", "compact", "defrag", "watch"]
        for i in range(10000):
            if now() >= deadline - 1.5 or self.stop.is_set():
                return
            time.sleep(self.rnd.uniform(0.3, 1.2))
            crashed = self.exited()
            if crashed:
                self.errors += crashed
                for m in self.cluster.members:
                    if not m.running():
                        m.start(wait=False)
            kind = self.rnd.choice(kinds)
            forced = bool(self.force) and i % 2 == 1
            if forced:
                kind = self.force.pop(0)
            hold = self.rnd.uniform(1.0, 2.5)
            t = now()
            try:
                what = getattr(self, "fault_" + kind)(hold)
            except Exception as e:  # a fault that cannot be injected fails the run
                self.errors.append("fault %s: %r" % (kind, e))
                return
            self.faults.append({"t": t, "kind": kind, "what": what, "took": now() - t})
            if forced and what.startswith("skipped"):
                self.force.insert(0, kind)  # a forced fault is retried until it happens

    def fault_kill(self, hold):
        m = self.pick()
        m.kill9()
        time.sleep(hold / 2)
        m.start(wait=False)
        m.wait_ready(timeout=30)
        return m.name

    def fault_pause(self, hold):
        m = self.pick()
        os.kill(m.pid, signal.SIGSTOP)
        time.sleep(max(hold, 2.0 * self.cluster.election_ms / 1000.0))
        os.kill(m.pid, signal.SIGCONT)
        return m.name

    def fault_partition(self, hold):
        m = self.pick()
        self.net.set(blocked={(a, b) for a in self.net.names for b in self.net.names
                              if a != b and m.name in (a, b)})
        time.sleep(hold)
        self.net.heal()
        return m.name

    def fault_oneway(self, hold):
        m = self.pick()
        out = self.rnd.random() < 0.5  # m cannot send, or cannot receive
        self.net.set(blocked={((m.name, b) if out else (b, m.name)) for b in self.net.names
                              if b != m.name})
        time.sleep(hold)
        self.net.heal()
        return "%s %s" % (m.name, "outbound" if out else "inbound")

    def fault_delay(self, hold):
        d = self.rnd.uniform(0.01, 0.1)
        self.net.set(delay=d)
        time.sleep(hold)
        self.net.heal()
        return "%.0fms" % (d * 1000)

    def fault_drop(self, hold):
        p = self.rnd.uniform(0.01, 0.1)
        self.net.set(drop=p)
        time.sleep(hold)
        self.net.heal()
        return "%.0f%%" % (p * 100)

    def fault_slowdisk(self, hold):
        """Every fsync, fdatasync and msync(MS_SYNC) of one member delayed 20-200 ms."""
        m = self.pick()
        ms = self.rnd.randint(20, 200)
        before = slowdisk.delayed(m)[0]
        slowdisk.set_delay(m, ms)
        time.sleep(hold)
        slowdisk.set_delay(m, 0)
        time.sleep(slowdisk.CHECK_S + ms / 1000.0 + 0.05)  # the last delayed call has returned
        n = slowdisk.delayed(m)[0] - before
        self.slow_syncs.append(n)
        return "%s %dms: %d syncs delayed" % (m.name, ms, n)

    def members_of(self, via):
        """The member list as one of the `via` members reports it, or None."""
        for m in via:
            try:
                return rpcg.ClusterStub(self.channel(m)).MemberList(pb.MemberListRequest(),
                                                                   timeout=OP_TIMEOUT).members
            except grpc.RpcError:
                pass
        return None

    def reconfigure(self, via, call, done, timeout):
        """Sends call(ClusterStub) to one of the `via` members after another until it succeeds
        or the member list shows done(members) (a call whose reply was lost may have taken
        effect); the strict reconfiguration check refuses changes until every member has
        been connected for 5 s, so refusals are retried. Returns the member list (the
        reply's, or the one that showed the change done), or None after `timeout` seconds."""
        deadline = now() + timeout
        for attempt in range(1000):
            m = via[attempt % len(via)]
            try:
                return call(rpcg.ClusterStub(self.channel(m))).members
            except grpc.RpcError:
                pass
            members = self.members_of(via)
            if members is not None and done(members):
                return members
            if now() > deadline:
                return None
            time.sleep(0.5)
        return None

    def fault_rejoin(self, hold):
        """A member removed through another member's Cluster API (a follower, or the leader
        one time in four), stopped (it also stops by itself once it learns of its removal),
        its data dir deleted, added back with the same peer URL (its proxy's) and started
        empty with --initial-cluster-state existing: the same slot with a new member id.
        Only when every member runs and there is a leader, so the cluster keeps a quorum."""
        ms = self.cluster.members
        ld = self.leader()
        if ld is None or not all(m.running() for m in ms):
            return "skipped: no leader or a member down"
        victim = ld if self.rnd.random() < 0.25 else self.rnd.choice([m for m in ms if m is not ld])
        others = [m for m in ms if m is not victim]
        self.rnd.shuffle(others)
        old = victim.id
        gone = self.reconfigure(
            others, lambda st: st.MemberRemove(pb.MemberRemoveRequest(ID=old), timeout=OP_TIMEOUT),
            lambda members: all(x.ID != old for x in members), timeout=20)
        if gone is None:  # a removal whose reply was lost may still be applied: look once more
            time.sleep(3)
            members = self.members_of(others)
            if members is None or any(x.ID == old for x in members):
                return "skipped: %s not removed" % victim.name
        exited = cluster_harness.until(lambda: not victim.running(), timeout=5) is not None
        victim.stop()
        shutil.rmtree(victim.data_dir)
        time.sleep(hold / 2)
        url = victim.proxy_url
        members = self.reconfigure(
            others, lambda st: st.MemberAdd(pb.MemberAddRequest(peerURLs=[url]), timeout=OP_TIMEOUT),
            lambda members: any(list(x.peerURLs) == [url] for x in members), timeout=30)
        if members is None:
            raise AssertionError("%s removed but could not be added back" % victim.name)
        new = next(x.ID for x in members if list(x.peerURLs) == [url])
        # a joining member validates itself against the member list of whichever peer answers
        # first (etcd does the same), so every member must have applied the addition first
        cluster_harness.until(lambda: all(any(x.ID == new for x in (self.members_of([m]) or []))
                                          for m in others), timeout=15)
        victim.added_id = new
        victim.state = "existing"
        victim.initial_cluster = ",".join("%s=%s" % (x.name or victim.name, x.peerURLs[0])
                                          for x in members)
        victim.start(wait=False)
        victim.wait_ready(timeout=30)
        self.rejoins.append({"member": victim.name, "old_id": "%x" % old, "new_id": "%x" % new,
                             "was_leader": victim is ld, "exited_itself": exited})
        return "%s %x -> %x%s%s" % (victim.name, old, new, " (the leader)" if victim is ld else "",
                                    "" if exited else " (stopped by the nemesis)")

    def rejoined_serve(self):
        """Problems: a re-added member that does not answer as its new member id."""
        out = []
        for m in self.cluster.members:
            if m.added_id is None:
                continue
            s = self.status(m, timeout=5)
            if s is None or s.header.member_id != m.added_id:
                out.append("re-added member %s answers as %s, not as its new id %x"
                           % (m.name, "%x" % s.header.member_id if s else "nothing", m.added_id))
        return out

    def fault_compact(self, _hold):
        # never past what every watcher has received, so resuming stays possible
        live = [w["next"] - 1 for w, _t in self.watchers]
        rev = min(live) if live else 0
        if rev <= self.compacted:
            return "skipped"
        m = self.rnd.choice([x for x in self.cluster.members if x.running()])
        try:
            rpcg.KVStub(self.channel(m)).Compact(pb.CompactionRequest(revision=rev), timeout=OP_TIMEOUT)
            self.compacted = rev
            return "%s@%d" % (m.name, rev)
        except grpc.RpcError as e:
            return "%s failed %s" % (m.name, e.code())

    def fault_defrag(self, _hold):
        m = self.rnd.choice(self.cluster.members)
        try:
            rpcg.MaintenanceStub(self.channel(m)).Defragment(pb.DefragmentRequest(), timeout=10)
            return m.name
        except grpc.RpcError as e:
            return "%s failed %s" % (m.name, e.code())

    def fault_watch(self, _hold):
        """Not a fault: a new watcher from a random revision (resumability)."""
        if len(self.watchers) >= 6:
            return "skipped"
        top = max((w["next"] for w, _t in self.watchers), default=1)
        start = self.rnd.randint(max(self.compacted + 1, 1), max(top, self.compacted + 1))
        m = self.rnd.choice(self.cluster.members)
        self.start_watcher(start, m)
        return "%s from %d" % (m.name, start)

    # -- end of run --------------------------------------------------------------------------
    def exited(self):
        """Members whose process ended without the nemesis killing it (a crash or an exit
        the cluster did not ask for): each is a problem, with its exit status."""
        out = []
        for m in self.cluster.members:
            if m.proc is not None and not m.running() and m._log is not None:
                out.append("%s exited by itself with status %s\n%s"
                           % (m.name, m.proc.returncode, m.log_tail(30)))
                m._close_log()
        return out

    def heal(self):
        self.net.heal()
        self.errors += self.exited()
        for m in self.cluster.members:
            if m.running():
                os.kill(m.pid, signal.SIGCONT)
            else:
                m.start(wait=False)
        for m in self.cluster.members:
            m.wait_ready(timeout=30)
        if not cluster_harness.until(self.leader, timeout=30):
            raise AssertionError("no leader after healing")

    def final_reads(self):
        """After healing: put a sentinel, then a linearizable read of every key through every
        member (part of the history, so a lost write shows up as non-linearizable)."""
        keys = sorted({op["key"] for op in self.rec.ops})
        ld = self.leader()
        r = rpcg.KVStub(self.channel(ld)).Put(pb.PutRequest(key=(PREFIX + "zz-end").encode(),
                                                            value=b"end"), timeout=10)
        end_rev = r.header.revision
        for m in self.cluster.members:
            kv = rpcg.KVStub(self.channel(m))
            for key in keys:
                op = {"client": -1, "key": key, "member": m.name, "type": "get", "t0": now()}
                for _ in range(20):
                    try:
                        rr = kv.Range(pb.RangeRequest(key=key.encode()), timeout=5)
                        op.update(t1=now(), rev=rr.header.revision, **_read(rr.kvs))
                        break
                    except grpc.RpcError:
                        time.sleep(0.25)
                if "t1" not in op:
                    raise AssertionError("final read of %s on %s failed" % (key, m.name))
                self.rec.add(op)
        return end_rev

    def hashes(self, rev):
        """HashKV of every member at revision rev: {member: (hash, compact_revision)}."""
        out = {}
        for m in self.cluster.members:
            ms = rpcg.MaintenanceStub(self.channel(m))
            for _ in range(120):  # a re-added member may still be catching up
                try:
                    h = ms.HashKV(pb.HashKVRequest(revision=rev), timeout=5)
                    out[m.name] = (h.hash, h.compact_revision)
                    break
                except grpc.RpcError:
                    time.sleep(0.25)
        return out

    def execute(self):
        t_start = now()
        summary = {"seed": self.seed, "members": self.n, "duration": self.duration}
        problems = []
        try:
            for m in self.cluster.members:
                self.proxies.append(proxy.Proxy(self.net, m.name, m.proxy_port, m.peer_port, self.pids))
            harness.start_servers(*self.cluster.members)
            if not cluster_harness.until(self.leader, timeout=30):
                raise AssertionError("no leader at start")
            self.watch_stop = threading.Event()
            self.start_watcher(1, self.cluster.members[0])
            threads = [threading.Thread(target=self.client, args=(c,), daemon=True)
                       for c in range(self.n_clients)]
            for t in threads:
                t.start()
            # in this thread: servers get SIGKILL when the thread that started them ends
            # (setpriv --pdeathsig), so every restart happens on the main thread
            self.nemesis()
            join_by = now() + 30  # far past the longest operation (a lease cycle: 5 calls)
            for t in threads:
                t.join(max(0.0, join_by - now()))
            self.stuck = [_stack(t) for t in threads if t.is_alive()]
            self.heal()
            end_rev = self.final_reads()
            # watchers catch up to the sentinel
            cluster_harness.until(lambda: all(w["next"] > end_rev for w, _t in self.watchers),
                                  timeout=30)
            for w, _t in self.watchers:
                if w["next"] <= end_rev:
                    problems.append("watcher from %d stuck at %d (end revision %d)"
                                    % (w["start"], w["next"], end_rev))
                problems += w["problems"]
            hs = self.hashes(end_rev)
            summary["hashkv"] = {k: list(v) for k, v in hs.items()}
            if len(hs) != self.n or len(set(hs.values())) != 1:
                problems.append("HashKV at revision %d differs or is missing: %s" % (end_rev, hs))
            problems += self.rejoined_serve()
            problems += self.errors
        except Exception as e:  # the run could not complete: that fails it
            problems.append("run error: %r" % (e,))
            for m in self.cluster.members:
                problems.append(m.log_tail(10))
        finally:
            self.watch_stop = getattr(self, "watch_stop", threading.Event())
            self.watch_stop.set()
            self.stop.set()
            for w, _t in self.watchers:
                for c in w["calls"]:
                    c.cancel()
        watchers = [{k: w[k] for k in ("start", "prefix", "responses")} for w, _t in self.watchers]
        t_check = now()
        problems += lin.check_all(self.rec.ops, watchers, 0)
        summary.update(ops=len(self.rec.ops),
                       ops_unknown=sum(1 for o in self.rec.ops if o.get("t1") is None),
                       events=sum(len(r) for w in watchers for r in w["responses"]),
                       watchers=len(watchers), faults=len(self.faults),
                       fault_kinds=sorted({f["kind"] for f in self.faults}),
                       fault_counts={k: sum(1 for f in self.faults if f["kind"] == k
                                            and not f["what"].startswith("skipped"))
                                     for k in sorted({f["kind"] for f in self.faults})},
                       slow_syncs=self.slow_syncs, rejoins=self.rejoins, stuck_clients=self.stuck,
                       compacted=self.compacted, problems=problems,
                       check_seconds=round(now() - t_check, 2), seconds=round(now() - t_start, 1))
        ok = not problems
        os.makedirs(self.out_dir, exist_ok=True)
        with open(os.path.join(self.out_dir, "record.json"), "w") as f:
            json.dump({"history": self.rec.ops, "watchers": watchers, "compacted": 0,
                       "faults": self.faults, "summary": summary}, f)
        for p in self.proxies:
            p.close()
        for ch in self.chans.values():
            ch.close()
        if not ok:
            os.environ["CETCD_TEST_KEEP"] = "1"
            summary["kept"] = [m.root for m in self.cluster.members] + [self.out_dir]
        self.cluster.close()
        if not ok:
            os.environ.pop("CETCD_TEST_KEEP", None)
        return ok, summary


class _Requests:
    """The request side of a watch stream: the create request, then open until closed."""

    def __init__(self, first):
        self.first = first
        self.done = threading.Event()

    def __iter__(self):
        yield self.first
        self.done.wait()

    def close(self):
        self.done.set()


def _stack(thread):
    """The current stack of a running thread, as text."""
    frame = sys._current_frames().get(thread.ident)
    return "%s:\n%s" % (thread.name, "".join(traceback.format_stack(frame)) if frame else "(gone)")


def _prefix_end(p):
    b = bytearray(p.encode())
    b[-1] += 1
    return bytes(b)


def _read(kvs):
    if not kvs:
        return {"resp_value": None, "resp_mod": 0}
    return {"resp_value": kvs[0].value.decode(), "resp_mod": kvs[0].mod_revision}


def _event(e):
    put = e.type == 0
    return {"type": "PUT" if put else "DELETE", "key": e.kv.key.decode(),
            "value": e.kv.value.decode() if put else None, "mod": e.kv.mod_revision,
            "prev": e.prev_kv.value.decode() if e.HasField("prev_kv") and e.prev_kv.key else None}


def use_own_tmp(out):
    """Member data dirs and logs go under out/tmp, not the shared /tmp, where other test
    suites' clean-ups may remove them under a running member (seen once in the sweep)."""
    d = os.path.join(out, "tmp")
    os.makedirs(d, exist_ok=True)
    tempfile.tempdir = d


def replay_command(seed, members, duration, force=()):
    return "/usr/bin/python3 %s --seed %d --members %d --duration %g%s" % (
        os.path.relpath(os.path.abspath(__file__)), seed, members, duration,
        " --force " + ",".join(force) if force else "")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, help="one run with this seed")
    ap.add_argument("--members", type=int, default=3)
    ap.add_argument("--runs", type=int, default=1, help="sweep: this many runs (3 and 5 members)")
    ap.add_argument("--first-seed", type=int, default=None)
    ap.add_argument("--duration", type=float, default=30.0, help="seconds of load per run")
    ap.add_argument("--out", default=os.path.join(harness.REPO, "build", "chaos"))
    ap.add_argument("--clients", type=int, default=6)
    ap.add_argument("--force", default="", help="fault kinds to inject first, comma-separated")
    a = ap.parse_args(argv)
    force = [k for k in a.force.split(",") if k]
    binary = harness.server_bin()
    use_own_tmp(a.out)
    if a.seed is not None:
        plan = [(a.seed, a.members)]
    else:
        first = a.first_seed if a.first_seed is not None else int(time.time()) % 100000 * 100
        plan = [(first + i, 3 if i % 2 == 0 else 5) for i in range(a.runs)]
    failed, total_ops, total_events, total_unknown, faults = [], 0, 0, 0, {}
    for seed, members in plan:
        run = Run(seed, members, a.duration, binary, os.path.join(a.out, "seed-%d" % seed), a.clients,
                  force)
        ok, s = run.execute()
        total_ops += s["ops"]
        total_unknown += s["ops_unknown"]
        total_events += s["events"]
        for k, v in s["fault_counts"].items():
            faults[k] = faults.get(k, 0) + v
        faults["syncs delayed"] = faults.get("syncs delayed", 0) + sum(s["slow_syncs"])
        print("seed %d members %d: %s  ops %d (unknown %d) events %d watchers %d faults %d %s "
              "check %.1fs run %.0fs" % (seed, members, "ok" if ok else "FAILED", s["ops"],
                                         s["ops_unknown"], s["events"], s["watchers"], s["faults"],
                                         ",".join(s["fault_kinds"]), s["check_seconds"], s["seconds"]),
              flush=True)
        for st in s["stuck_clients"]:
            print("  warning: a client call outlived its deadline by 20 s or more (the run "
                  "went on without it); %s" % st, flush=True)
        if not ok:
            for p in s["problems"][:20]:
                print("  problem: %s" % p)
            print("  kept: %s" % " ".join(s["kept"]))
            print("  replay: %s" % replay_command(seed, members, a.duration, force), flush=True)
            failed.append(seed)
    print("%d runs, %d failed, %d operations (%d with an unknown outcome) and %d watch events "
          "checked; faults: %s" % (len(plan), len(failed), total_ops, total_unknown, total_events,
                                   ", ".join("%s %d" % kv for kv in sorted(faults.items()))))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
