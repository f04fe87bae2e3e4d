#!/usr/bin/env python3
"""Reads ordo-one/benchmark's markdown output on stdin and prints, for every
benchmark named "GROUP: VARIANT", its time beside the group's baseline from the
same run (the variant named raw pointer, memcpy or mmap+munmap), as a ratio."""
import re
import sys

BASELINES = ("raw pointer", "memcpy", "mmap+munmap", "none", "private pthread mutex")
rows = {}
name = None
for line in sys.stdin:
    heading = re.match(r"^### (.+)$", line.strip())
    if heading:
        name = heading.group(1)
        continue
    if name and line.startswith("| Time (wall clock)") or name and line.startswith("| Malloc (total)"):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        unit = re.search(r"\((\w+)\)\s*\*?$", cells[0].replace(" *", ""))
        key = "time" if cells[0].startswith("| Time") or cells[0].startswith("Time") else "malloc"
        rows.setdefault(name, {})[key] = [int(c) for c in cells[1:8]]
        if key == "time":
            rows[name]["unit"] = re.search(r"\(([^)]+)\) \*?$", cells[0]).group(1) if "(" in cells[0] else ""

groups = {}
for full, data in rows.items():
    group, _, variant = full.partition(": ")
    groups.setdefault(group, {})[variant] = data

print("| benchmark | variant | p50 | min | max | mallocs | p50 ÷ baseline | min ÷ baseline |")
print("|:--|:--|--:|--:|--:|--:|--:|--:|")
for group, variants in groups.items():
    baseline = next((variants[b] for b in BASELINES if b in variants), None)
    for variant, data in variants.items():
        if "time" not in data:
            continue
        p0, p50, p100 = data["time"][0], data["time"][2], data["time"][6]
        mallocs = data.get("malloc", [0] * 7)[6]
        unit = data.get("unit", "")
        if baseline and data is not baseline:
            ratio50 = f"{p50 / baseline['time'][2]:.2f}×"
            ratio0 = f"{p0 / baseline['time'][0]:.2f}×"
        else:
            ratio50 = ratio0 = "baseline"
        print(f"| {group} | {variant} | {p50} {unit} | {p0} | {p100} | {mallocs} | {ratio50} | {ratio0} |")
