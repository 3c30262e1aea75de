/** How many descriptors of a listening TCP socket a process holds, read from /proc (Linux). */
import fs from 'node:fs';
import path from 'node:path';

/** The inodes of the sockets listening on `port` (any address, IPv4 or IPv6). */
export function listeningInodes(port: number): Set<string> {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  const inodes = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    if (!fs.existsSync(table)) continue;
    for (const line of fs.readFileSync(table, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      // local_address is ADDR:PORT in hex; state 0A is LISTEN; the inode is the tenth column.
      if (f[1]?.endsWith(`:${hexPort}`) && f[3] === '0A' && f[9]) inodes.add(f[9]);
    }
  }
  return inodes;
}

/** Descriptors of process `pid` that are a socket listening on `port` (0 when none listens). */
export function listeningDescriptors(pid: number, port: number): number {
  const inodes = listeningInodes(port);
  if (inodes.size === 0) return 0;
  const dir = `/proc/${pid}/fd`;
  return fs.readdirSync(dir).filter((fd) => {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(path.join(dir, fd)));
      return m !== null && inodes.has(m[1] ?? '');
    } catch {
      return false; // closed meanwhile
    }
  }).length;
}
