#!/usr/bin/env python3
"""Checks that unibuf's headers include only headers of their own layer or below.

The layers are the folders of include/unibuf/, bottom to top:

    core  <  policy  <  backend  <  buffer  <  transfer  <  async  <  ops

Beside them: the umbrella headers at the top (unibuf.hpp, vulkan.hpp, opengl.hpp, fwd.hpp) may
include any layer, and no layer includes them. Inside backend/, the backends host/, vulkan/ and gl/ do
not include each other. A folder <layer>/<backend>/ (e.g. transfer/gl/) is that layer's part for
one backend: it counts as its layer, and may include that backend only.

Prints the include graph's size (files, arrows) and every arrow that points up; exits 1 when there
is one, or when a header sits outside the layer folders. `--map FILE` assigns layers to files by
"path layer" lines instead of folders, to measure an older tree the same way.

Usage: tools/check_layers.py [--root include/unibuf] [--map FILE] [--list]
"""
import argparse
import os
import re
import sys

LAYERS = ["core", "policy", "backend", "buffer", "transfer", "async", "ops"]
BACKENDS = ["host", "vulkan", "gl"]
UMBRELLAS = {"unibuf.hpp", "vulkan.hpp", "opengl.hpp", "fwd.hpp"}
INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')


def headers(root):
    for d, _, files in os.walk(root):
        for f in files:
            if f.endswith((".hpp", ".h")):
                yield os.path.relpath(os.path.join(d, f), root).replace(os.sep, "/")


def includes(root, rel):
    """The unibuf headers `rel` includes, as paths relative to root."""
    out = []
    here = os.path.dirname(rel)
    with open(os.path.join(root, rel), encoding="utf-8") as fh:
        for line in fh:
            m = INCLUDE.match(line)
            if not m:
                continue
            kind, name = m.groups()
            if kind == "<":
                if not name.startswith("unibuf/"):
                    continue
                target = name[len("unibuf/"):]
            else:
                target = os.path.normpath(os.path.join(here, name)).replace(os.sep, "/")
            if os.path.exists(os.path.join(root, target)):
                out.append(target)
    return out


def folder_layer(rel):
    """(layer index, backend or None) from the folders; None for umbrellas/fwd; 'unplaced' otherwise."""
    parts = rel.split("/")
    if len(parts) == 1:
        return ("umbrella", None) if parts[0] in UMBRELLAS else ("unplaced", None)
    if parts[0] not in LAYERS:
        return ("unplaced", None)
    backend = parts[1] if len(parts) > 2 and parts[1] in BACKENDS else None
    return (LAYERS.index(parts[0]), backend)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--root", default=os.path.join(here, "..", "include", "unibuf"))
    ap.add_argument("--map", help="file of 'path layer' lines (layer name, or 'umbrella')")
    ap.add_argument("--list", action="store_true", help="print every arrow")
    args = ap.parse_args()
    root = os.path.normpath(args.root)

    files = sorted(headers(root))
    mapping = {}
    if args.map:
        with open(args.map, encoding="utf-8") as fh:
            for line in fh:
                line = line.split("#", 1)[0].split()
                if len(line) >= 2:
                    mapping[line[0]] = line[1]

    def layer_of(rel):
        if args.map:
            name = mapping.get(rel, "unplaced")
            if name in ("umbrella", "unplaced"):
                return (name, None)
            parts = rel.split("/")
            backend = next((p for p in parts[:-1] if p in BACKENDS), None)
            return (LAYERS.index(name), backend)
        return folder_layer(rel)

    arrows, up, bad = 0, [], []
    for rel in files:
        lay, backend = layer_of(rel)
        if lay == "unplaced":
            bad.append(f"{rel}: not in a layer folder ({', '.join(LAYERS)})")
        for t in includes(root, rel):
            arrows += 1
            if args.list:
                print(f"  {rel} -> {t}")
            if lay == "umbrella":
                continue
            tlay, tbackend = layer_of(t)
            if tlay == "umbrella":
                up.append(f"{rel} -> {t} (an umbrella header)")
            elif tlay == "unplaced" or lay == "unplaced":
                continue
            elif tlay > lay:
                up.append(f"{rel} -> {t} ({LAYERS[lay]} includes {LAYERS[tlay]}, a layer above)")
            elif tbackend is not None and tbackend != backend:
                up.append(f"{rel} -> {t} (a header of backend '{tbackend}' from outside it)")

    print(f"{len(files)} headers, {arrows} include arrows, {len(up)} pointing up, {len(bad)} outside the layers")
    for line in up + bad:
        print("  " + line)
    return 1 if (up or bad) else 0


if __name__ == "__main__":
    sys.exit(main())
