/**
 * Input-sized arrays are never spread into a call (issue 16): `f(...ids)` / `ids.push(...more)` overflow the stack
 * past ~100k elements. Here: a chat prompt with a pasted message of 400k tokens encodes (the context-window check
 * comes later and says what is wrong). The CLI's `tokenize --file` case is in bad_input.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { Conversation } from '../src/chat/conversation.js';
import { chatmlTemplate } from '../src/chat/template.js';

// one id per UTF-16 unit: fast, and input-sized
const encode = (t: string) => Array.from(t, (c) => c.charCodeAt(0));

describe('large inputs', () => {
  it('Conversation.encode handles a 400k-token message', () => {
    const conv = new Conversation({ system: 'be brief' });
    conv.add('user', 'x'.repeat(400_000));
    const { ids, text } = conv.encode(chatmlTemplate(), encode, encode);
    expect(ids.length).toBe(text.length);
    expect(ids.filter((x) => x === 120).length).toBeGreaterThanOrEqual(400_000);
  });
});
