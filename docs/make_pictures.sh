#!/usr/bin/env bash
# Makes every picture in docs/ again, with the README's commands, so that none can drift from
# what they produce. Run it from anywhere with bipart installed (offline, CPU: a few minutes):
#
#   docs/make_pictures.sh
#
#   docs/chair.parts.png           the README's quick-start command
#   docs/kenney/NAME.parts.png     twelve CC0 Kenney furniture assets (KENNEY_DIR, by default
#                                  ../shared/data/kenney_furniture beside the repository),
#                                  few-shot from `bipart examples` support of their category
#   docs/teapot.parts.png,         a procedural teapot and truck from `bipart examples --seed 1`,
#   docs/truck.parts.png           few-shot from the default `bipart examples` support
#
# Outputs go to a temporary folder (--out-dir; the labels are the same without it); only the
# PNGs are copied into docs/.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
kenney=${KENNEY_DIR:-$repo/../shared/data/kenney_furniture}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$repo"

# The README's picture: its quick-start command.
bipart segment examples/chair.glb --parts "back,seat,leg,arm" --support examples/chairs \
    --labeler none --out-dir "$work/out" --preview
cp "$work/out/chair.parts.png" docs/chair.parts.png

# Real furniture, support from `bipart examples` (README, "Pictures").
bipart examples "$work/kex" --categories chair,sofa,bookshelf,bed,lamp,cabinet,appliance
segment_kenney() {  # NAME CATEGORY PARTS
    bipart segment "$kenney/$1.glb" --parts "$3" --support "$work/kex/$2" --labeler none \
        --points 20000 --preview --device cpu --out-dir "$work/kenney"
    cp "$work/kenney/$1.parts.png" "docs/kenney/$1.parts.png"
}
mkdir -p docs/kenney
segment_kenney chairCushion chair "back,seat,leg,arm"
segment_kenney chairDesk chair "back,seat,leg,arm"
segment_kenney loungeSofa sofa "seat,back,arm,leg"
segment_kenney bookcaseOpen bookshelf "side,shelf,back"
segment_kenney bedDouble bed "frame,mattress,headboard,leg,pillow"
segment_kenney lampRoundFloor lamp "base,pole,shade"
# beside the six of issue #30: a column lamp, an L-shaped sofa and a low open bookcase
segment_kenney lampSquareFloor lamp "base,pole,shade"
segment_kenney loungeSofaLong sofa "seat,back,arm,leg"
segment_kenney bookcaseOpenLow bookshelf "side,shelf,back"
# pieces named for their part (Kenney's meshes door.008, drawer.004, doorFridge, washerDoor)
segment_kenney kitchenCabinetDrawer cabinet "body,door,drawer"
segment_kenney kitchenFridge appliance "body,door"
segment_kenney washer appliance "body,door"

# Procedural shapes the support never holds: `--seed 1` draws other shapes than the default 0.
bipart examples "$work/support" --categories teapot,truck
bipart examples "$work/targets" --categories teapot,truck --per-category 1 --seed 1
segment_procedural() {  # CATEGORY PARTS
    cp "$work/targets/$1/$1_0000.glb" "$work/$1.glb"  # the preview's title names the file
    bipart segment "$work/$1.glb" --parts "$2" --support "$work/support/$1" --labeler none \
        --preview --device cpu --out-dir "$work/procedural"
    cp "$work/procedural/$1.parts.png" "docs/$1.parts.png"
}
segment_procedural teapot "body,spout,handle,lid"
segment_procedural truck "cabin,tank,chassis,wheel"
