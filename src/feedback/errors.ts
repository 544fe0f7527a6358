/**
 * The feedback store's named errors. A bad action (a judgment on a message that does not exist, an edit of a user
 * message, a ranking that is not a permutation …) is a FeedbackInputError naming the field and what was expected;
 * an id that names nothing is an UnknownRecordError (the HTTP API answers 404 for it, 400 for the other); a file that
 * is not a feedback database, or one written by a newer llm.ts, is a FeedbackDatabaseError naming the file.
 */
import { LlmtsError } from '../util/errors.js';

/** A feedback action with a bad field: which field, what was wrong, what was expected. */
export class FeedbackInputError extends LlmtsError {
  readonly field: string;
  constructor(code: string, field: string, message: string) {
    super(code, `${field}: ${message}`);
    this.field = field;
  }
}

/** An id that names no conversation, message or judgment in the store. */
export class UnknownRecordError extends FeedbackInputError {
  readonly what: 'conversation' | 'message' | 'judgment' | 'checkpoint';
  readonly id: number | string;
  constructor(what: 'conversation' | 'message' | 'judgment' | 'checkpoint', field: string, id: number | string) {
    super(`E_UNKNOWN_${what.toUpperCase()}`, field, `no ${what} with id ${JSON.stringify(id)} in the feedback store`);
    this.what = what;
    this.id = id;
  }
}

/** The same error about a field inside `where` (the k-th action of a batch): `judgments[3].message_id`. */
export function inField(e: FeedbackInputError, where: string): FeedbackInputError {
  const field = `${where}.${e.field}`;
  if (e instanceof UnknownRecordError) return new UnknownRecordError(e.what, field, e.id);
  return new FeedbackInputError(e.code, field, e.message.slice(e.field.length + 2));
}

/** The database file itself: missing, not SQLite, not a feedback store, or of a newer schema. */
export class FeedbackDatabaseError extends LlmtsError {
  readonly file: string;
  constructor(code: string, file: string, message: string) {
    super(code, `${file}: ${message}`);
    this.file = file;
  }
}
