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
# Needs espeak-ng and sox (soxi). Voice "cmn" = "Chinese (Mandarin, latin as English)" in
# Debian bookworm's espeak-ng 1.51 (`espeak-ng --voices=zh`), so the Chinese text is read in
# Mandarin and the English sentence after it in English. The voice named "zh" in that list is
# the MBROLA voice mb-cn1, which needs the separate mbrola packages: do not use it.
# HOTLINE_TTS_VOICE overrides the voice.
# Debian/Ubuntu: apt-get install espeak-ng sox
set -euo pipefail

die() { printf 'generate.sh: %s\n' "$*" >&2; exit 1; }

force=0
if [[ "${1:-}" == "--force" ]]; then
  force=1
  shift
fi
[[ $# -le 1 ]] || die "usage: $0 [--force] [OUTPUT_DIR]"

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out_dir="${1:-$script_dir/hotline}"
voice="${HOTLINE_TTS_VOICE:-cmn}"

for tool in espeak-ng sox soxi; do
  command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found: install espeak-ng and sox (apt-get install espeak-ng sox)"
done
espeak-ng --voices=zh | awk 'NR > 1 { print $2 }' | grep -qx "$voice" \
  || die "espeak-ng has no voice '$voice' (espeak-ng --voices=zh lists the Chinese voices)"

mkdir -p "$out_dir"
tmp_dir="$(mktemp -d)"
trap 'rm -rf "$tmp_dir"' EXIT

# name|text. The names are a contract with the daemon and the dialplan (sounds/hotline/README.md).
prompts=(
  "not_in_service|您拨打的号码未开通服务，请核对后再拨。 The number you dialed is not in service. Please check the number and call again."
  "service_unavailable|系统暂时无法接通，请稍后再拨。 We are sorry, the service is temporarily unavailable. Please call again later."
  "nobody_answered|您拨打的电话暂时无人接听，请稍后再拨。 Nobody is available to answer your call. Please call again later."
  "all_busy|坐席全忙，请稍后再拨。 All lines are busy. Please call again later."
  "blocked|对不起，您的呼叫无法接通。 Sorry, your call cannot be connected."
  "capped|对不起，该号码暂时无法接通。 Sorry, this number cannot take calls at the moment."
  "enter_pin|请输入密码，以井号键结束。 Please enter your PIN, followed by the hash key."
  "wrong_pin|密码错误，请重新输入。 The PIN is incorrect. Please try again."
  "pin_failed|密码错误次数过多，再见。 Too many incorrect attempts. Goodbye."
  "welcome|您好，欢迎致电，请稍候。 Hello, thank you for calling. Please hold."
  "after_hours|您好，现在是非工作时间，请在工作时间再拨。 Our office is closed now. Please call again during business hours."
  "leave_message|请在提示音后留言，按井号键结束。 Please leave a message after the tone, and press the hash key when you are done."
  "suspended|对不起，该号码已暂停服务。 Sorry, this number has been suspended."
  "ringback|正在为您接通，请稍候。 Connecting your call, please wait."
  "invalid_entry|输入有误，请重新输入。 Invalid entry. Please try again."
  "enter_extension|请拨分机号，以井号键结束，查号请拨零。 Please dial the extension number followed by the hash key, or dial zero for the operator."
  "goodbye|感谢您的来电，再见。 Thank you for calling. Goodbye."
)

rendered=0
kept=0
for entry in "${prompts[@]}"; do
  name="${entry%%|*}"
  text="${entry#*|}"
  target="$out_dir/$name.wav"

  if [[ -e "$target" && $force -eq 0 ]]; then
    kept=$((kept + 1))
    continue
  fi

  raw="$tmp_dir/$name.raw.wav"
  final="$tmp_dir/$name.wav"
  # espeak-ng writes 22050 Hz mono 16-bit; -s 150 words per minute is a calm announcement pace.
  espeak-ng -v "$voice" -s 150 -w "$raw" -- "$text"
  # Resample to 8000 Hz mono 16-bit signed PCM, normalise to -3 dBFS, add 300 ms of silence
  # at both ends so the first syllable is not clipped when media starts.
  sox "$raw" -r 8000 -c 1 -b 16 -e signed-integer "$final" norm -3 pad 0.3 0.3

  [[ "$(soxi -r "$final")" == 8000 ]] || die "$name: sample rate is not 8000 Hz"
  [[ "$(soxi -c "$final")" == 1 ]] || die "$name: not mono"
  [[ "$(soxi -b "$final")" == 16 ]] || die "$name: not 16-bit"
  [[ "$(soxi -s "$final")" -gt 8000 ]] || die "$name: suspiciously short (under 1 s)"

  mv -f "$final" "$target"
  rendered=$((rendered + 1))
done

printf 'generate.sh: %d rendered, %d kept, in %s\n' "$rendered" "$kept" "$out_dir"
