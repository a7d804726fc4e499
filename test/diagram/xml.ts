/** Test helper: XML well-formedness, without a dependency. Importing it does nothing. */

/**
 * A small XML well-formedness check: tags balance, attributes are quoted, `&` only starts an entity,
 * no `<` inside text or attribute values. Returns the problem, or '' when the document is well formed.
 */
export function xmlProblem(doc: string): string {
  const body = doc.replace(/^<\?xml[^?]*\?>\s*/, '');
  const stack: string[] = [];
  const re = /<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>|([^<]+)|(<)/gy;
  let m: RegExpExecArray | null;
  let pos = 0;
  while (pos < body.length && (m = re.exec(body)) !== null) {
    pos = re.lastIndex;
    if (m[6] !== undefined) return `stray '<' at ${m.index}: ${body.slice(m.index, m.index + 40)}`;
    const text = m[5] ?? m[3] ?? '';
    const amp = /&(?!(?:amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);)/.exec(text);
    if (amp !== null) return `bare '&' near ${m.index}: ${text.slice(amp.index, amp.index + 20)}`;
    if (m[5] !== undefined) continue;
    if (m[1] === '/') {
      if (stack.pop() !== m[2]) return `mismatched </${m[2]}> at ${m.index}`;
    } else if (m[4] !== '/') {
      stack.push(m[2]!);
    }
  }
  if (pos < body.length) return `unparsed at ${pos}: ${body.slice(pos, pos + 40)}`;
  if (stack.length > 0) return `unclosed <${stack.join('> <')}>`;
  return '';
}
