#!/usr/bin/env bash
# Installs onnxruntime for the ONNX export checks (test/export, test/browser/onnx.browser.test.ts) into the gitignored
# prefix .optional/onnx, NOT into node_modules: onnxruntime-node is ~300 MB installed (CPU binaries for every
# platform) and onnxruntime-web ~145 MB, so barbell does not depend on either; the tests load them from the prefix
# with createRequire. A plain `npm install` of barbell neither fetches nor prunes them.
#   - ONNXRUNTIME_NODE_INSTALL=skip and --ignore-scripts: onnxruntime-node's install script would download the CUDA
#     execution provider; the CPU provider ships inside the package.
# Then run the tests with BARBELL_REQUIRE_ONNX=1 so that a missing runtime fails instead of skipping.
set -euo pipefail

ORT_VERSION="1.31.1"
cd "$(dirname "$0")/.."
prefix=".optional/onnx"
mkdir -p "$prefix"
[ -f "$prefix/package.json" ] || echo '{ "private": true, "description": "optional onnxruntime for barbell tests (scripts/install-onnxruntime.sh)" }' >"$prefix/package.json"

version_of() {
  node -e 'try{console.log(require(process.argv[1]).version)}catch{console.log("")}' "./$prefix/node_modules/$1/package.json"
}
if [ "$(version_of onnxruntime-node)" != "$ORT_VERSION" ] || [ "$(version_of onnxruntime-web)" != "$ORT_VERSION" ]; then
  ONNXRUNTIME_NODE_INSTALL=skip npm install --prefix "$prefix" --no-audit --no-fund --ignore-scripts --silent \
    "onnxruntime-node@${ORT_VERSION}" "onnxruntime-web@${ORT_VERSION}"
fi
node -e 'const o=require(process.argv[1]); console.log("install-onnxruntime: onnxruntime-node " + o.env.versions.node + " (CPU), onnxruntime-web " + require(process.argv[2]).version + " in .optional/onnx")' \
  "./$prefix/node_modules/onnxruntime-node" "./$prefix/node_modules/onnxruntime-web/package.json"
