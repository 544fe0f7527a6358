// Closing the loop end to end (issue 12), over HTTP only, on a tiny model: a scripted rater talks to `llmts serve`'s
// API as the page does — a conversation, a user turn, two replies linked to it, a choice between them, and a
// correction of a reply it does not like — on training prompts; "Improve the model" (POST /api/improve) trains SFT on
// the corrections then DPO on the choices, in child processes (lr 2e-4: at 1e-3 DPO drives this tiny model's rejected
// log-probabilities down until its replies are byte noise, though its held-out pair accuracy reads 100 %); then a blind
// Compare of the old and the new checkpoint on prompts the rater never judged before, judged by the same rater: the
// new checkpoint's replies win more often than the old one's (the lower end of Wilson's 95 % interval above ½).
// The model: a tiny GPT-2 taught by SFT (in-process, seconds) to answer "color X" in two styles half the time each,
// "I like X." and "I like X!"; the rater (a stand-in for a person with a taste) prefers the reply that ends with '.'.
// Nothing but its choices, through the store, tells the model so. Feedback is given on four colours; the comparison
// asks about all six with other wording, so its prompts were never judged.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sft } from '../src/align/sft.js';
import { buildSftConfig } from '../src/align/sft_settings.js';
import { loadServedModel } from '../src/cli/serve.js';
import { FeedbackStore } from '../src/feedback/store.js';
import { compareRoute } from '../src/server/compare_route.js';
import { feedbackRoute, replyRecorder } from '../src/server/feedback_api.js';
import { ImproveJob, improveRoute } from '../src/server/improve_job.js';
import { replyLinker } from '../src/server/reply_link.js';
import { createServer, type LlmServer } from '../src/server/server.js';
import { Rng } from '../src/util/rng.js';
import { ensureCliBuilt } from './helpers.js';
import { quiet } from './ppo_helpers.js';
import { COLORS, makeTinyModel, writeJsonl } from './sft_helpers.js';

const TRAIN_PROMPTS = 48;
const HELD_PROMPTS = 60;
const MAX_TOKENS = 12;

/** The scripted rater: a reply ending with '.' is better; otherwise a tie. */
const taste = (reply: string) => (reply.trim().endsWith('.') ? 1 : 0);
const choose = (a: string, b: string): 'a' | 'b' | 'tie' =>
  taste(a) > taste(b) ? 'a' : taste(a) < taste(b) ? 'b' : 'tie';

let tmp: string;
let modelDir: string;
let store: FeedbackStore;

// biome-ignore lint/suspicious/noExplicitAny: answers are JSON, read field by field
async function post(url: string, p: string, body: unknown): Promise<any> {
  const res = await fetch(`${url}${p}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const j = await res.json();
  if (res.status >= 300) throw new Error(`${p}: ${res.status} ${JSON.stringify(j)}`);
  return j;
}

/** A stored conversation with one user turn; the turn's id. */
async function userTurn(url: string, content: string): Promise<number> {
  const c = await post(url, '/api/conversations', {});
  const m = await post(url, `/api/conversations/${c.id}/messages`, { parent_id: null, role: 'user', content });
  return m.id as number;
}

beforeAll(async () => {
  ensureCliBuilt();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'llmts-serve-loop-'));
  const base = path.join(tmp, 'base');
  await makeTinyModel(base, { context: 128 });
  const rng = new Rng(11);
  const rows = Array.from({ length: 240 }, (_, i) => {
    const c = COLORS[i % COLORS.length]!;
    const q = i % 4 < 2 ? `color ${c}` : `which color? ${c}`;
    return {
      messages: [
        { role: 'user', content: q },
        { role: 'assistant', content: `I like ${c}${rng.random() < 0.5 ? '.' : '!'}` },
      ],
    };
  });
  const s = await sft({
    ...quiet,
    config: buildSftConfig({
      preset: 'tiny',
      overrides: {
        model: base,
        data: [writeJsonl(path.join(tmp, 'sft.jsonl'), rows)],
        outDir: path.join(tmp, 'runs'),
        name: 'sft',
        backend: 'wasm',
        quiet: true,
        maxSteps: 300,
        batchSize: 16,
        lr: 3e-3,
        minLr: 3e-4,
        epochs: 100,
      },
    }),
  });
  modelDir = s.checkpointDir;
  store = FeedbackStore.open(path.join(tmp, 'feedback.sqlite'));
}, 60_000);

afterAll(() => {
  store?.close();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe('the loop: a rater’s feedback through the API → Improve → the new checkpoint wins the blind Compare', () => {
  it('wins more often than the old one, by the same rater, on prompts it never judged', async () => {
    // 1. the rater chats and chooses, through the HTTP API only
    const served = await loadServedModel(modelDir, { backend: 'ref', modelName: 'tiny' });
    const job = new ImproveJob({
      store,
      modelDir,
      outDir: path.join(tmp, 'runs'),
      backend: 'wasm',
      name: () => 'loop',
    });
    const server: LlmServer = createServer({
      served,
      port: 0,
      routes: [feedbackRoute(store), improveRoute(job)],
      replyLinker: replyLinker(store, replyRecorder(store, modelDir)),
    });
    const url = await server.listen();
    let checkpoint: string;
    try {
      let decided = 0;
      let corrected = 0;
      for (let i = 0; i < TRAIN_PROMPTS; i++) {
        const content = `color ${COLORS[i % 4]}`;
        const parent = await userTurn(url, content);
        const replies: { id: number; text: string }[] = [];
        for (const seed of [2 * i + 1, 2 * i + 2]) {
          const r = await post(url, '/v1/chat/completions', {
            model: 'tiny',
            messages: [{ role: 'user', content }],
            max_tokens: MAX_TOKENS,
            temperature: 1,
            seed,
            llmts: { parent_id: parent },
          });
          replies.push({ id: r.llmts.message_ids[0], text: r.choices[0].message.content });
        }
        const value = choose(replies[0]!.text, replies[1]!.text);
        if (value !== 'tie') decided++;
        // and, as a person may, corrects the first reply when it does not end as it likes
        if (!taste(replies[0]!.text)) {
          await post(url, '/api/judgments', {
            kind: 'edit',
            rater: 'oracle:full-stop',
            message_id: replies[0]!.id,
            content: replies[0]!.text.replace(/[!?]*$/, '.'),
          });
          corrected++;
        }
        await post(url, '/api/judgments', {
          kind: 'choice',
          rater: 'oracle:full-stop',
          message_ids: [replies[0]!.id, replies[1]!.id],
          value,
        });
      }
      expect(decided).toBeGreaterThan(TRAIN_PROMPTS / 2);
      // 2. Improve the model: DPO on the choices, in a child process
      const started = await post(url, '/api/improve', { steps: 40, lr: 2e-4 });
      // each correction is an sft row and a preference of the correction over the original
      expect(started.rows).toEqual({ sft: corrected, preference: decided + corrected, kto: 0 });
      let state: { state: string; log: string[]; checkpoint: string | null };
      for (;;) {
        state = await (await fetch(`${url}/api/improve`)).json();
        if (state.state !== 'running') break;
        await new Promise((r) => setTimeout(r, 250));
      }
      expect(state.state, state.log.join('\n')).toBe('done');
      checkpoint = state.checkpoint!;
    } finally {
      await server.close();
    }

    // 3. blind Compare of old (base) and new (candidate) on held-out prompts, judged by the same rater
    const improved = await loadServedModel(checkpoint, { backend: 'ref', modelName: 'tiny' });
    const base = { served, dir: modelDir };
    const candidate = { served: { ...improved, name: 'improved' }, dir: checkpoint };
    const compare = createServer({
      served,
      port: 0,
      routes: [feedbackRoute(store)],
      stateRoutes: (state) => [compareRoute(state, store, base, candidate)],
    });
    const curl = await compare.listen();
    const oldTaste: number[] = [];
    const newTaste: number[] = [];
    const oldHash = (await (await fetch(`${curl}/api/compare`)).json()).base.hash;
    try {
      for (let i = 0; i < HELD_PROMPTS; i++) {
        const parent = await userTurn(curl, `which color? ${COLORS[i % COLORS.length]}`);
        const c = await post(curl, '/api/compare', {
          parent_id: parent,
          max_tokens: MAX_TOKENS,
          temperature: 1,
          seed: 5000 + i,
        });
        await post(curl, '/api/judgments', {
          kind: 'choice',
          rater: 'oracle:full-stop',
          message_ids: c.message_ids,
          value: choose(c.replies[0], c.replies[1]),
        });
        for (let k = 0; k < 2; k++) {
          const m = await (await fetch(`${curl}/api/messages/${c.message_ids[k]}`)).json();
          (m.checkpoint_hash === oldHash ? oldTaste : newTaste).push(taste(c.replies[k]));
        }
      }
      const stats = await (await fetch(`${curl}/api/compare`)).json();
      console.log(
        `the loop: improved vs old, judged blind by the rater on ${HELD_PROMPTS} new prompts: ` +
          `${stats.wins} wins, ${stats.losses} losses, ${stats.ties} ties; win rate ${stats.win_rate.toFixed(3)} ` +
          `(95 % CI ${stats.ci95[0].toFixed(3)}–${stats.ci95[1].toFixed(3)})`,
      );
      const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
      console.log(`replies ending with '.': old ${mean(oldTaste).toFixed(2)}, improved ${mean(newTaste).toFixed(2)}`);
      expect(stats.wins + stats.losses).toBeGreaterThan(HELD_PROMPTS / 3);
      expect(stats.ci95[0]).toBeGreaterThan(0.5);
      expect(mean(newTaste)).toBeGreaterThan(mean(oldTaste) + 0.15);
    } finally {
      await compare.close();
    }
  }, 300_000);
});
