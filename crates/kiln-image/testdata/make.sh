#!/usr/bin/env bash
# Rebuilds the test files in this directory: valid images written by encoders
# other than the Rust ones Kiln links, so that the damage checks are tested
# against what real clients upload. The source is a generated gradient
# (no third-party pixels). Needs Debian's libvips-tools (libjpeg-turbo,
# libpng), webp (libwebp) and libavif-bin (avifenc) packages:
#   apt-get install -y libvips-tools webp libavif-bin
# Usage: crates/kiln-image/testdata/make.sh   (writes next to itself)
set -euo pipefail
out=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

vips xyz xyz.v 67 45
vips linear xyz.v lin.v "3.8 5.6" "0 0"
vips bandjoin_const lin.v rgbf.v 128
vips cast rgbf.v rgb.v uchar
vips copy rgb.v src.png --interpretation srgb
vips flip src.png flipped.png horizontal
vips bandjoin_const rgb.v rgba.v 200
vips copy rgba.v alpha.png --interpretation srgb

# libjpeg-turbo's progressive script: ten scans, spectral selection and
# successive approximation, Huffman tables between scans.
vips jpegsave src.png "$out/libjpeg-progressive.jpg" --Q 85 --interlace --strip
# Baseline with a restart marker every two MCUs.
vips jpegsave src.png "$out/libjpeg-restart.jpg" --Q 85 --restart-interval 2 --strip
# Grayscale, and Adobe CMYK (APP14; zune-jpeg converts it to RGB).
vips colourspace src.png gray.v b-w
vips jpegsave gray.v "$out/libjpeg-gray.jpg" --Q 85 --strip
vips icc_export src.png cmyk.v --output-profile cmyk
vips jpegsave cmyk.v "$out/libjpeg-cmyk.jpg" --Q 85 --strip
# Adam7-interlaced PNG.
vips pngsave src.png "$out/interlaced.png" --interlace --strip
# Lossy WebP (VP8), lossy with alpha (VP8X + ALPH + VP8), animated (ANIM + ANMF).
cwebp -quiet -q 75 -metadata none src.png -o "$out/lossy.webp"
cwebp -quiet -q 75 -alpha_q 80 -metadata none alpha.png -o "$out/lossy-alpha.webp"
img2webp -lossy -q 75 -d 100 src.png flipped.png -o "$out/animated.webp" >/dev/null

# Colour profiles (Debian's colord-data has the RGB ones; "cmyk" is
# libvips's own, the profile Kiln falls back to). The gradient converted
# into each space, with the profile embedded: decoding must bring back the
# gradient's sRGB values.
icc=/usr/share/color/icc/colord
vips icc_transform src.png adobe.v "$icc/AdobeRGB1998.icc"
vips jpegsave adobe.v "$out/adobe-rgb.jpg" --Q 95
vips icc_transform src.png prophoto.v "$icc/ProPhotoRGB.icc"
vips webpsave prophoto.v "$out/prophoto.webp" --lossless
vips icc_transform src.png srgb.v "$icc/sRGB.icc"
vips jpegsave srgb.v "$out/srgb-tagged.jpg" --Q 85
vips icc_transform src.png swapped.v "$icc/SwappedRedAndGreen.icc"
vips pngsave swapped.v "$out/swapped-red-green.png"
# CMYK with its profile embedded (more than one APP2 segment: the profile
# is 227 kB), and libvips's sRGB reading of the profile-less CMYK file.
vips jpegsave cmyk.v "$out/cmyk-profiled.jpg" --Q 85 --profile "$out/../profiles/cmyk.icm"
vips icc_import "$out/libjpeg-cmyk.jpg" lab.v --input-profile cmyk --intent relative
vips icc_export lab.v "$out/libjpeg-cmyk-by-libvips.png" --output-profile srgb --intent relative
# AVIF from libavif's avifenc (libaom): 8-bit 4:2:0; 10-bit 4:4:4; 12-bit
# 4:2:2; 4:0:0
# grey; limited range with the BT.709 matrix; alpha, straight and
# premultiplied; turned a quarter anticlockwise and mirrored top to
# bottom (irot, imir); Adobe RGB with its profile (colr); a 2×1 grid,
# which Kiln refuses by name. Speed 10 keeps it quick; -j 1 deterministic.
vips pngsave adobe.v adobe.png
vips resize src.png wide.png 1.9104 --vscale 1.4223
avif() { avifenc -j 1 -s 10 --ignore-exif --ignore-xmp "$@" >/dev/null; }
avif -d 8 -y 420 --min 4 --max 8 src.png "$out/avif-8bit.avif"
avif -d 10 -y 444 --min 4 --max 8 src.png "$out/avif-10bit-444.avif"
avif -d 12 -y 422 --min 4 --max 8 src.png "$out/avif-12bit-422.avif"
avif -d 8 -y 400 --min 4 --max 8 src.png "$out/avif-grey.avif"
avif -d 8 -y 420 --min 4 --max 8 -r limited --cicp 1/13/1 src.png "$out/avif-limited-bt709.avif"
avif -d 8 -y 444 --min 4 --max 8 --minalpha 0 --maxalpha 0 alpha.png "$out/avif-alpha.avif"
avif -d 8 -y 444 --min 4 --max 8 --minalpha 0 --maxalpha 0 --premultiply alpha.png "$out/avif-premultiplied.avif"
avif -d 8 -y 420 --min 4 --max 8 --irot 1 --imir 0 src.png "$out/avif-irot1-imir0.avif"
avif -d 8 -y 444 --min 2 --max 4 adobe.png "$out/avif-adobe-rgb.avif"
avif -d 8 -y 420 --min 4 --max 8 -g 2x1 wide.png "$out/avif-grid.avif"
# An image sequence of two frames: a track (moov) beside its primary item,
# the only picture Kiln reads.
avif -d 8 -y 420 --min 4 --max 8 src.png flipped.png "$out/avif-sequence.avif"
# Tagged by CICP alone (no ICC profile): Display P3 (primaries 12, sRGB
# transfer), sRGB's pure red and green written in P3 numbers (CSS Color 4:
# 234,51,35 and 117,251,76), which Kiln must turn back into 255,0,0 and
# 0,255,0; and HDR (BT.2020 primaries, PQ transfer), which it does not
# tone-map but warns of.
vips black half.v 32 64 --bands 3
vips linear half.v red.v "1 1 1" "234 51 35" --uchar
vips linear half.v green.v "1 1 1" "117 251 76" --uchar
vips join red.v green.v p3.v horizontal
vips copy p3.v p3.png --interpretation srgb
avif -d 8 -y 444 --min 0 --max 0 --cicp 12/13/6 p3.png "$out/avif-p3-cicp.avif"
avif -d 10 -y 420 --min 4 --max 8 --cicp 9/16/9 src.png "$out/avif-pq-cicp.avif"
ls -l "$out"
