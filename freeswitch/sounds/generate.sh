#!/usr/bin/env bash
# Render the hotline system prompts as 8 kHz mono 16-bit WAV files (placeholders for testing;
# a carrier replaces them with recorded announcements of the same names).
#
#   freeswitch/sounds/generate.sh [--force] [OUTPUT_DIR]
#
# OUTPUT_DIR defaults to freeswitch/sounds/hotline/ (next to this script). Existing files are
# kept, so recorded announcements dropped in there are never overwritten; --force renders
# every file again. Running it twice gives the same result (idempotent).
#
# The names and texts live in one place, src/prompts/system-texts.ts (typed against the
# contract list SYSTEM_PROMPTS in src/calls/prompts.ts), and the rendering (espeak-ng piped
# through sox to 8000 Hz mono 16-bit, normalised, 300 ms of silence at both ends, the format
# checked before the file is renamed into place) in src/prompts/render.ts, which also renders
# tenant TTS prompts. This script is a wrapper around `npm run prompts`: it needs this
# repository with its node_modules (npm ci), espeak-ng and sox.
#
# Voice "cmn" = "Chinese (Mandarin, latin as English)" in Debian bookworm's espeak-ng 1.51
# (`espeak-ng --voices=zh`), so the Chinese text is read in Mandarin and the English sentence
# after it in English. The voice named "zh" in that list is the MBROLA voice mb-cn1, which
# needs the separate mbrola packages: do not use it. HOTLINE_TTS_VOICE (or TTS_VOICE)
# overrides the voice.
# Debian/Ubuntu: apt-get install espeak-ng sox
set -euo pipefail

die() { printf 'generate.sh: %s\n' "$*" >&2; exit 1; }

force=()
if [[ "${1:-}" == "--force" ]]; then
  force=(--force)
  shift
fi
[[ $# -le 1 ]] || die "usage: $0 [--force] [OUTPUT_DIR]"

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_dir="$(cd "$script_dir/../.." && pwd)"
out_dir="${1:-$script_dir/hotline}"
voice="${HOTLINE_TTS_VOICE:-${TTS_VOICE:-cmn}}"

for tool in espeak-ng sox npm; do
  command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found: install espeak-ng and sox (apt-get install espeak-ng sox) and Node.js"
done
espeak-ng --voices | awk 'NR > 1 { print $2 }' | grep -qxF "$voice" \
  || die "espeak-ng has no voice '$voice' (espeak-ng --voices=zh lists the Chinese voices)"
[[ -d "$repo_dir/node_modules" ]] || die "run 'npm ci' in $repo_dir first"

# npm runs in the repository: make the output directory absolute before changing directory.
mkdir -p "$out_dir"
out_dir="$(cd "$out_dir" && pwd)"

cd "$repo_dir"
TTS_VOICE="$voice" exec npm run --silent prompts -- "${force[@]}" --out "$out_dir"
