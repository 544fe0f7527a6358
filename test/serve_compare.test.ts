// Compare (src/server/compare_route.ts): two checkpoints answer one stored user turn with the same seed, both replies
// are recorded under it with their own checkpoint's hash, and the choices made on such pairs add up to the
// candidate's win rate with Wilson's 95 % interval (checked against hand-computed values).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadServedModel } from '../src/cli/serve.js';
import { FeedbackStore } from '../src/feedback/store.js';
import { compareRoute, wilson } from '../src/server/compare_route.js';
import { feedbackRoute } from '../src/server/feedback_api.js';
import { createServer, type LlmServer } from '../src/server/server.js';
import { fakeCheckpoint } from './feedback_helpers.js';
import { FakeModel } from './generate_fakes.js';
import { makeTinyModel } from './sft_helpers.js';

let tmp: string;
let store: FeedbackStore;
let server: LlmServer;
let url: string;
const SAID = 'b'.repeat(8); // the candidate's every reply: max_tokens 8 of one token

async function post(p: string, body: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${url}${p}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'llmts-serve-compare-'));
  const baseDir = path.join(tmp, 'base');
  await makeTinyModel(baseDir, { context: 128 });
  const base = await loadServedModel(baseDir, { backend: 'ref', modelName: 'base' });
  // the candidate: the same tokenizer and template, a model that always says 'b' (so its reply is SAID)
  const b = base.codec.encodePlain!('b')[0]!;
  const V = base.model.config.vocabSize;
  const model = new FakeModel({ vocabSize: V, maxPositions: 128 }, () => {
    const logits = new Float32Array(V).fill(-30);
    logits[b] = 30;
    return logits;
  });
  const candidate = { served: { ...base, name: 'candidate', model }, dir: fakeCheckpoint(path.join(tmp, 'cand'), 'c') };
  store = FeedbackStore.open(path.join(tmp, 'f.sqlite'));
  server = createServer({
    served: base,
    port: 0,
    routes: [feedbackRoute(store)],
    stateRoutes: (state) => [compareRoute(state, store, { served: base, dir: baseDir }, candidate)],
  });
  url = await server.listen();
}, 60_000);

afterAll(async () => {
  await server?.close();
  store?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('Wilson score interval', () => {
  it('matches values computed by hand (z = 1.96)', () => {
    const [lo, hi] = wilson(1, 2);
    expect(lo).toBeCloseTo(0.0945, 4);
    expect(hi).toBeCloseTo(0.9055, 4);
    const [lo1, hi1] = wilson(1, 1);
    expect(lo1).toBeCloseTo(0.2065, 4);
    expect(hi1).toBe(1);
    const [lo2, hi2] = wilson(8, 10); // p = 0.8, n = 10
    expect(lo2).toBeCloseTo(0.4902, 4);
    expect(hi2).toBeCloseTo(0.9433, 4);
    expect(wilson(0, 0)).toEqual([0, 1]);
  });
});

describe('POST /api/compare and the running score', () => {
  async function ask(content: string) {
    const c = (await post('/api/conversations', { title: 'compare' })).json['id'] as number;
    const u = (await post(`/api/conversations/${c}/messages`, { parent_id: null, role: 'user', content })).json;
    const r = await post('/api/compare', { parent_id: u['id'], max_tokens: 8 });
    expect(r.status).toBe(201);
    const ids = r.json['message_ids'] as [number, number];
    const replies = r.json['replies'] as [string, string];
    const cand = replies.indexOf(SAID);
    expect(cand).toBeGreaterThanOrEqual(0);
    return { user: u['id'] as number, ids, replies, cand, seed: r.json['seed'] as number };
  }

  it('records both replies under the turn, with the same seed and each checkpoint’s hash', async () => {
    const r = await ask('color red');
    const [x, y] = r.ids.map((id) => store.message(id));
    expect([x!.parentId, y!.parentId]).toEqual([r.user, r.user]);
    expect([x!.content, y!.content]).toEqual(r.replies);
    expect([x!.seed, y!.seed]).toEqual([r.seed, r.seed]);
    expect(new Set([x!.checkpointHash, y!.checkpointHash]).size).toBe(2);
  });

  it('counts choices on the pairs as the candidate’s wins and losses, each rater’s latest per pair', async () => {
    const empty = (await (await fetch(`${url}/api/compare`)).json()) as Record<string, unknown>;
    expect(empty).toMatchObject({ wins: 0, losses: 0, win_rate: null, ci95: [0, 1] });
    expect((empty['candidate'] as { name: string }).name).toBe('candidate');
    const choose = async (pair: Awaited<ReturnType<typeof ask>>, rater: string, forCandidate: boolean) => {
      const pick = forCandidate ? pair.cand : 1 - pair.cand;
      const r = await post('/api/judgments', {
        kind: 'choice',
        rater,
        message_ids: pair.ids,
        value: pick === 0 ? 'a' : 'b',
      });
      expect(r.status).toBe(201);
    };
    const p1 = await ask('color blue');
    const p2 = await ask('color green');
    await choose(p1, 'ann', false); // superseded by ann's next choice on the same pair
    await choose(p1, 'ann', true);
    await choose(p2, 'ann', false);
    await post('/api/judgments', { kind: 'choice', rater: 'bob', message_ids: p2.ids, value: 'tie' });
    const s = (await (await fetch(`${url}/api/compare`)).json()) as Record<string, unknown>;
    expect(s).toMatchObject({ wins: 1, losses: 1, ties: 1, both_bad: 0, win_rate: 0.5 });
    const [lo, hi] = s['ci95'] as [number, number];
    expect(lo).toBeCloseTo(0.0945, 4);
    expect(hi).toBeCloseTo(0.9055, 4);
  });

  it('refuses a bad parent', async () => {
    expect((await post('/api/compare', { parent_id: 99999 })).status).toBe(404);
    expect((await post('/api/compare', { parent_id: 'x' })).status).toBe(400);
    expect((await post('/api/compare', { parent_id: 1, colour: 1 })).status).toBe(400);
  });
});
