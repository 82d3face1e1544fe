#!/usr/bin/env bash
# Writes test/fixtures/zstd/: a small model folder as a tar, compressed by the zstd CLI (Debian's zstd)
# as one frame (model.tar.zst) and as three frames with a skippable frame between
# (model.multi.tar.zst), and expected.json with each file's size and sha256. The browser tests read
# them (they cannot run zstd); the unit tests compress with the CLI at run time.
set -euo pipefail
out="$(cd "$(dirname "$0")/.." && pwd)/test/fixtures/zstd"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/model/tokenizer" "$out"
printf '{"architectures": ["Tiny"], "hidden_size": 8}\n' >"$work/model/config.json"
seq 1 30000 >"$work/model/weights.bin"
seq 1 3 999 | tr '\n' ' ' >"$work/model/tokenizer/vocab.txt"
: >"$work/model/empty"
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=pax \
  --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
  -C "$work" -cf "$work/model.tar" model
zstd -q -19 -c "$work/model.tar" >"$out/model.tar.zst"
size=$(stat -c %s "$work/model.tar")
head -c 70000 "$work/model.tar" | zstd -q -c >"$work/1.zst"
tail -c +70001 "$work/model.tar" | head -c 70000 | zstd -q -c >"$work/2.zst"
tail -c +140001 "$work/model.tar" | zstd -q -3 -c >"$work/3.zst"
printf '\x50\x2a\x4d\x18\x04\x00\x00\x00skip' >"$work/skip"
cat "$work/1.zst" "$work/skip" "$work/2.zst" "$work/3.zst" >"$out/model.multi.tar.zst"
zstd -q -d -c "$out/model.multi.tar.zst" | cmp - "$work/model.tar"
{
  printf '{\n  "tarSize": %s,\n  "files": {\n' "$size"
  first=1
  for f in config.json empty tokenizer/vocab.txt weights.bin; do
    [ $first = 1 ] || printf ',\n'
    first=0
    printf '    "model/%s": { "size": %s, "sha256": "%s" }' "$f" "$(stat -c %s "$work/model/$f")" \
      "$(sha256sum "$work/model/$f" | cut -d' ' -f1)"
  done
  printf '\n  }\n}\n'
} | python3 -m json.tool --indent 2 >"$out/expected.json"
