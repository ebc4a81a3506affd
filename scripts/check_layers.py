#!/usr/bin/env python3
"""Checks that Basalt's folders only include headers of the layers below.

    common/ (with common/io/)                       layer 0
    common/cluster/  map, protocols, mon session    layer 1
    mon/   osd/   client/ (with client/backup/)      layer 2
    client/cli/  client/nbd/  fuse/  docker/        layer 3
    tests/  bench/                                  on top: not checked

A file may include a header of its own folder or of a lower layer, never
one of a higher layer or of another folder of the same layer (mon/ and
osd/ do not know each other; basalt-nbd does not reach into the CLI).
Usage: check_layers.py [SOURCE_ROOT]   (exit 1 and one line per offence)
"""
import os
import re
import sys

# Folder -> (layer, unit). Folders of one unit are one module split in
# subfolders (common/io is common's own I/O backends).
LAYERS = {
    "common": (0, "common"),
    "common/io": (0, "common"),
    "common/cluster": (1, "common/cluster"),
    "mon": (2, "mon"),
    "osd": (2, "osd"),
    "client": (2, "client"),
    "client/backup": (2, "client"),
    "client/cli": (3, "client/cli"),
    "client/nbd": (3, "client/nbd"),
    "fuse": (3, "fuse"),
    "docker": (3, "docker"),
}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def resolve(root, folder, name):
    """The header's folder relative to ROOT, as the compiler finds it:
    beside the including file first, then from the source root."""
    for base in (os.path.join(root, folder), root):
        path = os.path.normpath(os.path.join(base, name))
        # A generated header (common/version.h) counts where its
        # template (common/version.h.in) is.
        if os.path.exists(path) or os.path.exists(path + ".in"):
            return os.path.relpath(os.path.dirname(path), root)
    return None


def check(root):
    offences = []
    for folder, (layer, unit) in sorted(LAYERS.items()):
        directory = os.path.join(root, folder)
        if not os.path.isdir(directory):
            offences.append(f"{folder}/: the layer table names a folder that does not exist")
            continue
        for entry in sorted(os.listdir(directory)):
            if not entry.endswith((".c", ".h")):
                continue
            with open(os.path.join(directory, entry), encoding="utf-8") as f:
                for number, line in enumerate(f, 1):
                    m = INCLUDE.match(line)
                    if not m:
                        continue
                    where = f"{folder}/{entry}:{number}"
                    target = resolve(root, folder, m.group(1))
                    if target is None:
                        offences.append(f'{where}: "{m.group(1)}" is not in the source tree')
                        continue
                    if target not in LAYERS:
                        offences.append(f"{where}: includes {m.group(1)} from {target}/, "
                                        "which is not a layer (tests and bench sit on top)")
                        continue
                    their_layer, their_unit = LAYERS[target]
                    if their_unit == unit or their_layer < layer:
                        continue
                    how = "above it" if their_layer > layer else "beside it"
                    offences.append(f"{where}: includes {m.group(1)}, a header of {target}/ "
                                    f"(layer {their_layer}), {how} {folder}/ (layer {layer})")
    return offences


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..")
    offences = check(os.path.abspath(root))
    for o in offences:
        print(o)
    if offences:
        print(f"check_layers: {len(offences)} include(s) break the layering "
              "(see the table at the top of scripts/check_layers.py)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
