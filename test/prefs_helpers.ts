/**
 * Synthetic preference data for the reward / DPO tests: the user asks for a colour; both replies name colours, are
 * the same length in tokens, and the preferred one ends with '.' while the other ends with '!'. A model that learns
 * the preference learns that feature. `shuffled`: chosen and rejected swapped at random (a control with no signal).
 * `longer`: the preferred reply is the longer one (a length-hacking preference).
 */
import { COLORS } from './sft_helpers.js';
import { Rng } from '../src/util/rng.js';

type Msg = { role: 'user' | 'assistant'; content: string };

export function prefRows(
  n: number,
  seed: number,
  o: { shuffled?: boolean; plain?: boolean; offset?: number; longer?: boolean } = {},
): Record<string, unknown>[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, (_, i) => {
    const a = COLORS[rng.int(COLORS.length)]!,
      b = COLORS[rng.int(COLORS.length)]!;
    const prompt = `color ${a} ${i + (o.offset ?? 0)}`;
    let good = `I like ${b}.`,
      bad = `I like ${b}!`;
    if (o.longer)
      [good, bad] = rng.int(2)
        ? [`I like ${b} and ${a} a lot.`, `I like ${b}.`]
        : [`I like ${b} a lot!`, `I like ${b}!`];
    if (o.shuffled && rng.int(2) === 1) [good, bad] = [bad, good];
    if (o.plain) return { prompt: `${prompt}\n`, chosen: good, rejected: bad };
    const u = (c: string): Msg[] => [{ role: 'user', content: c }];
    const asst = (c: string): Msg[] => [{ role: 'assistant', content: c }];
    return { prompt: u(prompt), chosen: asst(good), rejected: asst(bad) };
  });
}
