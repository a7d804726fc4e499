/**
 * Ephemeral port selection, RFC 6056 §3.3.3 (Algorithm 3, "Simple Hash-Based Port Selection"):
 * the offset into the ephemeral range is a keyed hash of the destination, so ports are hard to
 * guess off-path yet successive connections to one peer do not reuse a port soon.
 */
import { halfSipHash, tupleWords } from '../tcp/isn.js';

// RFC 6056 §3.2 / IANA: the dynamic port range.
export const EPHEMERAL_MIN = 49152;
export const EPHEMERAL_MAX = 65535;

export class PortAllocator {
  private nextEphemeral = 0;

  constructor(private readonly k0: number, private readonly k1: number) {}

  /** Pick a port for (local, remote, remotePort) for which `free(port)` holds; null when all are taken. */
  choose(local: Uint8Array, remote: Uint8Array, remotePort: number, free: (port: number) => boolean): number | null {
    const n = EPHEMERAL_MAX - EPHEMERAL_MIN + 1;
    const offset = halfSipHash(this.k0, this.k1, tupleWords(local, 0, remote, remotePort));
    for (let count = 0; count < n; count++) {
      const port = EPHEMERAL_MIN + ((this.nextEphemeral + offset) >>> 0) % n;
      this.nextEphemeral = (this.nextEphemeral + 1) >>> 0;
      if (free(port)) return port;
    }
    return null;
  }
}
