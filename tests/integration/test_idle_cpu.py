#!/usr/bin/python3
"""An idle cetcd uses no CPU, also right after a client wrote one request at a time (the
loop polls without sleeping for a short window after such writes, and must stop by
itself).

CPU is read from /proc/<pid>/stat (user + system clock ticks) over a quiet period."""

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

PUTS = 300
QUIET_SECONDS = 2.0
# what an idle server may use in QUIET_SECONDS: its 1 s backend-sync and lease timers cost
# far less than this; one spin window that never ended would cost all of it
MAX_IDLE_TICKS = 10


class IdleCpuTest(unittest.TestCase):
    def test_idle_after_lone_writes(self):
        srv = harness.Server(label="sut")
        srv.start()
        with srv:
            c = srv.etcd3_client(timeout=10)
            for i in range(PUTS):
                c.put("idle/k%03d" % i, "v")
            self.assertEqual(c.get("idle/k%03d" % (PUTS - 1))[0], b"v")
            time.sleep(0.2)  # the last window ends long before this
            before = harness.cpu_ticks(srv.pid)
            time.sleep(QUIET_SECONDS)
            used = harness.cpu_ticks(srv.pid) - before
        self.assertLessEqual(used, MAX_IDLE_TICKS, "idle server used %d ticks in %.0f s" % (used, QUIET_SECONDS))


if __name__ == "__main__":
    harness.run_tests()
