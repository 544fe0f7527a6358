// Generation engine on scripted fake models: KV-cached loop shape, stop tokens and strings, the context window,
// seeds, batching, abort, and streaming that never splits a character.
import { describe, it, expect } from 'vitest';
import { generate, stream, type StreamEvent } from '../src/generate/engine.js';
import { StopStringMatcher } from '../src/generate/stop.js';
import { ConfigError, ContextOverflowError } from '../src/util/errors.js';
import { ByteTokenizer, bytesOf, randomBigramModel, scriptedModel } from './generate_fakes.js';
import type { TextCodec } from '../src/generate/interfaces.js';
import { tokenizerCodec } from '../src/chat/codec.js';
import { CharTokenizer } from '../src/tokenizer/char_tokenizer.js';

const tok = new ByteTokenizer({
  256: '<eos>',
  257: 'hello',
  258: Uint8Array.of(0xf0, 0x9f),
  259: Uint8Array.of(0x98, 0x80),
});
const EOS = 256;

async function collect(s: AsyncIterable<StreamEvent>): Promise<StreamEvent[]> {
  const out: StreamEvent[] = [];
  for await (const e of s) out.push(e);
  return out;
}

describe('generate: the KV-cached loop', () => {
  it('prefills the prompt with lastOnly, then feeds one token at a time through the cache', async () => {
    const m = scriptedModel([65, 66, 67, 68]);
    const r = await generate(m, [[1, 2, 3]], { temperature: 0, maxTokens: 4, tokenizer: tok });
    expect(r.choices[0]!.ids).toEqual([65, 66, 67, 68]);
    expect(r.choices[0]!.text).toBe('ABCD');
    expect(r.choices[0]!.finish_reason).toBe('length');
    expect(m.calls).toEqual([
      { B: 1, T: 3, lastOnly: true, cacheBefore: 0 },
      { B: 1, T: 1, lastOnly: false, cacheBefore: 3 },
      { B: 1, T: 1, lastOnly: false, cacheBefore: 4 },
      { B: 1, T: 1, lastOnly: false, cacheBefore: 5 },
    ]);
    expect(m.disposed).toBe(m.created); // every logits tensor freed
  });

  it('stops at a stop token, which is not part of the output', async () => {
    const m = scriptedModel([72, 105, EOS, 65]);
    const r = await generate(m, [5], { temperature: 0, stopTokens: [EOS], tokenizer: tok });
    const c = r.choices[0]!;
    expect(c.ids).toEqual([72, 105]);
    expect(c.text).toBe('Hi');
    expect(c.finish_reason).toBe('stop');
    expect(c.stopped_by).toEqual({ token: EOS });
    expect(c.logprobs.content.map((e) => e.token)).toEqual(['H', 'i']);
  });

  it('stops at a stop string spanning tokens, without emitting it', async () => {
    const m = scriptedModel([...bytesOf('Hello EN'), ...bytesOf('D! more')]);
    const r = await generate(m, [5], { temperature: 0, stop: ['END'], tokenizer: tok, maxTokens: 50 });
    expect(r.choices[0]!.text).toBe('Hello ');
    expect(r.choices[0]!.finish_reason).toBe('stop');
    expect(r.choices[0]!.stopped_by).toEqual({ string: 'END' });
    expect(r.choices[0]!.ids.length).toBe(9); // tokens up to the one that completed the stop string
  });

  it('releases a held-back partial stop string when it does not complete', async () => {
    const m = scriptedModel(bytesOf('xENy'));
    const events = await collect(stream(m, tok, [5], { temperature: 0, stop: ['END'], maxTokens: 4 }));
    expect(events.map((e) => e.text)).toEqual(['x', '', '', 'ENy']);
    expect(events.at(-1)!.finishReason).toBe('length');
  });

  it('stop string matcher: earliest match wins, multiple strings, prefix held across pushes', () => {
    const s = new StopStringMatcher(['\n\n', 'User:']);
    expect(s.push('Hi Us')).toEqual({ text: 'Hi ', stopped: null });
    expect(s.push('e')).toEqual({ text: '', stopped: null });
    expect(s.push('r: x\n\n')).toEqual({ text: '', stopped: 'User:' });
    const t = new StopStringMatcher(['ab']);
    expect(t.push('xa')).toEqual({ text: 'x', stopped: null });
    expect(t.flush()).toBe('a');
  });

  it('respects the context window: finish "length" at the window, named error when the prompt exceeds it', async () => {
    const m = scriptedModel([], 300, 10);
    const r = await generate(m, [[1, 2, 3, 4]], { temperature: 0, maxTokens: 100 });
    expect(r.choices[0]!.ids.length).toBe(6);
    expect(r.choices[0]!.finish_reason).toBe('length');
    const full = await generate(m, [Array(10).fill(1)], { temperature: 0 });
    expect(full.choices[0]!.ids).toEqual([]);
    expect(full.choices[0]!.finish_reason).toBe('length');
    await expect(generate(m, [Array(11).fill(1)], {})).rejects.toBeInstanceOf(ContextOverflowError);
    const r2 = await generate(scriptedModel([], 300, 100), [[1, 2]], {
      temperature: 0,
      maxTokens: 100,
      contextLength: 5,
    });
    expect(r2.choices[0]!.ids.length).toBe(3);
  });

  it('rejects bad prompts and settings with named errors', async () => {
    const m = scriptedModel([]);
    await expect(generate(m, [[]], {})).rejects.toBeInstanceOf(ConfigError);
    await expect(generate(m, [[1, 999]], {})).rejects.toThrow(/outside the vocabulary/);
    await expect(generate(m, [[1]], { maxTokens: -1 })).rejects.toThrow(/maxTokens/);
    await expect(generate(m, [[1]], { stop: ['x'] })).rejects.toThrow(/tokenizer/);
    await expect(generate(m, [[1]], { topP: 0 })).rejects.toThrow(/topP/);
  });

  it('takes a codec, not a tokenizer: a bare tokenizer is refused by name, and decodes once wrapped by tokenizerCodec', async () => {
    const chars = CharTokenizer.fromText('abc');
    const m = scriptedModel([chars.encode('b')[0]!], chars.vocabSize);
    const bare = chars as unknown as TextCodec;
    await expect(generate(m, [[0]], { temperature: 0, maxTokens: 1, tokenizer: bare })).rejects.toThrow(ConfigError);
    await expect(generate(m, [[0]], { temperature: 0, maxTokens: 1, tokenizer: bare })).rejects.toThrow(
      /tokenizerCodec/,
    );
    expect(() => stream(m, bare, 'a')).toThrow(/tokenizerCodec/);
    const r = await generate(m, [[0]], { temperature: 0, maxTokens: 1, tokenizer: tokenizerCodec(chars) });
    expect(r.choices[0]!.text).toBe('b');
  });
});

describe('generate: seeds and batches', () => {
  it('returns a fresh seed when none is given; that seed repeats the run', async () => {
    const m = randomBigramModel();
    const a = await generate(m, [[1, 2]], { maxTokens: 30 });
    const b = await generate(m, [[1, 2]], { maxTokens: 30 });
    expect(Number.isInteger(a.seed)).toBe(true);
    expect(a.seed).not.toBe(b.seed); // 1 in 2^32 chance of a false failure
    const again = await generate(m, [[1, 2]], { maxTokens: 30, seed: a.seed });
    expect(again.choices[0]!.ids).toEqual(a.choices[0]!.ids);
  });

  it('same seed → same tokens; different seeds → different tokens', async () => {
    const m = randomBigramModel();
    const run = async (seed: number) => (await generate(m, [[3]], { maxTokens: 40, seed })).choices[0]!.ids;
    expect(await run(7)).toEqual(await run(7));
    expect(await run(7)).not.toEqual(await run(8));
  });

  it('batched prompts of different lengths: row 0 equals the prompt alone; each row has its own result', async () => {
    const m = randomBigramModel();
    const prompts = [[1, 2, 3], [4], [5, 6, 7, 8, 9]];
    const r = await generate(m, prompts, { maxTokens: 12, seed: 99, topLogprobs: 2 });
    expect(r.choices.map((c) => c.index)).toEqual([0, 1, 2]);
    expect(r.choices.map((c) => c.usage.prompt_tokens)).toEqual([3, 1, 5]);
    const alone = await generate(m, [prompts[0]!], { maxTokens: 12, seed: 99 });
    expect(r.choices[0]!.ids).toEqual(alone.choices[0]!.ids);
    // greedy rows equal their single runs exactly
    const g = await generate(m, prompts, { temperature: 0, maxTokens: 8 });
    for (let i = 0; i < prompts.length; i++)
      expect(g.choices[i]!.ids).toEqual(
        (await generate(m, [prompts[i]!], { temperature: 0, maxTokens: 8 })).choices[0]!.ids,
      );
  });

  it('prompts of equal length decode as one batch; each row equals its run alone; caches are freed', async () => {
    const m = randomBigramModel();
    const prompts = [[1, 2], [3, 4], [5, 6], [7]];
    // a stop token that row 0 produces early, so rows end at different steps
    const stop = (await generate(m, [prompts[0]!], { maxTokens: 3, seed: 21 })).choices[0]!.ids[2]!;
    m.calls = [];
    m.caches = [];
    const r = await generate(m, prompts, { maxTokens: 10, seed: 21, stopTokens: [stop], topLogprobs: 1 });
    const batched = m.calls.filter((c) => c.B === 3);
    expect(batched[0]).toEqual({ B: 3, T: 2, lastOnly: true, cacheBefore: 0 });
    expect(batched.length).toBeGreaterThan(1);
    expect(m.caches.every((c) => c.resets === 1)).toBe(true);
    const rows = await generate(m, prompts, { maxTokens: 10, seed: 21, stopTokens: [stop], batch: false });
    expect(m.calls.some((c) => c.B > 1 && m.calls.indexOf(c) > m.calls.indexOf(batched.at(-1)!))).toBe(false);
    for (let i = 0; i < prompts.length; i++) {
      expect(r.choices[i]!.ids).toEqual(rows.choices[i]!.ids);
      expect(r.choices[i]!.finish_reason).toEqual(rows.choices[i]!.finish_reason);
      expect(r.choices[i]!.index).toBe(i);
    }
    // rows end at different steps (a stop token) and the batch goes on for the others
    const lens = r.choices.slice(0, 3).map((c) => c.ids.length);
    expect(new Set(lens).size).toBeGreaterThan(1);
  });

  it('stream() with a seed gives the same tokens as generate() with it', async () => {
    const m = randomBigramModel(64);
    const codec = new ByteTokenizer();
    const ev = await collect(stream(m, codec, [1, 2], { maxTokens: 25, seed: 1234 }));
    const r = await generate(m, [[1, 2]], { maxTokens: 25, seed: 1234 });
    expect(ev.map((e) => e.id)).toEqual(r.choices[0]!.ids);
  });

  it('logprobs: OpenAI shape, model logprobs, alternatives from the same logits', async () => {
    const m = randomBigramModel(64);
    const r = await generate(m, [[1]], { maxTokens: 5, seed: 3, topLogprobs: 3, tokenizer: new ByteTokenizer() });
    const c = r.choices[0]!;
    expect(c.logprobs.content.length).toBe(5);
    for (const e of c.logprobs.content) {
      expect(e.top_logprobs.length).toBe(3);
      expect(e.logprob).toBeLessThanOrEqual(0);
      expect(e.bytes).toEqual([e.id]);
      expect(e.top_logprobs[0]!.logprob).toBeGreaterThanOrEqual(e.logprob);
      const lps = e.top_logprobs.map((t) => t.logprob);
      expect(lps).toEqual([...lps].sort((a, b) => b - a));
      expect(e.prob).toBeGreaterThan(0);
      expect(e.prob).toBeLessThanOrEqual(1);
    }
    expect(m.created).toBe(5); // one forward per token: no second pass for the probabilities
  });
});

describe('streaming and abort', () => {
  it('never splits a character: emoji bytes across tokens arrive as one piece', async () => {
    // "a" + 😀 (4 single-byte tokens) + "é" (2 bytes) + 😀 (2 two-byte tokens) + "hello"
    const script = [97, 0xf0, 0x9f, 0x98, 0x80, 0xc3, 0xa9, 258, 259, 257];
    const m = scriptedModel(script);
    const events = await collect(stream(m, tok, [1], { temperature: 0, maxTokens: script.length }));
    expect(events.map((e) => e.id)).toEqual(script);
    const pieces = events.map((e) => e.text);
    expect(pieces).toEqual(['a', '', '', '', '😀', '', 'é', '', '😀', 'hello']);
    for (const p of pieces) {
      expect(p).not.toContain('\uFFFD');
      expect(p).toBe(p.normalize()); // well-formed
      expect(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?:[^\uD800-\uDBFF]|^)[\uDC00-\uDFFF]/.test(p)).toBe(false);
    }
    expect(pieces.join('')).toBe(tok.decode(script));
  });

  it('with a real byte-level BPE tokenizer, streamed pieces are whole characters that join to decode(ids)', async () => {
    const { trainBpe } = await import('../src/tokenizer/index.js');
    const tk = trainBpe('héllo wörld 世界 😀 '.repeat(20), { vocabSize: 300 });
    const text = 'wörld 😀世界 héllo 🎉!';
    const ids = tk.encode(text);
    const m = scriptedModel(ids, tk.vocabSize);
    const events = await collect(stream(m, tokenizerCodec(tk), [0], { temperature: 0, maxTokens: ids.length }));
    expect(events.map((e) => e.id)).toEqual(ids);
    const pieces = events.map((e) => e.text);
    expect(pieces.join('')).toBe(text);
    expect(pieces.some((p) => p === '')).toBe(true); // some token ended inside a character and was held back
    for (const p of pieces)
      expect([...p].every((ch) => (ch.length === 2 ? ch.codePointAt(0)! > 0xffff : !/[\uD800-\uDFFF]/.test(ch)))).toBe(
        true,
      );
  });

  it('a stop string that starts inside a multi-byte character sequence still matches', async () => {
    const m = scriptedModel([...bytesOf('ok😀'), ...bytesOf('!!')]);
    const r = await generate(m, [1], { temperature: 0, stop: ['😀!'], tokenizer: tok });
    expect(r.choices[0]!.text).toBe('ok');
  });

  it('abort: a signal aborted mid-stream ends the iteration with the signal reason', async () => {
    const m = randomBigramModel();
    const ac = new AbortController();
    const seen: number[] = [];
    const run = async () => {
      for await (const e of stream(m, new ByteTokenizer(), [1], { maxTokens: 1000, seed: 1, signal: ac.signal })) {
        seen.push(e.id);
        if (seen.length === 3) ac.abort();
      }
    };
    await expect(run()).rejects.toMatchObject({ name: 'AbortError' });
    expect(seen.length).toBe(3);
  });

  it('abort: a timer can cancel generate() (the loop yields between tokens)', async () => {
    const m = randomBigramModel(64, 1_000_000);
    const signal = AbortSignal.timeout(30);
    await expect(generate(m, [[1]], { maxTokens: 1_000_000, seed: 1, signal })).rejects.toMatchObject({
      name: 'TimeoutError',
    });
    expect(m.calls.length).toBeLessThan(1_000_000); // stopped by the timer, not by running out of tokens
    const pre = AbortSignal.abort();
    await expect(generate(m, [[1]], { signal: pre })).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('stream: text prompt is encoded; stop token ends with flushed text and finishReason', async () => {
    const m = scriptedModel([0xe2, 0x82, EOS]); // first two bytes of € then eos
    const s = stream(m, tok, 'hi', { temperature: 0, stopTokens: [EOS] });
    const ev = await collect(s);
    expect(s.promptTokens).toBe(2);
    expect(ev.at(-1)).toMatchObject({ id: EOS, isStopToken: true, finishReason: 'stop', text: '\uFFFD' });
    expect(s.finishReason).toBe('stop');
  });
});
