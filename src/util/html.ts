/**
 * Putting data into self-contained HTML pages (the training report, the inspection page): JSON inside a <script>
 * element that no string in the data can end early (`</script>`, `<!--`) or break (U+2028/U+2029 in old parsers).
 */

/** JSON safe to put inside a <script> element: every '<' written as \u003c, so no text in it can close the element. */
export function scriptJson(v: unknown): string {
  return JSON.stringify(v)
    .replace(/</g, '\\u003c')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}
