"""The short fault-injection sweep inside `make test` (the long one is `make chaos`).

Four runs of 20 s of load (3, 5, 3 and 5 members) under every fault kind chaos.py injects;
each must pass every check. Each run injects a slow disk and a member removed, wiped and
re-added among its first faults (FORCE), so neither can silently do nothing: the shim must
report syncs it delayed, and the re-added member must have a new member id, answer as it at
the end, serve the final linearizable reads and agree on HashKV. Then the checker must
reject the first run's real record with planted anomalies: a stale read, a lost
acknowledged write, a duplicated watch event.
"""

import copy
import json
import os
import shutil
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import chaos  # noqa: E402
import linearizability as lin  # noqa: E402

RUNS = [(11, 3), (12, 5), (13, 3), (14, 5)]
DURATION = 20.0
FORCE = ("slowdisk", "rejoin")


class ShortChaosTest(unittest.TestCase):
    def test_short_sweep_and_planted_anomalies(self):
        out = tempfile.mkdtemp(prefix="cetcd-chaos-")
        chaos.use_own_tmp(out)
        records = []
        for seed, members in RUNS:
            run = chaos.Run(seed, members, DURATION, chaos.harness.server_bin(),
                            os.path.join(out, "seed-%d" % seed), force=FORCE)
            ok, s = run.execute()
            print("seed %d members %d: ops %d (unknown %d) events %d faults %d %s"
                  % (seed, members, s["ops"], s["ops_unknown"], s["events"], s["faults"],
                     ",".join(s["fault_kinds"])), flush=True)
            self.assertTrue(ok, "run failed: %s\nreplay: %s" % (
                "\n".join(s["problems"][:20]), chaos.replay_command(seed, members, DURATION, FORCE)))
            self.assertGreater(s["ops"], 500)
            self.assertGreater(s["faults"], 5)
            self.assertGreater(sum(s["slow_syncs"]), 0, "the slow disk delayed no sync")
            self.assertTrue(s["rejoins"], "no member was removed, wiped and re-added")
            for rj in s["rejoins"]:
                self.assertNotEqual(rj["old_id"], rj["new_id"])
            # every member, the re-added one too, answered the final reads and HashKV
            self.assertEqual(len(s["hashkv"]), members)
            self.assertTrue(any(o["client"] == -1 and o["member"] == s["rejoins"][-1]["member"]
                                for o in run.rec.ops))
            records.append(os.path.join(out, "seed-%d" % seed, "record.json"))
        with open(records[0]) as f:
            rec = json.load(f)
        h, w = rec["history"], rec["watchers"]
        self.assertEqual(lin.check_all(h, w), [])

        # a stale read: a late linearizable get returns the key's first acknowledged value
        h1 = copy.deepcopy(h)
        gets = [o for o in h1 if o["type"] == "get" and not o.get("serializable") and o.get("t1")
                and o["client"] == -1 and o["key"] == "k/0"]
        first = next(o for o in h1 if o["key"] == "k/0" and o["type"] == "put" and o.get("t1"))
        self.assertTrue(gets)
        gets[-1]["resp_value"], gets[-1]["resp_mod"] = first["value"], first["rev"]
        self.assertTrue(any("not linearizable" in p for p in lin.check_all(h1, w)))

        # a lost write: the event of an acknowledged put missing from every watcher
        put = next(o for o in h if o["type"] == "put" and o.get("t1") and o["rev"] > 10)
        w2 = copy.deepcopy(w)
        for x in w2:
            x["responses"] = [[e for e in r if e["mod"] != put["rev"]] for r in x["responses"]]
            x["responses"] = [r for r in x["responses"] if r]
        self.assertTrue(any("lost write" in p for p in lin.check_all(h, w2)))

        # a duplicated watch event
        w3 = copy.deepcopy(w)
        w3[0]["responses"].insert(3, copy.deepcopy(w3[0]["responses"][2]))
        self.assertTrue(any("duplicated" in p for p in lin.check_all(h, w3)))
        shutil.rmtree(out, ignore_errors=True)  # kept when anything above failed


if __name__ == "__main__":
    unittest.main(verbosity=2)
