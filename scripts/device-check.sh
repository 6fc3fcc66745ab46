#!/usr/bin/env bash
# Runs the report and the GPU test binaries on a machine with a real GPU but no Rust toolchain
# (for example a lent device machine). Prepare on the build machine first:
#
#   cargo build --release --example report && cargo test --release --no-run
#   mkdir -p .dev/bin && cp target/release/examples/report .dev/bin/
#   for t in conv errors layout tying sort growl; do
#     cp "$(ls -t target/release/deps/$t-* | grep -v '\.d$' | head -1)" .dev/bin/$t; done
#   strip .dev/bin/*
#
# and, when the target lacks the Vulkan loader, put Debian's libvulkan1 (and libegl1 ...) .deb
# files in .gl/ (see the device tool's README). Then run this script from the repository root;
# results go to $OUT (or ./device-out).
set -u
OUT="${OUT:-device-out}"
mkdir -p "$OUT"
if ! ldconfig -p | grep -q libvulkan && ls .gl/*.deb >/dev/null 2>&1; then
  for f in .gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
if [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
fi
export WGPU_BACKEND="${WGPU_BACKEND:-vulkan}"
cd .dev/bin
timeout 300 ./report --json > "../../$OUT/report.jsonl" 2> "../../$OUT/report.err"
echo "report rc=$?"; cut -c1-300 "../../$OUT/report.jsonl"
for t in conv errors layout tying sort growl; do
  [ -x "./$t" ] || continue
  timeout 200 "./$t" > "../../$OUT/test_$t.log" 2>&1
  echo "test $t rc=$?"; grep -E "test result|tests run" "../../$OUT/test_$t.log"
done
