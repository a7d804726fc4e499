/** Congestion control: the algorithms behind one interface, chosen by name. */
import { Cubic } from './cubic.js';
import { NewReno } from './newreno.js';
import type { CongestionControl, CongestionControlName } from './types.js';

export type { CongestionControl, CongestionControlName } from './types.js';
export { Cubic } from './cubic.js';
export { NewReno, INITIAL_SSTHRESH } from './newreno.js';

export function createCongestionControl(name: CongestionControlName): CongestionControl {
  switch (name) {
    case 'newreno':
      return new NewReno();
    case 'cubic':
      return new Cubic();
    default: {
      const unknown: never = name;
      throw new Error(`unknown congestion control: ${String(unknown)}`);
    }
  }
}
