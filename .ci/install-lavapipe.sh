#!/usr/bin/env bash
# Installs Mesa's lavapipe (software Vulkan) from Debian bookworm-backports so that Dawn
# (the `webgpu` package) finds a WebGPU adapter on machines without a GPU. Idempotent.
set -euo pipefail

if dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null | grep -q '^2[5-9]\.'; then
  echo "[lavapipe] mesa-vulkan-drivers $(dpkg-query -W -f='${Version}' mesa-vulkan-drivers) already installed"
  exit 0
fi

src=/etc/apt/sources.list.d/foxgate-backports.sources
if [ ! -f "$src" ]; then
  # Reuse the URI and keyring of the machine's existing Debian source.
  uri=$(grep -h -E '^URIs:.*debian/?$' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1 | awk '{print $2}' || true)
  key=$(grep -h -B5 -A5 -E '^URIs:.*debian/?$' /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -m1 '^Signed-By:' | awk '{print $2}' || true)
  : "${uri:=http://deb.debian.org/debian}"
  : "${key:=/usr/share/keyrings/debian-archive-keyring.gpg}"
  echo "[lavapipe] adding bookworm-backports ($uri)"
  printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: %s\n' "$uri" "$key" > "$src"
fi
export DEBIAN_FRONTEND=noninteractive
echo "[lavapipe] apt-get update"
apt-get update -qq
echo "[lavapipe] installing mesa-vulkan-drivers libvulkan1 from bookworm-backports"
apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers libvulkan1 >/dev/null
echo "[lavapipe] installed mesa-vulkan-drivers $(dpkg-query -W -f='${Version}' mesa-vulkan-drivers)"
