#!/usr/bin/env bash
# Times wechatpy on the callback work of benches/callback.rs (see BENCHMARKS.md).
# Creates the venv target/bench-venv on first use, then runs benches/wechatpy_callback.py
# with any arguments given. Run `cargo bench --bench callback` first for identical inputs.
set -euo pipefail

cd "$(dirname "$0")/.."
venv=target/bench-venv

if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import wechatpy, cryptography' 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet wechatpy==1.8.18 cryptography==50.0.2 xmltodict==1.0.4
fi

exec "$venv/bin/python" benches/wechatpy_callback.py "$@"
