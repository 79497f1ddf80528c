#!/bin/bash
# Re-creates avifdec references and compares native + Wasm output against them.
# (Test AVIFs were made with: avifenc -s 6|8 -j 1 [-y 420|422|444|400] [-d 10|12] [-r limited --cicp P/T/M] [--premultiply] p4.png|p4a.png x.avif;
#  p4.png = vips copy /tmp/corpus/photo-4mp.jpg; p4a.png = p4.png + horizontal 0..255 alpha gradient; p16 from /tmp/corpus/photo-16mp.jpg)
cd "$(dirname "$0")/testdata" && mkdir -p out  # the Wasm guest only sees "." (preopened)
for a in *.avif; do f=${a%.avif}
  avifdec --depth 8 $a out/$f.ref.png >/dev/null 2>&1
  ../target/release/avifspike $a out/$f.ours.pam 2>/dev/null
  ../target/debug/runner ../target/wasm32-wasip2/release/avifspike.wasm $a out/$f.wasm.pam 2>/dev/null
  printf "%-20s wasm==native: %s | " $f "$(cmp -s out/$f.wasm.pam out/$f.ours.pam && echo yes || echo NO)"
  ../target/release/cmp out/$f.wasm.pam out/$f.ref.png | sed 's/^[^:]*: //'
  rm -f out/$f.ref.png out/$f.ours.pam out/$f.wasm.pam
done
rmdir out
