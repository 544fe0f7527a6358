#!/usr/bin/env bash
# GPU kit, part 1 (run HERE, on the CPU machine, from the repository root of the checkout the session was started in:
# the device tool sends that checkout, not a helper's worktree). Builds the ignored folder .gpu/ with what the GPU
# machine lacks beyond the git working tree (../shared/design/GPU.md says why each piece):
#   .gpu/node.xz       this Node binary, xz-compressed (the GPU machine has no Node)
#   .gpu/nm.tar.xz     the runtime node_modules: package.json's dependencies and optionalDependencies (`webgpu` with
#                      only dist/linux-x64), @tensorflow/tfjs and @tensorflow/tfjs-backend-webgpu for the TF.js peer
#                      (the latter fetched with `npm pack` into .gpu/cache when it is not installed; left out, and
#                      the peer reported absent, when that fails), pruned of source maps, bundles Node does not load,
#                      sources and type declarations
#   .gpu/debs/*.deb    Debian's Vulkan loader and GL dispatch packages (the NVIDIA ICD is there, the loader is not)
#   .gpu/app.tar.xz    dist/ and build/ (npm run build, run here first)
# then prints the exact `run` call (carry list and command) for bench/gpu/run.sh, the part that runs there.
# usage: bash bench/gpu/kit.sh [--no-build] [--no-tfjs]     (total kept under 60 MiB, else it fails saying so)
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
build=1 tfjs=1
for a in "$@"; do
  case "$a" in
    --no-build) build=0 ;;
    --no-tfjs) tfjs=0 ;;
    -h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "kit.sh: unknown flag $a" >&2; exit 2 ;;
  esac
done
LIMIT_MIB=60
say() { printf 'kit: %s\n' "$*"; }
mkdir -p .gpu/cache .gpu/debs
grep -qx '/.gpu/' .gitignore || { echo "kit.sh: .gitignore must list /.gpu/ (the kit must never be committed)" >&2; exit 1; }

# 1. dist/ and build/
if [ "$build" = 1 ]; then say "npm run build"; npm run build --silent >/dev/null; fi
[ -f dist/index.js ] && [ -f build/kernels-simd.wasm ] || { echo "kit.sh: no dist/ or build/: run npm run build" >&2; exit 1; }
tar cf - dist build | xz -T2 -6 > .gpu/app.tar.xz

# 2. node (kept when it is this same binary)
node_bin=$(readlink -f "$(command -v node)")
if [ "$(cat .gpu/node.version 2>/dev/null)" != "$(node --version) $(sha1sum < "$node_bin" | cut -c1-16)" ] || [ ! -s .gpu/node.xz ]; then
  say "compressing $node_bin ($(node --version))"
  xz -T2 -6 -c "$node_bin" > .gpu/node.xz
  echo "$(node --version) $(sha1sum < "$node_bin" | cut -c1-16)" > .gpu/node.version
fi

# 3. the Vulkan loader debs (amd64, whatever this machine is), with apt lists of their own (device/README.md's recipe)
if ! ls .gpu/debs/libvulkan1_*.deb >/dev/null 2>&1; then
  say "apt-get download of the Vulkan loader and GL dispatch packages"
  mkdir -p /tmp/llmts-apt-amd64/partial
  o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/llmts-apt-amd64'
  # shellcheck disable=SC2086
  apt-get $o update >/dev/null 2>&1 || say "apt-get update failed: trying the lists already there"
  # shellcheck disable=SC2086
  (cd .gpu/debs && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2 >/dev/null)
fi

# 4. node_modules, staged and pruned
stage=$(mktemp -d /tmp/llmts-kit-XXXXXX)
trap 'rm -rf "$stage"' EXIT
names=(.)
if [ "$tfjs" = 1 ]; then names+=(@tensorflow/tfjs); fi
node bench/gpu/runtime-deps.mjs . "${names[@]}" > "$stage/list"
tar cf - -T "$stage/list" | tar xf - -C "$stage"
if [ "$tfjs" = 1 ]; then
  ver=$(node -p "require('@tensorflow/tfjs/package.json').version")
  dest="$stage/node_modules/@tensorflow/tfjs-backend-webgpu"
  if [ -d node_modules/@tensorflow/tfjs-backend-webgpu ]; then
    cp -r node_modules/@tensorflow/tfjs-backend-webgpu "$dest"
  else
    tgz=.gpu/cache/tensorflow-tfjs-backend-webgpu-$ver.tgz
    [ -s "$tgz" ] || (cd .gpu/cache && timeout 120 npm pack --silent "@tensorflow/tfjs-backend-webgpu@$ver" >/dev/null 2>&1) || true
    if [ -s "$tgz" ]; then
      mkdir -p "$dest" && tar xzf "$tgz" -C "$dest" --strip-components=1
    else
      say "@tensorflow/tfjs-backend-webgpu@$ver: not installed and npm pack failed: the TF.js webgpu peer will be absent"
    fi
  fi
fi
nm="$stage/node_modules"
# webgpu: Dawn for linux-x64 only
find "$nm/webgpu/dist" -mindepth 1 -maxdepth 1 ! -name linux-x64 -exec rm -rf {} +
# better-sqlite3: the compiled addon and lib/ only (not the SQLite sources nor the build's object files)
if [ -d "$nm/better-sqlite3" ]; then
  rm -rf "$nm/better-sqlite3/deps" "$nm/better-sqlite3/src"
  find "$nm/better-sqlite3/build" -mindepth 1 \( -path '*/Release/better_sqlite3.node' -o -path '*/Release' \) -prune -o -exec rm -rf {} + 2>/dev/null || true
  find "$nm/better-sqlite3/build/Release" -mindepth 1 ! -name better_sqlite3.node -exec rm -rf {} + 2>/dev/null || true
fi
# TF.js: Node loads dist/*.node.js (package.json "main"); the browser bundles, ESM trees and tools are not loaded
for p in "$nm"/@tensorflow/*; do
  main=$(node -p "require('$p/package.json').main || ''")
  case "$main" in
    dist/*.node.js) find "$p/dist" -mindepth 1 ! -path "$p/$main" -exec rm -rf {} + 2>/dev/null || true ;;
  esac
  rm -rf "$p/src" "$p/scripts"
done
# nothing Node runs: source maps, TypeScript sources and declarations, type-only packages
find "$nm" \( -name '*.map' -o -name '*.ts' -o -name '*.md' -o -name '*.markdown' \) -type f -delete
rm -rf "$nm/@types" "$nm/@webgpu/types" "$nm"/*/node_modules/@types "$nm"/*/node_modules/@webgpu "$nm"/@*/*/node_modules/@types
(cd "$stage" && tar cf - node_modules) | xz -T2 -6 > .gpu/nm.tar.xz
say "node_modules staged: $(du -sh "$nm" | cut -f1) ($(wc -l < "$stage/list") packages$([ -d "$nm/@tensorflow/tfjs-backend-webgpu" ] && echo ', tfjs-backend-webgpu included'))"

# 5. sizes, and the call to make
total=$(du -cb .gpu/node.xz .gpu/nm.tar.xz .gpu/app.tar.xz .gpu/debs | tail -1 | cut -f1)
say "sizes:"
du -h .gpu/node.xz .gpu/nm.tar.xz .gpu/app.tar.xz .gpu/debs | sed 's/^/  /'
tree=$(git ls-files -co --exclude-standard -z | xargs -0 du -cb 2>/dev/null | awk '/\ttotal$/ {s += $1} END {print s + 0}')
say "total $((total / 1024 / 1024)) MiB of the ${LIMIT_MIB} MiB this kit allows; with the working tree ($((tree / 1024 / 1024)) MiB) $(((total + tree) / 1024 / 1024)) MiB of the 64 MiB a call sends"
[ "$total" -lt $((LIMIT_MIB * 1024 * 1024)) ] && [ $((total + tree)) -lt $((64 * 1024 * 1024)) ] ||
  { echo "kit.sh: the kit is over ${LIMIT_MIB} MiB, or with the tree over 64 MiB: try --no-tfjs" >&2; exit 1; }
cat <<MSG

Kit ready in .gpu/ (ignored; cache/ is not sent). On a session that has a GPU (status: can_start_another true), call
the device tool once with:

  run  carry: [".gpu/node.xz", ".gpu/nm.tar.xz", ".gpu/app.tar.xz", ".gpu/debs"]
       command: "bash bench/gpu/run.sh"
       timeout_s: 570

It writes \$OUT/train.jsonl (the bench's JSON lines), \$OUT/summary.txt, \$OUT/tensorcore-backend.txt (the f16
path's tensor cores: verdict, numerics, timing) and \$OUT/run.log, stops itself after
~8.5 minutes, and gpt2 is skipped when little time is left. Then call give_back. \`bash bench/gpu/run.sh --help\`
lists its flags (--quick: a rehearsal on SwiftShader, the micro case only).
MSG
