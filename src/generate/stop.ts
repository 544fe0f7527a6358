/**
 * Stop strings on streamed text. Text arrives in pieces (one per token, possibly empty); a stop string may span
 * several pieces. The matcher releases text as soon as it can no longer be the start of a stop string, holds back
 * the tail that still could be, and on a match releases only the text before the stop string (which itself is never
 * emitted), like OpenAI's `stop` and HF's `stop_strings`.
 */

export interface StopPush {
  /** Text that is safe to show now. */
  text: string;
  /** The stop string that matched, if one did; generation should end. */
  stopped: string | null;
}

export class StopStringMatcher {
  private held = '';
  private done = false;
  private readonly stops: string[];
  private readonly maxLen: number;

  constructor(stops: readonly string[]) {
    this.stops = stops.filter((s) => s.length > 0);
    this.maxLen = this.stops.reduce((m, s) => Math.max(m, s.length), 0);
  }

  /** Feed the next piece of text. */
  push(piece: string): StopPush {
    if (this.done) return { text: '', stopped: null };
    if (this.stops.length === 0) return { text: piece, stopped: null };
    const buf = this.held + piece;
    // earliest match of any stop string (longest first at the same position)
    let at = -1;
    let which: string | null = null;
    for (const s of this.stops) {
      const i = buf.indexOf(s);
      if (i >= 0 && (at < 0 || i < at || (i === at && s.length > which!.length))) {
        at = i;
        which = s;
      }
    }
    if (which !== null) {
      this.done = true;
      this.held = '';
      return { text: buf.slice(0, at), stopped: which };
    }
    // hold back the longest suffix of buf that is a proper prefix of some stop string
    let keep = 0;
    for (let k = Math.min(this.maxLen - 1, buf.length); k > 0; k--) {
      const tail = buf.slice(buf.length - k);
      if (this.stops.some((s) => s.startsWith(tail))) {
        keep = k;
        break;
      }
    }
    this.held = buf.slice(buf.length - keep);
    return { text: buf.slice(0, buf.length - keep), stopped: null };
  }

  /** End of generation without a match: release whatever was held back. */
  flush(): string {
    const t = this.held;
    this.held = '';
    return t;
  }
}
