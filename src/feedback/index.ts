/** The feedback layer: the SQLite store of conversations and judgments, its schema, export to TRL JSONL, stats. */
export { FeedbackStore, checkRater, MAX_TEXT, MAX_RANKED, MAX_RATER, type StoreOptions } from './store.js';
export {
  openDatabase,
  migrate,
  createDatabaseFile,
  schemaVersion,
  MIGRATIONS,
  SCHEMA_VERSION,
  APPLICATION_ID,
  type Migration,
  type OpenOptions,
} from './schema.js';
export { checkpointHash, weightFiles } from './checkpoint_hash.js';
export { exportFeedback, currentJudgments, EXPORT_TYPES, type ExportType, type ExportResult } from './export.js';
export { feedbackStats, formatStats, type FeedbackStats, type CheckpointStats } from './stats.js';
export { FeedbackInputError, UnknownRecordError, FeedbackDatabaseError } from './errors.js';
export * from './types.js';
