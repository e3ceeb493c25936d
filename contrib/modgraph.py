#!/usr/bin/env python3
"""modgraph.py - the module dependency graph of built objects, and its cycles.

Usage: contrib/modgraph.py [--dot] OBJ...   (e.g. spoold/*.o from a build)

A module is one object file (one .c).  A -> B when A uses a function or a
global that B defines (nm: undefined in A, defined in B).  Prints each
module's edges, then every strongly connected component of more than one
module (Tarjan), and exits 1 if there is one: a cycle means none of its
modules can be linked, or unit-tested, without the others.
"""
import os
import subprocess
import sys


def symbols(obj):
    """(defined, undefined) external symbols of one object file"""
    out = subprocess.run(["nm", "-P", obj], check=True, capture_output=True,
                         text=True).stdout
    defined, undefined = set(), set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 2:
            continue
        name, kind = parts[0], parts[1]
        if kind == "U":
            undefined.add(name)
        elif kind in "TDBRGSCV" or kind in "W":
            defined.add(name)
    return defined, undefined


def graph(objs):
    mods = {os.path.splitext(os.path.basename(o))[0]: o for o in objs}
    defs, uses = {}, {}
    for mod, obj in mods.items():
        d, u = symbols(obj)
        uses[mod] = u
        for name in d:
            defs[name] = mod
    edges = {m: sorted({defs[n] for n in uses[m] if n in defs and defs[n] != m})
             for m in mods}
    return edges


def tarjan(edges):
    index, low, stack, on, sccs = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
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
            sccs.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return [c for c in sccs if len(c) > 1]


def main(argv):
    dot = "--dot" in argv
    objs = [a for a in argv if a != "--dot"]
    if not objs:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    edges = graph(objs)
    if dot:
        print("digraph modules {")
        for m in sorted(edges):
            for t in edges[m]:
                print(f'  "{m}" -> "{t}";')
        print("}")
    else:
        for m in sorted(edges):
            print(f"{m} -> {' '.join(edges[m]) or '(nothing)'}")
    cycles = tarjan(edges)
    for c in cycles:
        print(f"cycle: {' '.join(c)}", file=sys.stderr)
    if not cycles:
        print(f"no cycle among {len(edges)} modules", file=sys.stderr)
    return 1 if cycles else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
