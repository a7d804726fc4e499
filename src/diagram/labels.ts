/**
 * How every renderer (text, SVG, HTML, Mermaid, the `synack ui` page) and `draw`'s inference write an
 * endpoint and a segment, so that they agree to the character:
 *
 *   formatEndpoint('10.0.0.1', 80)   10.0.0.1:80        (IPv6 in brackets: [fd00::1]:80, RFC 3986 §3.2.2)
 *   segmentLabel(seg)                SYN,ACK seq=0 ack=1 len=5 win=65535
 *   optionsLabel(seg)                [MSS=1460,SACK_PERM]
 *   markWords(seg)                   ['retransmission', 'dup ACK']
 *
 * Pure functions: no Node built-ins (the browser page uses them).
 */
import type { DiagramSegment, SegmentMark } from './model.js';

/** `address:port` (src/wire/address.ts), re-exported for the renderers. */
export { formatEndpoint } from '../wire/address.js';

/** What a segment label needs: the model's segment, or a trace's segment with relative numbers. */
export type LabelledSegment = Pick<DiagramSegment, 'flags' | 'seq' | 'ack' | 'len' | 'win'>;

/**
 * The label on an arrow: `SYN,ACK seq=0 ack=1 len=5 win=65535` (flags, relative seq, ack only when
 * the ACK bit is set, len only when there is data, the raw window).
 */
export function segmentLabel(seg: LabelledSegment): string {
  let s = seg.flags.join(',');
  s += `${seg.flags.length > 0 ? ' ' : ''}seq=${seg.seq}`;
  if (seg.flags.includes('ACK')) s += ` ack=${seg.ack}`;
  if (seg.len > 0) s += ` len=${seg.len}`;
  s += ` win=${seg.win}`;
  return s;
}

/** The options: `[MSS=1460,SACK_PERM]`, or '' when there are none. */
export function optionsLabel(seg: Pick<DiagramSegment, 'options'>): string {
  return seg.options.length > 0 ? `[${seg.options.join(',')}]` : '';
}

/** Words for the analysis marks (Wireshark's tcp.analysis words, lower case). */
export const MARK_WORDS: Readonly<Record<SegmentMark, string>> = {
  retransmission: 'retransmission',
  'spurious-retransmission': 'spurious retransmission',
  'dup-ack': 'dup ACK',
  'out-of-order': 'out of order',
  'zero-window': 'zero window',
  'zero-window-probe': 'zero-window probe',
  'window-update': 'window update',
  'window-full': 'window full',
  'keep-alive': 'keep-alive',
  'lost-segment': 'previous segment lost',
};

/** The segment's analysis marks as words, in the model's order ([] when it has none). */
export function markWords(seg: Pick<DiagramSegment, 'marks'>): string[] {
  return (seg.marks ?? []).map((m) => MARK_WORDS[m]);
}
