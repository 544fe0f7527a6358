/**
 * Linking a chat completion to the feedback store: the request names the user message it answers, the server records
 * each reply under it before the response ends, and the response says where they went, so the page can judge the
 * exact reply.
 *
 *   request   {"model", "messages": [...], …, "llmts": {"parent_id": 12}}
 *             parent_id: the store's id of the user message the last request message is; the path from its
 *             conversation's root to it must be the request's messages, role by role and text by text (400 else)
 *   response  {…, "llmts": {"conversation_id": 3, "parent_id": 12, "message_ids": [13, …]}}
 *             message_ids: the stored reply of each choice, by index. A stream sends it in one chunk of its own
 *             (`choices: []`) before `data: [DONE]`.
 *
 * A request without `llmts` is served as before and not recorded (an OpenAI client that knows nothing of the store).
 * A reply whose client went away is not recorded. The records are one transaction each (the store's own), written
 * inside the request's turn before the last bytes go out: a response that says `message_ids` has them on disk.
 */
import type { ChatMessage } from '../chat/template.js';
import { FeedbackInputError, UnknownRecordError } from '../feedback/errors.js';
import type { FeedbackStore } from '../feedback/store.js';
import type { TokenLogprob } from '../feedback/types.js';
import { HttpError } from './routes.js';

/** What the request's `llmts` field says once checked: the user message the replies answer. */
export interface ReplyLinkPlan {
  conversationId: number;
  parentId: number;
}

/** One finished choice as the linker records it. */
export interface LinkedChoice {
  text: string;
  seed: number;
  /** Each generated token with its log-probability (and alternatives, when the request asked for them). */
  logprobs: TokenLogprob[];
}

/** The response's `llmts` field. */
export interface ReplyLinkAnswer {
  conversation_id: number;
  parent_id: number;
  message_ids: number[];
}

export interface ReplyLinker {
  /** Check a request's `llmts` field against its messages before it generates; throws HttpError 400 / 404. */
  check(link: unknown, messages: readonly ChatMessage[]): ReplyLinkPlan;
  /** Record each choice under the plan's parent; the answer is the response's `llmts` field. */
  record(plan: ReplyLinkPlan, sampler: Record<string, unknown>, choices: readonly LinkedChoice[]): ReplyLinkAnswer;
}

function bad(param: string, message: string, status = 400): HttpError {
  return new HttpError(status, `${param}: ${message}`, 'invalid_request_error', param, 'bad_llmts_link');
}

/** A linker over `store`; `recordReply` is the store's reply recorder for the served checkpoint (feedback_api.ts). */
export function replyLinker(
  store: FeedbackStore,
  recordReply: (r: {
    parentId: number;
    content: string;
    sampler: Record<string, unknown>;
    seed: number;
    logprobs: TokenLogprob[];
  }) => { id: number },
): ReplyLinker {
  return {
    check(link, messages) {
      if (typeof link !== 'object' || link === null || Array.isArray(link))
        throw bad('llmts', 'expected an object {"parent_id": <id of the user message>}');
      for (const k of Object.keys(link))
        if (k !== 'parent_id') throw bad(`llmts.${k}`, 'unknown field; expected parent_id');
      const parentId = (link as { parent_id?: unknown }).parent_id;
      if (typeof parentId !== 'number' || !Number.isSafeInteger(parentId) || parentId < 1)
        throw bad('llmts.parent_id', `expected the id of a stored user message, got ${JSON.stringify(parentId)}`);
      let path: ChatMessage[];
      let conversationId: number;
      try {
        const p = store.pathTo(parentId);
        conversationId = p[p.length - 1]!.conversationId;
        path = p.map((m) => ({ role: m.role, content: m.content }));
      } catch (e) {
        if (e instanceof UnknownRecordError) throw bad('llmts.parent_id', `no message ${parentId} in the store`, 404);
        throw e;
      }
      if (path[path.length - 1]!.role !== 'user')
        throw bad('llmts.parent_id', `message ${parentId} is a ${path[path.length - 1]!.role} message, not a user one`);
      const same =
        path.length === messages.length &&
        path.every((m, i) => m.role === messages[i]!.role && m.content === messages[i]!.content);
      if (!same)
        throw bad(
          'llmts.parent_id',
          `the messages are not the stored conversation up to message ${parentId} (${path.length} stored, ${messages.length} sent); send that path`,
        );
      return { conversationId, parentId };
    },
    record(plan, sampler, choices) {
      try {
        const ids = choices.map(
          (c) =>
            recordReply({
              parentId: plan.parentId,
              content: c.text,
              sampler,
              seed: c.seed,
              logprobs: c.logprobs,
            }).id,
        );
        return { conversation_id: plan.conversationId, parent_id: plan.parentId, message_ids: ids };
      } catch (e) {
        if (e instanceof FeedbackInputError)
          throw new HttpError(500, `recording the reply: ${e.message}`, 'server_error');
        throw e;
      }
    },
  };
}
