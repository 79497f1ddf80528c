#!/bin/bash
# Median-of-N timings: native (release), Wasm (wasmtime 48 via ./runner), avifdec (libavif 0.11.1 + system codec, -j 1).
cd "$(dirname "$0")/testdata"
N=${N:-5}
W=../target/wasm32-wasip2/release/${WASM:-avifspike}.wasm
med() { sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
for f in ${FILES:-p4-420-8 p4-420-10 p4-444-8 p4-444-10 p4a-420-8 p16-420-8}; do
  nat=$(../target/release/avifspike $f.avif - $N 2>&1 | sed -n 's/.*av1 \([0-9.]*\) ms.*total \([0-9.]*\) ms/\1 \2/p')
  was=$(../target/debug/runner $W $f.avif - $N 2>&1 | sed -n 's/.*av1 \([0-9.]*\) ms.*total \([0-9.]*\) ms/\1 \2/p')
  ad_png=$(for i in $(seq $N); do s=$(date +%s%N); avifdec -j 1 --depth 8 $f.avif /tmp/avifdec-out.png >/dev/null 2>&1; e=$(date +%s%N); echo $(( (e-s)/1000000 )); done | med)
  ad_y4m=$(for i in $(seq $N); do s=$(date +%s%N); avifdec -j 1 $f.avif /tmp/avifdec-out.y4m >/dev/null 2>&1; e=$(date +%s%N); echo $(( (e-s)/1000000 )); done | med)
  printf "%-10s native av1 %6.0f total %6.0f | wasm av1 %6.0f total %6.0f | avifdec ->y4m %5d ->png %5d (ms, median of $N)\n" $f \
    $(echo "$nat" | awk '{print $1}' | med) $(echo "$nat" | awk '{print $2}' | med) \
    $(echo "$was" | awk '{print $1}' | med) $(echo "$was" | awk '{print $2}' | med) $ad_y4m $ad_png
done
