/**
 * The controller's commands as FreeSWITCH's mod_event_socket reads them (read_packet): header
 * lines up to a blank line, then Content-Length bytes of body. Shared by the stand-in and the
 * fuzz test's peer, so both read the daemon's commands the same way.
 */

export interface ReadCommand {
  /** The first line: `sendmsg <uuid>`, `api …`, `connect` … */
  readonly line: string;
  /** The following header lines, names lower-cased. */
  readonly headers: Record<string, string>;
  readonly body: string;
}

/** Reads whole commands from the bytes received so far; what is left is an incomplete command. */
export class CommandReader {
  private pending: Buffer = Buffer.alloc(0);

  /** Adds a chunk and returns the commands it completed, in order. */
  push(chunk: Buffer): ReadCommand[] {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const commands: ReadCommand[] = [];
    for (;;) {
      const end = this.pending.indexOf('\n\n');
      if (end < 0) return commands;
      const lines = this.pending.toString('utf8', 0, end).split('\n');
      const headers: Record<string, string> = {};
      for (const l of lines.slice(1)) {
        const sep = l.indexOf(': ');
        if (sep > 0) headers[l.slice(0, sep).toLowerCase()] = l.slice(sep + 2);
      }
      const length = Number(headers['content-length'] ?? 0);
      if (this.pending.length < end + 2 + length) return commands;
      const body = this.pending.toString('utf8', end + 2, end + 2 + length);
      this.pending = this.pending.subarray(end + 2 + length);
      commands.push({ line: lines[0] ?? '', headers, body });
    }
  }
}
