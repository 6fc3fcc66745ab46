#!/usr/bin/env bash
# The kernel tests in a real browser: tests/web.rs, built for wasm32-unknown-unknown and run by
# wasm-bindgen-test-runner in headless Chromium with WebGPU (SwiftShader on a machine without
# a GPU). Installs what it needs: Debian's chromium and chromium-driver, the wasm32 target, and
# wasm-bindgen-cli at the version Cargo.lock resolves. Fails when a test fails or none ran.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
fi
rustup target add wasm32-unknown-unknown >/dev/null
bindgen=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/"/, "", $3); print $3 }' Cargo.lock)
if ! wasm-bindgen-test-runner --version 2>/dev/null | grep -q " $bindgen"; then
    # Not --locked: the CLI's own lockfile pins crates the registry may no longer serve.
    cargo install wasm-bindgen-cli --version "$bindgen"
fi

export CHROMEDRIVER=/usr/bin/chromedriver
export WASM_BINDGEN_TEST_WEBDRIVER_JSON="$PWD/scripts/webdriver.json"
# SwiftShader compiles pipelines slowly: minutes per test file, not the default 20 s.
export WASM_BINDGEN_TEST_TIMEOUT="${WASM_BINDGEN_TEST_TIMEOUT:-1200}"
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner

log=$(mktemp)
cargo test --release --target wasm32-unknown-unknown --test web -- --nocapture 2>&1 | tee "$log"
# The runner prints the usual summary; refuse a run in which nothing ran.
if ! grep -Eq "test result: ok\. [1-9][0-9]* passed" "$log"; then
    echo "browser-test: no browser test ran" >&2
    exit 1
fi
