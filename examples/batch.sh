#!/usr/bin/env bash
# Segment every asset in a folder, one `bipart segment` per file, and report failures.
# Usage: examples/batch.sh [FOLDER] [PARTS] [OUT_DIR] [BIPART OPTIONS...]
#   examples/batch.sh examples/chairs "back,seat,leg,arm" out/
#   examples/batch.sh scans/ "back,seat,leg,arm" out/ --support examples/chairs --up z
# Options after OUT_DIR go to every `bipart segment` unchanged. $BIPART overrides the
# command (e.g. BIPART="python -m bipart_cli").
# Exit codes of bipart: 0 ok, 1 error (bad input...), 2 usage (bad --parts...).
set -u
folder="${1:-examples/chairs}"
parts="${2:-back,seat,leg,arm}"
out_dir="${3:-out}"
shift $(($# < 3 ? $# : 3))
read -r -a bipart <<<"${BIPART:-bipart}"
mkdir -p "$out_dir"

ok=0
failed=0
shopt -s nullglob
for asset in "$folder"/*.glb "$folder"/*.obj "$folder"/*.ply; do
    # --json puts one machine-readable result on stdout; logs go to stderr.
    if result=$("${bipart[@]}" segment "$asset" --parts "$parts" --out-dir "$out_dir" --json -q "$@"); then
        ok=$((ok + 1))
        echo "ok    $asset -> $out_dir"
        printf '%s\n' "$result" >>"$out_dir/results.jsonl"
    else
        code=$?
        failed=$((failed + 1))
        echo "FAIL  $asset (exit $code)" >&2
        if [ "$code" -eq 2 ]; then
            echo "usage error: fix the command line, stopping" >&2
            exit 2
        fi
    fi
done
echo "$ok ok, $failed failed"
[ "$failed" -eq 0 ]
