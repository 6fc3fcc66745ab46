#!/usr/bin/env bash
# Checks the `rust-version` claim of Cargo.toml against the dependency tree as Cargo.lock
# resolves it: the crate's normal and build dependencies, on native and wasm32, must not need
# a newer Rust than the crate says. (The machines have one toolchain, so CI checks the claim
# this way rather than by building with the older compiler.)
set -euo pipefail
cd "$(dirname "$0")/.."
for target in x86_64-unknown-linux-gnu wasm32-unknown-unknown; do
    cargo metadata --format-version 1 --locked --filter-platform "$target" | python3 -c '
import json, sys
meta = json.load(sys.stdin)
packages = {p["id"]: p for p in meta["packages"]}
nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
root = next(p for p in meta["packages"] if p["name"] == "tied")
version = lambda v: tuple(int(x) for x in (v or "0").split("."))
claim = version(root["rust_version"])
seen, stack = set(), [root["id"]]
while stack:
    pid = stack.pop()
    if pid in seen:
        continue
    seen.add(pid)
    for dep in nodes[pid]["deps"]:
        if any(k["kind"] in (None, "build") for k in dep["dep_kinds"]):
            stack.append(dep["pkg"])
need = max(seen, key=lambda i: version(packages[i].get("rust_version")))
p = packages[need]
ours, theirs = root["rust_version"], p.get("rust_version")
name = p["name"] + " " + p["version"]
print(f"{sys.argv[1]}: rust-version {ours}; the tree needs {theirs} ({name})")
if version(theirs) > claim:
    sys.exit(f"rust-version {ours} is older than {name} needs ({theirs})")
' "$target"
done
