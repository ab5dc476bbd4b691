#!/usr/bin/python3
"""Folders under src/ are layers (issue 11): the folder-level #include graph has no cycle.

Runs scripts/include-graph.py on src/ (it must pass), and on small trees written here, to
show that it finds a cycle, names the includes that make it, and ignores includes inside a
folder."""
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SCRIPT = os.path.join(ROOT, "scripts", "include-graph.py")


def run(src):
    p = subprocess.run([sys.executable, SCRIPT, "--src", src], capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout + p.stderr


def tree(test, files):
    """Writes {path: text} under a new temporary directory (removed after test) and
    returns it."""
    d = tempfile.mkdtemp(prefix="include-graph-")
    test.addCleanup(shutil.rmtree, d, True)
    for path, text in files.items():
        full = os.path.join(d, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w") as f:
            f.write(text)
    return d


class IncludeGraph(unittest.TestCase):
    def test_src_has_no_cycle(self):
        rc, out = run(os.path.join(ROOT, "src"))
        self.assertEqual(rc, 0, out)
        self.assertIn("no cycle among folders", out)
        # api/ sits above server/ (etcd's v3rpc above etcdserver) and main/ above both:
        # the server reaches the handlers only through server_layer_t.
        self.assertIn("api -> server", out)
        self.assertIn("main -> api", out)
        self.assertIn("main -> server", out)
        for below in ("server", "base", "grpc", "mvcc", "watch", "lease", "auth", "raft", "wal", "snapshot"):
            self.assertNotIn(f"{below} -> api ", out)
            self.assertNotIn(f"{below} -> main ", out)

    def test_architecture_table_matches_the_includes(self):
        """docs/ARCHITECTURE.md's layer table lists, per folder, exactly the folders it
        includes (besides base/)."""
        with open(os.path.join(ROOT, "docs", "ARCHITECTURE.md")) as f:
            doc = f.read()
        start = doc.index("folder     owns")
        block = doc[start:doc.index("```", start)].splitlines()[1:]
        documented, folder = {}, None
        for line in block:
            name, rest = line[:11].strip(), line[58:].strip() if len(line) > 58 else ""
            if name:
                folder = name.rstrip("/")
                documented[folder] = set()
            rest = rest.split("(")[0]
            documented[folder] |= {w.strip() for w in rest.split(",") if w.strip() not in ("", "-")}
        rc, out = run(os.path.join(ROOT, "src"))
        actual = {}
        for line in out.splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[1] == "->" and parts[2] != "base":
                actual.setdefault(parts[0], set()).add(parts[2])
        for folder in sorted(set(actual) | set(documented)):
            self.assertEqual(documented.get(folder, set()), actual.get(folder, set()),
                             f"docs/ARCHITECTURE.md's layer table, row {folder}/")

    def test_no_base_name_repeats_across_folders(self):
        """A file's base name says its layer: no two files under src/ share one (issue 11,
        e.g. api/kv_rpc.c serves KV and client/kv.c calls it)."""
        seen = {}
        for root, _, files in os.walk(os.path.join(ROOT, "src")):
            for f in files:
                if f.endswith((".c", ".h")):
                    seen.setdefault(f, []).append(os.path.relpath(os.path.join(root, f), ROOT))
        repeated = {f: paths for f, paths in seen.items() if len(paths) > 1}
        self.assertEqual(repeated, {})

    def test_cycle_is_found_and_explained(self):
        d = tree(self, {
            "lease/l.c": '#include "server/s.h"\n#include "base/b.h"\n',
            "server/x.c": '#include "lease/lease.h"\n',
            "lease/lease.h": "",
            "base/b.h": "",
        })
        rc, out = run(d)
        self.assertEqual(rc, 1, out)
        self.assertIn("cycle among folders: lease <-> server", out)
        self.assertIn('lease -> server: lease/l.c: #include "server/s.h"', out)
        self.assertIn('server -> lease: server/x.c: #include "lease/lease.h"', out)
        self.assertNotIn("base <->", out)

    def test_subfolders_and_same_folder_includes(self):
        d = tree(self, {
            "client/transport/t.c": '#include "client/c.h"\n#include "grpc/g.h"\n',
            "client/c.h": '  #  include "client/transport/t.h"\n',
            "grpc/g.h": "",
        })
        rc, out = run(d)
        self.assertEqual(rc, 0, out)
        self.assertIn("client -> grpc", out)
        self.assertNotIn("client -> client", out)

    def test_two_folder_cycle_fails(self):
        d = tree(self, {"api/a.c": '#include "server/s.h"\n', "server/s.h": "",
                        "server/x.c": '#include "api/api.h"\n', "api/api.h": ""})
        rc, out = run(d)
        self.assertEqual(rc, 1, out)
        self.assertIn("cycle among folders: api <-> server", out)


if __name__ == "__main__":
    unittest.main(verbosity=2)
