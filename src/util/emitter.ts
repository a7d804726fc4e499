/**
 * A tiny typed event emitter for the core (node:events is not available in a browser).
 *
 * `Events` maps each event name to its argument tuple, e.g. `{ trace: [TraceEvent]; close: [] }`.
 * `emit` with no listener is one map lookup, and `listenerCount` lets a hot path skip building an
 * event object nobody will see (the stack checks `listenerCount('trace')` per segment).
 */
export type Listener<Args extends unknown[]> = (...args: Args) => void;

interface Registration {
  /** A `Listener<Events[K]>` for the name it is registered under. */
  readonly fn: unknown;
  readonly once: boolean;
}

export class Emitter<Events extends { [K in keyof Events]: unknown[] }> {
  private readonly listeners = new Map<keyof Events, Registration[]>();

  on<K extends keyof Events>(name: K, fn: Listener<Events[K]>): this {
    return this.add(name, { fn, once: false });
  }

  once<K extends keyof Events>(name: K, fn: Listener<Events[K]>): this {
    return this.add(name, { fn, once: true });
  }

  /** Removes the earliest registration of `fn` (made with `on` or `once`). */
  off<K extends keyof Events>(name: K, fn: Listener<Events[K]>): this {
    const list = this.listeners.get(name);
    if (!list) return this;
    const i = list.findIndex((r) => r.fn === fn);
    if (i >= 0) this.removeAt(name, list, i);
    return this;
  }

  /** Calls every listener in registration order; returns whether there was any. */
  emit<K extends keyof Events>(name: K, ...args: Events[K]): boolean {
    const list = this.listeners.get(name);
    if (list === undefined) return false;
    // Arrays are replaced, never mutated, so listeners added or removed during this emit do not
    // change which ones it calls (node:events behaves the same).
    for (let i = 0; i < list.length; i++) {
      const r = list[i]!;
      if (r.once) {
        const current = this.listeners.get(name);
        const j = current ? current.indexOf(r) : -1;
        if (j < 0) continue; // already removed
        this.removeAt(name, current!, j);
      }
      (r.fn as Listener<Events[K]>)(...args);
    }
    return true;
  }

  listenerCount<K extends keyof Events>(name: K): number {
    return this.listeners.get(name)?.length ?? 0;
  }

  removeAllListeners<K extends keyof Events>(name?: K): this {
    if (name === undefined) this.listeners.clear();
    else this.listeners.delete(name);
    return this;
  }

  private add<K extends keyof Events>(name: K, r: Registration): this {
    const list = this.listeners.get(name);
    this.listeners.set(name, list ? [...list, r] : [r]);
    return this;
  }

  private removeAt<K extends keyof Events>(name: K, list: Registration[], i: number): void {
    if (list.length === 1) this.listeners.delete(name);
    else this.listeners.set(name, [...list.slice(0, i), ...list.slice(i + 1)]);
  }
}
