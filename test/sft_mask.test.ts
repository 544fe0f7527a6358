/**
 * The SFT loss mask (src/align/sft_data.ts) at exact positions, with a codec whose ids are visible (one id per
 * character, special tokens 1000+): on ChatML, on Jinja templates (Llama-3 style, Zephyr style), for
 * prompt/completion rows and plain text; truncation and the padded batches and epoch order (sft_batches.ts); the
 * token accuracy of the objective (sft_objective.ts).
 */
import { describe, expect, it } from 'vitest';
import { chatmlTemplate, jinjaTemplate } from '../src/chat/template.js';
import {
  encodeSftRow,
  IGNORE_INDEX,
  inputsAndTargets,
  renderWithSpans,
  truncateExample,
  type SftExample,
} from '../src/align/sft_data.js';
import { epochOrder, evalBatches, padBatch, SftBatcher } from '../src/align/sft_batches.js';
import { argmaxHits } from '../src/align/sft_objective.js';
import { ConfigError } from '../src/util/errors.js';

const SPECIALS = [
  '<|im_start|>',
  '<|im_end|>',
  '<|start_header_id|>',
  '<|end_header_id|>',
  '<|eot_id|>',
  '</s>',
  '<|endoftext|>',
];
const EOS = 1006;

/** One id per character (its code point); a special token's text is one id, 1000 + its index. */
function encode(text: string): number[] {
  const out: number[] = [];
  let i = 0;
  while (i < text.length) {
    const k = SPECIALS.findIndex((s) => text.startsWith(s, i));
    if (k >= 0) {
      out.push(1000 + k);
      i += SPECIALS[k]!.length;
    } else out.push(text.codePointAt(i++)!);
  }
  return out;
}
const codec = { encode, eosId: EOS };

/** Ids and mask built by hand: pieces of [text, counted?]. */
function expected(pieces: [string, 0 | 1][]): { ids: number[]; mask: number[] } {
  const ids: number[] = [],
    mask: number[] = [];
  for (const [t, m] of pieces) for (const id of encode(t)) ids.push(id), mask.push(m);
  return { ids, mask };
}
const plain = (x: SftExample) => ({ ids: x.ids, mask: [...x.mask] });
/** The text of the counted ids, one string per run. */
function counted(x: SftExample): string[] {
  const runs: string[] = [];
  let cur = '';
  const dec = (id: number) => (id >= 1000 ? SPECIALS[id - 1000]! : String.fromCodePoint(id));
  x.ids.forEach((id, i) => {
    if (x.mask[i]) cur += dec(id);
    else if (cur) runs.push(cur), (cur = '');
  });
  if (cur) runs.push(cur);
  return runs;
}

const convo = {
  messages: [
    { role: 'system' as const, content: 'Be brief.' },
    { role: 'user' as const, content: 'Hi' },
    { role: 'assistant' as const, content: 'Hello!' },
    { role: 'user' as const, content: '2+2?' },
    { role: 'assistant' as const, content: '4' },
  ],
};

describe('the loss mask on ChatML', () => {
  it('counts the assistant replies and their <|im_end|>, nothing else', () => {
    const x = encodeSftRow(convo, chatmlTemplate(), codec);
    expect(plain(x)).toEqual(
      expected([
        ['<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n', 0],
        ['Hello!<|im_end|>', 1],
        ['\n<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n', 0],
        ['4<|im_end|>', 1],
        ['\n', 0],
      ]),
    );
    expect(counted(x)).toEqual(['Hello!<|im_end|>', '4<|im_end|>']);
  });

  it('a prompt/completion conversation counts the completion only, not an assistant turn of the prompt', () => {
    const row = { prompt: convo.messages.slice(0, 4), completion: [convo.messages[4]!] };
    const x = encodeSftRow(row, chatmlTemplate(), codec);
    expect(counted(x)).toEqual(['4<|im_end|>']);
    // the same ids as the whole conversation: only the mask differs
    expect(x.ids).toEqual(encodeSftRow(convo, chatmlTemplate(), codec).ids);
  });

  it('an empty reply still counts its end of turn', () => {
    const x = encodeSftRow(
      {
        messages: [
          { role: 'user', content: 'q' },
          { role: 'assistant', content: '' },
        ],
      },
      chatmlTemplate(),
      codec,
    );
    expect(counted(x)).toEqual(['<|im_end|>']);
  });

  it('a conversation without an assistant message is a ConfigError (nothing to learn)', () => {
    expect(() => encodeSftRow({ messages: [{ role: 'user', content: 'q' }] }, chatmlTemplate(), codec)).toThrow(
      ConfigError,
    );
    expect(() =>
      encodeSftRow(
        { prompt: [{ role: 'user', content: 'q' }], completion: [{ role: 'user', content: 'r' }] },
        chatmlTemplate(),
        codec,
      ),
    ).toThrow(/completion/);
  });
});

describe('the loss mask on Jinja templates', () => {
  const llama3 =
    "{{ bos_token }}{% for m in messages %}{{ '<|start_header_id|>' + m['role'] + '<|end_header_id|>\\n\\n' + (m['content'] | trim) + '<|eot_id|>' }}{% endfor %}" +
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}";
  it('Llama-3 style: the reply and <|eot_id|>, not the header', () => {
    const t = jinjaTemplate(llama3, { bosToken: '<|endoftext|>' });
    const x = encodeSftRow(convo, t, codec);
    expect(plain(x)).toEqual(
      expected([
        [
          '<|endoftext|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n',
          0,
        ],
        ['Hello!<|eot_id|>', 1],
        [
          '<|start_header_id|>user<|end_header_id|>\n\n2+2?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n',
          0,
        ],
        ['4<|eot_id|>', 1],
      ]),
    );
  });

  it('Zephyr style (turns closed by the EOS text </s>, then a newline)', () => {
    const zephyr =
      "{% for m in messages %}{{ '<|' + m['role'] + '|>\\n' + m['content'] + eos_token + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}";
    const x = encodeSftRow(convo, jinjaTemplate(zephyr, { eosToken: '</s>' }), codec);
    expect(counted(x)).toEqual(['Hello!</s>', '4</s>']);
  });

  it('a template that does not render prefix by prefix is a ConfigError naming the chat template', () => {
    const odd =
      "{% for m in messages %}{{ m['role'] + ': ' + m['content'] + '\\n' }}{% endfor %}{% if messages[-1]['role'] == 'assistant' %}{{ 'END' }}{% endif %}";
    expect(() => renderWithSpans(convo.messages, jinjaTemplate(odd), () => true)).toThrow(
      /chat_template.*prefix by prefix/,
    );
  });
});

describe('plain rows', () => {
  it('prompt/completion text: the completion and EOS count, the prompt does not', () => {
    const x = encodeSftRow({ prompt: 'The capital is', completion: ' Paris.' }, chatmlTemplate(), codec);
    expect(plain(x)).toEqual({
      ids: [...encode('The capital is Paris.'), EOS],
      mask: [...Array(14).fill(0), ...Array(7).fill(1), 1],
    });
  });
  it('text: every token and EOS count; without an EOS id nothing is appended', () => {
    expect(plain(encodeSftRow({ text: 'abc' }, chatmlTemplate(), codec))).toEqual({
      ids: [97, 98, 99, EOS],
      mask: [1, 1, 1, 1],
    });
    expect(plain(encodeSftRow({ text: 'abc' }, chatmlTemplate(), { encode }))).toEqual({
      ids: [97, 98, 99],
      mask: [1, 1, 1],
    });
  });
});

describe('truncation, targets and batches', () => {
  const x: SftExample = { ids: [10, 11, 12, 13, 14, 15], mask: Uint8Array.from([0, 0, 0, 1, 1, 1]) };
  it('targets are the next ids where counted, -100 elsewhere', () => {
    expect(inputsAndTargets(x)).toEqual({ inputs: [10, 11, 12, 13, 14], targets: [-100, -100, 13, 14, 15] });
  });
  it('truncation keeps the start, says so, and gives null when no counted token is left', () => {
    const t = truncateExample(x, 4);
    expect(t.truncated).toBe(true);
    expect(plain(t.example!)).toEqual({ ids: [10, 11, 12, 13], mask: [0, 0, 0, 1] });
    expect(truncateExample(x, 3)).toEqual({ example: null, truncated: true });
    expect(truncateExample(x, 6).truncated).toBe(false);
  });
  it('padding: right-padded inputs, -100 targets, the longest row sets T', () => {
    const y: SftExample = { ids: [20, 21, 22], mask: Uint8Array.from([0, 1, 1]) };
    const b = padBatch([y, x], 0);
    expect([b.B, b.T, b.tokens]).toEqual([2, 5, 7]);
    expect([...b.ids]).toEqual([20, 21, 0, 0, 0, 10, 11, 12, 13, 14]);
    expect([...b.targets]).toEqual([21, 22, IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX, -100, -100, 13, 14, 15]);
    expect(evalBatches([x, y, x], 2, 0, 10).map((e) => [e.B, e.T])).toEqual([
      [2, 5],
      [1, 5],
    ]);
  });
  it('each epoch visits every example once, in an order of its own; a restored batcher draws the same batches', () => {
    const xs: SftExample[] = Array.from({ length: 10 }, (_, i) => ({
      ids: [i, i + 1, i + 2].slice(0, 2 + (i % 2)),
      mask: Uint8Array.from([0, 1, 1]),
    }));
    const o0 = epochOrder(10, 7, 0),
      o1 = epochOrder(10, 7, 1);
    expect([...o0].sort((p, q) => p - q)).toEqual([...Array(10).keys()]);
    expect(o1).not.toEqual(o0);
    expect(epochOrder(10, 7, 0)).toEqual(o0);
    const seen: number[] = [];
    const b2 = new SftBatcher(xs, 5, 8, 7, 0);
    for (let k = 0; k < 2; k++) {
      const batch = b2.next();
      for (let r = 0; r < batch.B; r++) seen.push(batch.ids[r * batch.T]!);
    }
    expect(seen.sort((p, q) => p - q)).toEqual([...Array(10).keys()]);
    expect(b2.epoch).toBe(1);
    const tokens = b2.numTokens;
    expect(tokens).toBe(xs.reduce((n, e) => n + e.ids.length - 1, 0));
    const state = b2.getState();
    const next = b2.next();
    const b3 = new SftBatcher(xs, 5, 8, 7, 0);
    b3.setState(state);
    expect(b3.numTokens).toBe(tokens);
    expect(b3.next()).toEqual(next);
  });
});

describe('token accuracy', () => {
  it('counts the counted targets whose logit is the largest (ties go to the lower id)', () => {
    const V = 3;
    // rows: argmax 2 (target 2: hit), argmax 0 (target 1: miss), ignored, tie 0/1 (target 1: miss), tie (target 0: hit)
    const logits = [0, 1, 5, 3, 1, 0, 9, 9, 9, 2, 2, 0, 2, 2, 0];
    const r = argmaxHits(logits, Int32Array.from([2, 1, -100, 1, 0]), V);
    expect(r).toEqual({ correct: 2, total: 4 });
  });
});
