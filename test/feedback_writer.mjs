/**
 * The child process of test/feedback_durability.test.ts: writes a stream of feedback actions (thumbs, choices,
 * edits) into a store as fast as it can, printing each judgment's id and what it was right after its transaction
 * commits, until it is killed. Runs the built library (dist/).
 */
import { FeedbackStore } from '../dist/feedback/store.js';

const [file, checkpoint] = process.argv.slice(2);
const store = FeedbackStore.open(file);
const hash = store.registerCheckpoint(checkpoint);
const c = store.createConversation('durability');
const u = store.addMessage({ conversationId: c.id, parentId: null, role: 'user', content: 'question' });
const a = store.recordReply({ parentId: u.id, content: 'reply A', checkpointHash: hash, seed: 1 });
const b = store.recordReply({ parentId: u.id, content: 'reply B', checkpointHash: hash, seed: 2 });
process.stdout.write(`ready ${a.id} ${b.id}\n`);
for (let i = 0; i < 1_000_000; i++) {
  const rater = `rater${i % 7}`;
  let j;
  if (i % 3 === 0) j = store.addJudgment({ kind: 'thumbs', rater, messageId: a.id, value: i % 2 ? 'up' : 'down' });
  else if (i % 3 === 1) j = store.addJudgment({ kind: 'choice', rater, messageIds: [a.id, b.id], value: 'b' });
  else j = store.addJudgment({ kind: 'edit', rater, messageId: b.id, content: `correction ${i}` });
  process.stdout.write(`${j.id} ${j.kind} ${i}\n`);
}
