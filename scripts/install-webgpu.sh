#!/usr/bin/env bash
# Installs what the WebGPU tests need on a Debian 12 (bookworm) CI machine without a GPU:
#   - the `webgpu` npm package (Dawn for Node), pinned, NOT in package.json: it is ~130 MB installed
#     (prebuilt dawn.node for five platforms), so a plain `npm install` of barbell never fetches it;
#   - Debian's `chromium`, for the SwiftShader Vulkan ICD it ships (/usr/lib/chromium/vk_swiftshader_icd.json)
#     and for the headless-Chromium WebGPU run; libvulkan1, the Vulkan loader Dawn opens.
# Run it after `npm ci` (npm ci removes packages that are not in the lockfile).
# Then run the tests with BARBELL_REQUIRE_WEBGPU=1 so that a missing adapter fails instead of skipping.
set -euo pipefail

WEBGPU_VERSION="0.6.2"
cd "$(dirname "$0")/.."

if [ "${BARBELL_SKIP_APT:-0}" != "1" ] && command -v apt-get >/dev/null 2>&1; then
  if [ ! -f /usr/lib/chromium/vk_swiftshader_icd.json ] || ! ldconfig -p | grep -q 'libvulkan\.so\.1'; then
    SUDO=""
    if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends chromium libvulkan1
  fi
fi

installed="$(node -e 'try{console.log(require("./node_modules/webgpu/package.json").version)}catch{console.log("")}')"
if [ "$installed" != "$WEBGPU_VERSION" ]; then
  npm install --no-save --ignore-scripts "webgpu@${WEBGPU_VERSION}"
fi

test -f /usr/lib/chromium/vk_swiftshader_icd.json || { echo "install-webgpu: no SwiftShader ICD at /usr/lib/chromium" >&2; exit 1; }
echo "install-webgpu: webgpu@${WEBGPU_VERSION}, ICD /usr/lib/chromium/vk_swiftshader_icd.json"
