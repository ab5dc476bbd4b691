#!/usr/bin/env python3
"""Leases and locks through any member of a 3-member cluster, cetcd beside real etcd.

Only the leader's lessor knows when a lease expires, so a follower must forward keep-alives
and TimeToLive to the leader. Each scenario runs against a cetcd cluster and a real etcd
3.4 cluster and the outcomes are compared:
- `lease keep-alive --once` and `lease timetolive` through a follower (the leader's TTL);
- the JSON gateway's /v3/lease/keepalive through a follower (Patroni's path);
- a lock held through a follower is never granted to anyone else while its holder runs,
  also when the leader is SIGKILLed during the hold;
- a lease kept alive through a follower survives a leader change, and its key stays;
- an election won through a follower (Election service, lease kept alive through that
  follower) is not taken over through another member after the leader is SIGKILLed, and
  passes to the next candidate once the winner's lease is no longer kept alive.
"""

import base64
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest
import urllib.request

import harness
from cluster_harness import Cluster, until


def ctl_argv(endpoints, *args):
    return [harness.ETCDCTL_BIN, "--endpoints=" + ",".join(endpoints), "--dial-timeout=3s"] + list(args)


def ctl_env():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ETCD_", "ETCDCTL_"))}
    env["ETCDCTL_API"] = "3"
    return env


def lease_id(grant_out):
    """The hex id from `lease grant` output ("lease 694d... granted with TTL(5s)")."""
    return grant_out.split()[1]


def remaining(ttl_out):
    """Seconds remaining from `lease timetolive` output, or None."""
    if "remaining(" not in ttl_out:
        return None
    return int(ttl_out.split("remaining(")[1].split("s)")[0])


def grpc_unary(endpoint, method, request, timeout):
    """Raw unary gRPC call (request and response as protobuf bytes): (status name, bytes)."""
    import grpc
    with grpc.insecure_channel(endpoint) as ch:
        call = ch.unary_unary(method, request_serializer=lambda x: x, response_deserializer=lambda x: x)
        try:
            return "OK", call(request, timeout=timeout)
        except grpc.RpcError as e:
            return e.code().name, b""


def pb_get(buf, field):
    """The first value of field in a protobuf message, or None."""
    for f, _, v in harness.pb_decode(buf):
        if f == field:
            return v
    return None


def lead_away_from(c, avoid, other):
    """After an election among avoid and other: if avoid leads, hands leadership to other,
    so that requests through avoid keep depending on forwarding to another member."""
    new = until(lambda: c.leader([avoid, other]))
    if new is avoid:
        r = avoid.ctl("move-leader", "%x" % other.id)
        if not r.ok:
            raise AssertionError("move-leader failed: %s" % r)
        new = until(lambda: (lambda m: m if m is other else None)(c.leader([avoid, other])))
    return new


class Both(unittest.TestCase):
    """Runs each scenario on a fresh cluster of each server."""

    def clusters(self):
        for binary in (None, harness.ETCD_BIN):
            c = Cluster(binary)
            try:
                c.start()
                yield c
            finally:
                c.close()

    # -- keep-alive and TimeToLive through a follower ---------------------------------------
    def scenario_follower_lease(self, c):
        leader = until(c.leader)
        f = c.followers(leader)[0]
        r = f.ctl("lease", "grant", "60")
        self.assertTrue(r.ok, r)
        lid = lease_id(r.out)
        ka = f.ctl("lease", "keep-alive", "--once", lid)
        self.assertTrue(ka.ok, (c.label, ka))
        ttl_f = f.ctl("lease", "timetolive", lid)
        ttl_l = leader.ctl("lease", "timetolive", lid)
        self.assertTrue(ttl_f.ok and ttl_l.ok, (ttl_f, ttl_l))
        rem_f, rem_l = remaining(ttl_f.out), remaining(ttl_l.out)
        self.assertIsNotNone(rem_f, ttl_f)
        self.assertTrue(55 <= rem_f <= 60 and abs(rem_f - rem_l) <= 2, (c.label, ttl_f.out, ttl_l.out))
        f.ctl("put", "lk", "v", "--lease=" + lid)
        keys = f.ctl("lease", "timetolive", "--keys", lid)
        gone = f.ctl("lease", "timetolive", "1234abcd")
        # JSON gateway keep-alive through the follower (what Patroni calls)
        body = json.dumps({"ID": str(int(lid, 16))}).encode()
        req = urllib.request.Request("http://%s/v3/lease/keepalive" % f.endpoint, data=body, method="POST")
        with urllib.request.urlopen(req, timeout=10) as resp:
            gw = json.loads(resp.read())
        return {
            "keepalive": ka.out.replace(lid, "<ID>"),
            "ttl": ttl_f.out.replace(lid, "<ID>").split("remaining(")[0],
            "keys": keys.out.replace(lid, "<ID>").split("remaining(")[0] + keys.out.split("attached keys")[1],
            "unknown": gone.out,
            "gateway": (gw["result"]["ID"] == str(int(lid, 16)), gw["result"]["TTL"]),
        }

    def test_follower_keepalive_and_ttl(self):
        got = {c.label: self.scenario_follower_lease(c) for c in self.clusters()}
        self.assertEqual(got["cetcd"], got["etcd"])
        self.assertEqual(got["cetcd"]["gateway"], (True, "60"))

    # -- a lock held through a follower -----------------------------------------------------
    def scenario_lock(self, c, kill_leader):
        """Holder locks through a follower and runs 8 s; a second locker (through another
        member) must only get the lock after the holder's command ended."""
        leader = until(c.leader)
        f1, f2 = c.followers(leader)
        tmp = tempfile.mkdtemp(prefix="cetcd-lock-")
        done = os.path.join(tmp, "holder-done")
        try:
            holder = subprocess.Popen(
                ctl_argv([f1.endpoint], "lock", "--ttl", "3", "L", "--", "sh", "-c",
                         "echo holding; sleep 8; touch %s; echo released" % done),
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ctl_env(), text=True)
            first = holder.stdout.readline().strip()
            self.assertEqual(first, "holding", holder.stderr.read() if not first else first)
            if kill_leader:
                leader.kill9()
                self.assertIs(lead_away_from(c, f1, f2), f2, "f2 did not become leader")
            time.sleep(3.5)  # past the session TTL: a lost keep-alive would have freed the lock
            second_ep = f2.endpoint if kill_leader else leader.endpoint
            t0 = time.monotonic()
            second = subprocess.run(
                ctl_argv([second_ep], "lock", "--ttl", "3", "L", "--", "sh", "-c",
                         "test -f %s && echo after-holder || echo VIOLATION" % done),
                capture_output=True, text=True, env=ctl_env(), timeout=30)
            waited = time.monotonic() - t0
            out, _ = holder.communicate(timeout=20)
            return {"holder_rc": holder.returncode, "holder_out": out.strip(),
                    "second": second.stdout.strip(), "second_rc": second.returncode,
                    "second_waited": waited > 2.0}
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def test_lock_through_follower(self):
        got = {c.label: self.scenario_lock(c, kill_leader=False) for c in self.clusters()}
        self.assertEqual(got["cetcd"], got["etcd"])
        self.assertEqual(got["cetcd"]["second"], "after-holder", got)

    def test_lock_through_follower_leader_killed(self):
        got = {c.label: self.scenario_lock(c, kill_leader=True) for c in self.clusters()}
        self.assertEqual(got["cetcd"], got["etcd"])
        self.assertEqual(got["cetcd"]["second"], "after-holder", got)

    # -- lease kept alive through a follower across a leader change ---------------------------
    def scenario_ttl_across_election(self, c):
        leader = until(c.leader)
        f1, f2 = c.followers(leader)
        r = f1.ctl("lease", "grant", "4")
        lid = lease_id(r.out)
        self.assertTrue(f1.ctl("put", "sess", "x", "--lease=" + lid).ok)
        ka = subprocess.Popen(ctl_argv([f1.endpoint], "lease", "keep-alive", lid),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ctl_env(),
                              text=True)
        try:
            time.sleep(1)
            leader.kill9()
            self.assertIs(lead_away_from(c, f1, f2), f2, "f2 did not become leader")
            alive = []
            for _ in range(10):  # 10 s: 2.5 TTLs after the election
                time.sleep(1)
                t = f2.ctl("lease", "timetolive", lid)
                alive.append(remaining(t.out) is not None and remaining(t.out) > 0)
            key = f2.ctl("get", "sess", "--print-value-only").out.strip()
            if ka.poll() is not None:
                self.fail("keep-alive process ended: %s" % ka.stderr.read())
        finally:
            ka.kill()
            ka.wait(10)
        return {"alive": all(alive), "key": key}

    def test_lease_survives_leader_change(self):
        got = {c.label: self.scenario_ttl_across_election(c) for c in self.clusters()}
        self.assertEqual(got["cetcd"], got["etcd"])
        self.assertEqual(got["cetcd"], {"alive": True, "key": "x"})


    # -- an election held through a follower -------------------------------------------------
    def scenario_election(self, c):
        leader = until(c.leader)
        f1, f2 = c.followers(leader)
        la = lease_id(f1.ctl("lease", "grant", "3").out)
        ka = subprocess.Popen(ctl_argv([f1.endpoint], "lease", "keep-alive", la),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ctl_env())
        try:
            campaign = "/v3electionpb.Election/Campaign"
            st_a, _ = grpc_unary(f1.endpoint, campaign, harness.pb_field(1, "E") + harness.pb_field(2, int(la, 16))
                                 + harness.pb_field(3, "a"), 10)
            leader.kill9()
            self.assertIs(lead_away_from(c, f1, f2), f2, "f2 did not become leader")
            lb = lease_id(f2.ctl("lease", "grant", "30").out)
            req_b = harness.pb_field(1, "E") + harness.pb_field(2, int(lb, 16)) + harness.pb_field(3, "b")
            st_b, _ = grpc_unary(f2.endpoint, campaign, req_b, 6)  # must still wait for "a"
            _, lead = grpc_unary(f2.endpoint, "/v3electionpb.Election/Leader", harness.pb_field(1, "E"), 10)
            kv = pb_get(lead, 2)
            held = pb_get(kv, 5) if kv else None
        finally:
            ka.kill()
            ka.wait(10)
        t0 = time.monotonic()
        st_b2, _ = grpc_unary(f2.endpoint, campaign, req_b, 20)  # "a"'s lease runs out now
        return {"a": st_a, "b_while_a_alive": st_b, "leader_value": held,
                "b_after_a": st_b2, "b_after_a_in_time": time.monotonic() - t0 < 15}

    def test_election_through_follower(self):
        got = {c.label: self.scenario_election(c) for c in self.clusters()}
        self.assertEqual(got["cetcd"], got["etcd"])
        self.assertEqual(got["cetcd"], {"a": "OK", "b_while_a_alive": "DEADLINE_EXCEEDED", "leader_value": b"a",
                                        "b_after_a": "OK", "b_after_a_in_time": True})


if __name__ == "__main__":
    harness.run_tests()
