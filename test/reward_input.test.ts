/**
 * reward_input.ts: a sampled reply reaches the reward model as the reward trainer encoded its feedback rows —
 * whatever stop token ended it, whether it was cut at the length limit, and whatever bytes it sampled.
 */
import { describe, expect, it } from 'vitest';
import { chatmlTemplate, jinjaTemplate } from '../src/chat/template.js';
import { encodePreferenceRow } from '../src/align/pref_data.js';
import { RewardInput } from '../src/align/reward_input.js';
import { CHATML_JINJA } from '../src/align/sft.js';
import { trainBpe } from '../src/tokenizer/index.js';

const tok = trainBpe(
  [
    'Who gave the 1987 address? Ronald Reagan gave the 1987 address.',
    'Which party was he in? He was a Republican. é è ü',
  ],
  {
    vocabSize: 300,
    specialTokens: ['<|endoftext|>', '<|im_start|>', '<|im_end|>'],
    config: { bosToken: '<|endoftext|>', eosToken: '<|endoftext|>' },
  },
);
const enc = (t: string) => tok.encode(t, { allowed: 'all' });
const codec = { encode: enc, eosId: tok.eosId };
const EOS = tok.eosId!,
  IM_END = enc('<|im_end|>')[0]!;
const messages = [{ role: 'user' as const, content: 'Who gave the 1987 address?' }];

for (const [name, template] of [
  ['ChatML', chatmlTemplate()],
  ['jinja ChatML', jinjaTemplate(CHATML_JINJA)],
] as const) {
  describe(`RewardInput (${name})`, () => {
    const input = new RewardInput(tok, template, [EOS, IM_END]);
    const promptIds = enc(template.render(messages, { addGenerationPrompt: true }));
    /** What `llmts reward` trains on for this reply (a feedback row's chosen side). */
    const trained = (text: string) => {
      const p = encodePreferenceRow(
        {
          prompt: messages,
          chosen: [{ role: 'assistant', content: text }],
          rejected: [{ role: 'assistant', content: 'x' }],
        },
        template,
        codec,
      );
      return [...p.prompt, ...p.chosen];
    };

    it('a reply that stopped on EOS or on the end-of-turn marker reads as the trainer encoded it', () => {
      const text = 'Ronald Reagan gave the 1987 address.';
      const ids = enc(text);
      const want = trained(text);
      expect(want.at(-1)).toBe(IM_END);
      expect(input.ids({ text: '', messages }, promptIds, [...ids, EOS])).toEqual(want);
      expect(input.ids({ text: '', messages }, promptIds, [...ids, IM_END])).toEqual(want);
      // as sampled, the EOS reply would end in EOS: a token the score head never read last in training
      expect([...promptIds, ...ids, EOS]).not.toEqual(want);
    });

    it('a reply cut at the length limit gets the end-of-turn marker the trained rows had', () => {
      const ids = enc('Ronald Reagan gave');
      expect(input.ids({ text: '', messages }, promptIds, ids)).toEqual(trained('Ronald Reagan gave'));
    });

    it('invalid UTF-8 bytes read as the U+FFFD the rater and the feedback file saw', () => {
      // the token of the lone byte 0xC3 (the lead byte of 'é', cut off from its continuation)
      const lead = Array.from({ length: tok.vocabSize }, (_, i) => i).find((i) => {
        const b = tok.isSpecial(i) ? null : tok.tokenBytes(i);
        return b?.length === 1 && b[0] === 0xc3;
      })!;
      expect(lead).toBeDefined();
      const reply = [...enc('He was '), lead, EOS];
      const text = input.text(reply);
      expect(text).toBe('He was \uFFFD');
      const want = trained(text);
      expect(want).not.toContain(lead);
      expect(input.ids({ text: '', messages }, promptIds, reply)).toEqual(want);
    });

    it('a re-encoded reply longer than the window is cut to fit, its end marker kept', () => {
      const reply = [...enc('Ronald Reagan gave the 1987 address.'), EOS];
      const want = trained('Ronald Reagan gave the 1987 address.');
      const max = want.length - 3;
      const cut = new RewardInput(tok, template, [EOS, IM_END], max).ids({ text: '', messages }, promptIds, reply);
      expect(cut.length).toBe(max);
      expect(cut.slice(0, -1)).toEqual(want.slice(0, max - 1));
      expect(cut.at(-1)).toBe(IM_END);
      // a window that fits leaves it whole
      expect(
        new RewardInput(tok, template, [EOS, IM_END], want.length).ids({ text: '', messages }, promptIds, reply),
      ).toEqual(want);
    });

    it('a non-canonical split of a word reads as the canonical one', () => {
      const canonical = enc('Reagan');
      const split = [...'Reagan'].flatMap((ch) => enc(ch));
      expect(split.length).toBeGreaterThan(canonical.length);
      expect(input.ids({ text: '', messages }, promptIds, [...split, EOS])).toEqual(trained('Reagan'));
    });
  });
}

describe('RewardInput (plain prompt)', () => {
  const input = new RewardInput(tok, chatmlTemplate(), [EOS]);
  it('prompt + reply + EOS, as a plain preference row', () => {
    const p = encodePreferenceRow(
      { prompt: 'Who gave it? ', chosen: 'Reagan.', rejected: 'x' },
      chatmlTemplate(),
      codec,
    );
    expect(input.ids({ text: 'Who gave it? ' }, enc('Who gave it? '), [...enc('Reagan.'), EOS])).toEqual([
      ...p.prompt,
      ...p.chosen,
    ]);
  });
});
