#!/usr/bin/python3
"""The server core compiles its own copy of libcetcd's gRPC client transport
(src/client/transport/, GRPC_CLIENT_PEER_COPY): every function the transport's files
define with external linkage must be renamed for that copy (#define name peer_gc_...
in grpc_client.h or transport_int.h), or the server core and libcetcd define the same
symbol and a binary linking both gets one of them at random or fails to link.
(grpc_client_tls.c is shared as it is: it has no state and the same code in both.)"""
import glob
import os
import re
import unittest

DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "src", "client", "transport"))
# A function definition at the start of a line that is not static: "type name(...) {".
DEF = re.compile(r"^(?!static\b|typedef\b)[A-Za-z_][\w \*]*?\b(\w+)\(([^;{}]*)\)\s*\{", re.M)
RENAME = re.compile(r"^#define (\w+) (peer_gc_\w+)$", re.M)


def renames():
    out = {}
    for h in ("grpc_client.h", "transport_int.h"):
        with open(os.path.join(DIR, h)) as f:
            out.update(dict(RENAME.findall(f.read())))
    return out


def external_functions():
    names = {}
    for path in sorted(glob.glob(os.path.join(DIR, "*.c"))):
        if os.path.basename(path) == "grpc_client_tls.c":
            continue
        with open(path) as f:
            for m in DEF.finditer(f.read()):
                names[m.group(1)] = os.path.basename(path)
    return names


class PeerCopyNames(unittest.TestCase):
    def test_every_external_function_is_renamed(self):
        funcs = external_functions()
        self.assertIn("grpc_client_new", funcs)  # the scan sees definitions
        self.assertIn("gc_stream_finish", funcs)
        ren = renames()
        missing = sorted(f"{n} ({where})" for n, where in funcs.items() if n not in ren)
        self.assertEqual(missing, [], "add #define <name> peer_gc_<...> under GRPC_CLIENT_PEER_COPY")
        unused = sorted(n for n in ren if n not in funcs)
        self.assertEqual(unused, [], "renames of functions the transport no longer defines")
        self.assertEqual(len(set(ren.values())), len(ren), "two names renamed to one")


if __name__ == "__main__":
    unittest.main(verbosity=2)
