/** The model-agnostic training loop: settings, the loop, checkpoints with exact resume, metrics, reports, estimates. */
export {
  RUN_SETTINGS,
  OPTIM_SETTINGS,
  EVAL_SETTINGS,
  DISPLAY_SETTINGS,
  LOOP_SETTINGS,
  type TrainSettings,
} from './settings.js';
export { learningRate, makeSchedule, type ScheduleOptions } from '../optim/schedule.js';
export {
  Trainer,
  dropoutSeed,
  type TrainableModel,
  type BatchSource,
  type LoopConfig,
  type LoopState,
  type TrainerHooks,
  type TrainerOptions,
  type StepResult,
} from './trainer.js';
export {
  saveTrainingCheckpoint,
  readTrainerState,
  readOptimizerState,
  resolveCheckpointDir,
  checkSameShape,
  TRAINER_STATE,
  OPTIMIZER_STATE,
  type TrainerStateFile,
} from './checkpoint.js';
export {
  MetricsLog,
  readMetrics,
  detectOverfitting,
  detectStuck,
  detectDiverged,
  type MetricRecord,
  type StepRecord,
  type EvalRecord,
  type SampleRecord,
  type WarningRecord,
} from './metrics.js';
export { writeReport, renderReport, chartJsSource, type ReportInput } from './report.js';
export {
  makeProgress,
  BarProgress,
  LineProgress,
  QuietProgress,
  formatDuration,
  type Progress,
  type ProgressUpdate,
} from './progress.js';
export { sampleIds, type SampleOptions, type SamplingModel } from './sample.js';
export { runTraining } from './run.js';
export {
  openRun,
  latestRun,
  runStamp,
  type RecipeOptions,
  type RecipeResult,
  type RunSettings,
  type RunSpec,
  type OpenedRun,
} from './recipe.js';
