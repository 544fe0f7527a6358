/**
 * What the feedback store holds, as the library sees it (camelCase; the HTTP API writes the same objects in
 * snake_case). Conversations are Open-Assistant message trees; judgments are one rater's verdicts. The vocabulary:
 *
 *   kind      target                         value                      reasons
 *   thumbs    one model reply or correction  'up' | 'down'              labels (thumbs down only)
 *   flag      one message of any role        null                       ≥ 1 label of FLAG_REASONS
 *   edit      one assistant reply            null (the correction is a new sibling message, `editMessageId`)
 *   choice    two sibling replies, A and B   'a' | 'b' | 'tie' | 'both_bad'
 *   ranking   K ≥ 2 sibling replies          null (the order is in `items[].rank`, 0 = best)
 */

export type Role = 'system' | 'user' | 'assistant';

export const JUDGMENT_KINDS = ['thumbs', 'flag', 'edit', 'choice', 'ranking'] as const;
export type JudgmentKind = (typeof JUDGMENT_KINDS)[number];

export const THUMBS = ['up', 'down'] as const;
export const CHOICES = ['a', 'b', 'tie', 'both_bad'] as const;
export type Thumbs = (typeof THUMBS)[number];
export type Choice = (typeof CHOICES)[number];

/**
 * Open-Assistant's flags (its boolean labels for a message): why a message is bad. Thumbs down may carry them too.
 */
export const FLAG_REASONS = [
  'spam',
  'fails_task',
  'not_appropriate',
  'pii',
  'hate_speech',
  'sexual_content',
  'lang_mismatch',
  'moral_judgement',
  'political_content',
] as const;
export type FlagReason = (typeof FLAG_REASONS)[number];

/** One alternative token the model weighed (OpenAI's `top_logprobs` entry). */
export interface TopLogprob {
  token: string;
  logprob: number;
  bytes?: number[] | null;
}
/** One generated token with its log-probability (OpenAI's `logprobs.content` entry). */
export interface TokenLogprob extends TopLogprob {
  top_logprobs?: TopLogprob[];
}

export interface Conversation {
  id: number;
  title: string;
  createdAt: string;
  updatedAt: string;
  messageCount: number;
}

export interface Message {
  id: number;
  conversationId: number;
  /** null at a root. */
  parentId: number | null;
  role: Role;
  content: string;
  /** The rater who wrote it (user and system turns, corrections); null for a model reply. */
  author: string | null;
  /** A correction: the reply it corrects (a sibling). */
  editOf: number | null;
  /** A model reply: sha256 of the checkpoint's weights. */
  checkpointHash: string | null;
  /** A model reply: the sampler settings (temperature, top_p, …). */
  sampler: Record<string, unknown> | null;
  seed: number | null;
  logprobs: TokenLogprob[] | null;
  createdAt: string;
}

export interface JudgmentItem {
  messageId: number;
  /** Ranking: 0 = best. Choice: null (the value says which won). */
  rank: number | null;
}

export interface Judgment {
  id: number;
  kind: JudgmentKind;
  rater: string;
  /** thumbs / flag / edit: the judged message; choice: A; ranking: the first shown. */
  messageId: number;
  value: string | null;
  reasons: string[];
  /** edit: the correction (a new sibling message). */
  editMessageId: number | null;
  /** choice and ranking: the replies in the order shown (choice: A, B). Empty for the other kinds. */
  items: JudgmentItem[];
  createdAt: string;
}

/** A feedback action as a caller gives it (validated by the store: see FeedbackInputError). */
export type JudgmentInput =
  | { kind: 'thumbs'; rater: string; messageId: number; value: Thumbs; reasons?: string[] }
  | { kind: 'flag'; rater: string; messageId: number; reasons: string[] }
  | { kind: 'edit'; rater: string; messageId: number; content: string }
  | { kind: 'choice'; rater: string; messageIds: [number, number]; value: Choice }
  | { kind: 'ranking'; rater: string; messageIds: number[]; ranking: number[] };

/** A person's or a system prompt's turn. Assistant turns come from `recordReply` (model) or an edit judgment. */
export interface MessageInput {
  conversationId: number;
  /** null: a root message. */
  parentId: number | null;
  role: 'system' | 'user';
  content: string;
  author?: string | null;
}

/** A finished model reply, as the server hands it over. */
export interface ReplyInput {
  /** The user message it answers. */
  parentId: number;
  content: string;
  /** sha256 of the weights, from `store.registerCheckpoint(dir)`. */
  checkpointHash: string;
  sampler?: Record<string, unknown> | null;
  seed?: number | null;
  logprobs?: TokenLogprob[] | null;
}
