/**
 * A small feedback store with every judgment kind, shared by the feedback tests: two checkpoints (fake weight files),
 * one conversation with a system prompt, three sibling replies to the first question and a second turn.
 *
 *   s  system "Be brief."
 *   └ u1 user "Capital of France?"
 *     ├ a1 "Lyon."           (checkpoint A)   ├ e1 correction of a1 by alice
 *     ├ a2 "Paris."          (checkpoint A)   └ u2 user "And Germany?" (under a2)
 *     └ a3 "Paris, France."  (checkpoint B)      ├ a4 "Bonn."  (checkpoint B)
 *                                                ├ e2 correction of a4 by carol
 *                                                └ e3 correction of e2 by dave
 */
import fs from 'node:fs';
import path from 'node:path';
import type { FeedbackStore } from '../src/feedback/store.js';

export function fakeCheckpoint(dir: string, bytes: string): string {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'model.safetensors'), bytes);
  return dir;
}

/** A clock that advances one second a call, from a fixed start (reproducible timestamps). */
export function fakeClock(start = Date.UTC(2026, 0, 1)): () => Date {
  let t = start;
  return () => new Date((t += 1000));
}

export function buildScenario(store: FeedbackStore, dir: string) {
  const hashA = store.registerCheckpoint(fakeCheckpoint(path.join(dir, 'ckA'), 'weights of A'));
  const hashB = store.registerCheckpoint(fakeCheckpoint(path.join(dir, 'ckB'), 'weights of B'));
  const conv = store.createConversation('capitals');
  const s = store.addMessage({ conversationId: conv.id, parentId: null, role: 'system', content: 'Be brief.' });
  const u1 = store.addMessage({
    conversationId: conv.id,
    parentId: s.id,
    role: 'user',
    content: 'Capital of France?',
    author: 'alice',
  });
  const reply = (parentId: number, content: string, checkpointHash: string, seed: number) =>
    store.recordReply({
      parentId,
      content,
      checkpointHash,
      seed,
      sampler: { temperature: 0.8, top_p: 0.95 },
      logprobs: [{ token: content.slice(0, 2), logprob: -0.5, top_logprobs: [{ token: 'x', logprob: -2 }] }],
    });
  const a1 = reply(u1.id, 'Lyon.', hashA, 1);
  const a2 = reply(u1.id, 'Paris.', hashA, 2);
  const a3 = reply(u1.id, 'Paris, France.', hashB, 3);
  const u2 = store.addMessage({ conversationId: conv.id, parentId: a2.id, role: 'user', content: 'And Germany?' });
  const a4 = reply(u2.id, 'Bonn.', hashB, 4);

  const j = {
    j1: store.addJudgment({ kind: 'thumbs', rater: 'alice', messageId: a1.id, value: 'down', reasons: ['fails_task'] }),
    j2: store.addJudgment({ kind: 'thumbs', rater: 'alice', messageId: a2.id, value: 'up' }),
    j3: store.addJudgment({
      kind: 'edit',
      rater: 'alice',
      messageId: a1.id,
      content: 'Paris is the capital of France.',
    }),
    j4: store.addJudgment({ kind: 'choice', rater: 'alice', messageIds: [a1.id, a2.id], value: 'b' }),
    j5: store.addJudgment({ kind: 'choice', rater: 'bob', messageIds: [a2.id, a3.id], value: 'tie' }),
    j6: store.addJudgment({ kind: 'choice', rater: 'bob', messageIds: [a1.id, a3.id], value: 'both_bad' }),
    j7: store.addJudgment({
      kind: 'ranking',
      rater: 'oracle:length',
      messageIds: [a1.id, a2.id, a3.id],
      ranking: [1, 2, 0],
    }),
    j8: store.addJudgment({ kind: 'flag', rater: 'bob', messageId: a1.id, reasons: ['fails_task', 'spam'] }),
    j9: store.addJudgment({ kind: 'thumbs', rater: 'bob', messageId: a3.id, value: 'down' }),
    j10: store.addJudgment({ kind: 'thumbs', rater: 'bob', messageId: a3.id, value: 'up' }),
    j11: store.addJudgment({ kind: 'edit', rater: 'carol', messageId: a4.id, content: 'Berlin.' }),
  };
  const e1 = store.message(j.j3.editMessageId!);
  const e2 = store.message(j.j11.editMessageId!);
  const j12 = store.addJudgment({ kind: 'edit', rater: 'dave', messageId: e2.id, content: 'Berlin, since 1990.' });
  const e3 = store.message(j12.editMessageId!);
  return { hashA, hashB, conv, s, u1, a1, a2, a3, u2, a4, e1, e2, e3, ...j, j12 };
}
