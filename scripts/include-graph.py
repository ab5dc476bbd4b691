#!/usr/bin/env python3
"""Prints the folder-level #include graph of src/ and fails if the folders form a cycle.

A file in src/<a>/ (or a subfolder of it) that includes "<b>/..." makes the edge a -> b.
Folders are layers: every arrow must run one way (issue 11, "folders are layers, arrows
run one way"), so the graph must have no cycle. Cycles among the files of one folder are
not looked at.

Usage: scripts/include-graph.py [--src DIR] [--quiet]
Exit status: 0 without a cycle, 1 with one (each cycle's folders and the includes that
make its edges are printed), 2 on a usage error."""
import argparse
import os
import re
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"/]+)/[^"]+"', re.M)

def folder_graph(src):
    """Returns {(a, b): [(file, included path), ...]} for every include across folders."""
    folders = {d for d in os.listdir(src) if os.path.isdir(os.path.join(src, d))}
    edges = {}
    for root, _, files in os.walk(src):
        rel = os.path.relpath(root, src)
        a = rel.split(os.sep)[0]
        if a not in folders:
            continue
        for f in sorted(files):
            if not f.endswith((".c", ".h")):
                continue
            path = os.path.join(root, f)
            with open(path, encoding="utf-8", errors="replace") as fh:
                text = fh.read()
            for m in INCLUDE.finditer(text):
                b = m.group(1)
                if b in folders and b != a:
                    line = m.group(0).strip()
                    edges.setdefault((a, b), []).append((os.path.relpath(path, src), line))
    return folders, edges


def cycles(folders, edges):
    """Strongly connected components with more than one folder (Tarjan's algorithm)."""
    succ = {f: sorted(b for (a, b) in edges if a == f) for f in folders}
    index, low, on, stack, out = {}, {}, set(), [], []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in succ[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(folders):
        if v not in index:
            visit(v)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))
    ap.add_argument("--quiet", action="store_true", help="print only cycles")
    args = ap.parse_args()
    folders, edges = folder_graph(args.src)
    if not args.quiet:
        for (a, b) in sorted(edges):
            print(f"{a} -> {b}  ({len(edges[(a, b)])} includes)")
    found = cycles(folders, edges)
    for comp in found:
        print("cycle among folders: " + " <-> ".join(comp))
        for (a, b) in sorted(edges):
            if a in comp and b in comp:
                for path, line in edges[(a, b)]:
                    print(f"  {a} -> {b}: {path}: {line}")
    if found:
        return 1
    if not args.quiet:
        print("no cycle among folders")
    return 0


if __name__ == "__main__":
    sys.exit(main())
