#!/usr/bin/env bash
# Times Tencent's Node package @wecom/crypto with fast-xml-parser on the callback work
# of benches/callback.rs (see BENCHMARKS.md). Installs benches/node/package.json into
# target/bench-node on first use, then runs benches/wecom_node_callback.js.
set -euo pipefail

cd "$(dirname "$0")/.."
dir=target/bench-node
if [ ! -d "$dir/node_modules/@wecom/crypto" ] || ! cmp -s benches/node/package.json "$dir/package.json"; then
    mkdir -p "$dir"
    cp benches/node/package.json "$dir/package.json"
    npm install --silent --no-audit --no-fund --prefix "$dir"
fi

NODE_PATH="$dir/node_modules" exec node benches/wecom_node_callback.js "$@"
