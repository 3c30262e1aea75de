/**
 * Reads the header of a RIFF/WAVE file: enough to check that a rendered prompt is what
 * FreeSWITCH plays without resampling (8000 Hz, mono, 16-bit PCM) and that it is not empty.
 */
export interface WavInfo {
  /** 1 = PCM. */
  readonly format: number;
  readonly channels: number;
  readonly sampleRate: number;
  readonly bitsPerSample: number;
  /** Sample frames in the data chunk. */
  readonly frames: number;
  /** Offset and length of the data chunk's payload in the buffer. */
  readonly dataOffset: number;
  readonly dataLength: number;
}

/** Parses the chunks of a WAV buffer; throws with the reason when it is not a PCM WAV file. */
export function readWavInfo(buf: Buffer): WavInfo {
  if (buf.length < 12 || buf.toString('latin1', 0, 4) !== 'RIFF' || buf.toString('latin1', 8, 12) !== 'WAVE') {
    throw new Error('not a RIFF/WAVE file');
  }
  let fmt: { format: number; channels: number; sampleRate: number; bitsPerSample: number } | null = null;
  let offset = 12;
  while (offset + 8 <= buf.length) {
    const id = buf.toString('latin1', offset, offset + 4);
    const size = buf.readUInt32LE(offset + 4);
    const body = offset + 8;
    if (id === 'fmt ') {
      if (size < 16 || body + 16 > buf.length) throw new Error('truncated fmt chunk');
      fmt = {
        format: buf.readUInt16LE(body),
        channels: buf.readUInt16LE(body + 2),
        sampleRate: buf.readUInt32LE(body + 4),
        bitsPerSample: buf.readUInt16LE(body + 14),
      };
    } else if (id === 'data') {
      if (!fmt) throw new Error('data chunk before fmt chunk');
      const dataLength = Math.min(size, buf.length - body);
      const frameBytes = fmt.channels * (fmt.bitsPerSample / 8);
      return { ...fmt, frames: frameBytes > 0 ? Math.floor(dataLength / frameBytes) : 0, dataOffset: body, dataLength };
    }
    offset = body + size + (size % 2); // chunks are word-aligned
  }
  throw new Error('no data chunk');
}

/** Why `info` is not 8000 Hz mono 16-bit PCM, or null when it is. */
export function telephonyFormatProblem(info: WavInfo): string | null {
  if (info.format !== 1) return `format ${info.format} is not PCM`;
  if (info.sampleRate !== 8000) return `sample rate ${info.sampleRate} is not 8000 Hz`;
  if (info.channels !== 1) return `${info.channels} channels, not mono`;
  if (info.bitsPerSample !== 16) return `${info.bitsPerSample}-bit, not 16-bit`;
  if (info.frames === 0) return 'no samples';
  return null;
}
