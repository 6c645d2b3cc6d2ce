#!/usr/bin/env bash
# Seeds fuzz/corpus/<target>/ from the workspace fixtures (idempotent). Each target's input
# starts with its option bytes (see the target's doc comment), then the fixture.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
fixtures="$here/../fixtures"
mkdir -p "$here/corpus/sse_parser" "$here/corpus/request_conversion" "$here/corpus/parser_stream"
n=0
for f in "$fixtures"/sse/*.sse "$fixtures"/sse/malformed/*.sse "$fixtures"/upstream/*.sse; do
  base="$(basename "$f" .sse)"
  # sse_parser: line limit byte, chunk size byte
  { printf '\x10\x07'; cat "$f"; } > "$here/corpus/sse_parser/$base"
  { printf '\xff\x3f'; cat "$f"; } > "$here/corpus/sse_parser/${base}_big"
  # parser_stream: chunk size byte
  { printf '\x0b'; cat "$f"; } > "$here/corpus/parser_stream/$base"
  n=$((n + 1))
done
for f in "$fixtures"/requests/*/*.json "$fixtures"/invalid/*.json; do
  base="$(basename "$(dirname "$f")")_$(basename "$f" .json)"
  cp "$f" "$here/corpus/request_conversion/$base"
  n=$((n + 1))
done
echo "seeded $n fixtures into $here/corpus"
