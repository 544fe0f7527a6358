/**
 * `llmts rloo`: RLOO, REINFORCE with a leave-one-out baseline (src/align/rloo.ts), on the command-line pattern of
 * `llmts ppo`:
 *
 *   llmts rloo <sft-dir> --reward <reward.mjs> <prompts.jsonl …> [--preset=NAME] [--config=FILE.json] [--key=value …]
 *   llmts rloo <sft-dir> --rewardModel <rm-dir> <prompts.jsonl …> …
 *   llmts rloo --resume[=runs/NAME]          continue a run exactly where it stopped
 *   llmts rloo --report-only runs/NAME       (re)write runs/NAME/report.html and exit
 */
import path from 'node:path';
import { rloo, type RlooResult } from '../align/rloo.js';
import { buildRlooConfig, RLOO_PRESETS, RLOO_SETTINGS, type RlooConfig } from '../align/rloo_settings.js';
import { getBackend } from '../backend/registry.js';
import { formatDuration } from '../train/progress.js';
import { writeReport } from '../train/report.js';
import { TrainingDivergedError } from '../util/errors.js';
import { makeDirSync } from '../util/fs.js';
import { parseCommandLine, type OwnFlag } from './args.js';
import { llmtsCommand } from './invocation.js';
import { presetLines } from './pref_command.js';
import { onStdoutClosed } from './stdout.js';

const OWN: Record<string, OwnFlag> = { resume: 'path?', 'report-only': 'value' };

function help(): string {
  return `usage: llmts rloo <sft-dir> --reward <reward.mjs> <prompts.jsonl …> [--preset=NAME] [--config=FILE.json] [--key=value …]
       llmts rloo <sft-dir> --rewardModel <rm-dir> <prompts.jsonl …> …
       llmts rloo --resume[=runs/NAME] [--totalEpisodes=N …]
       llmts rloo --report-only runs/NAME     (re)write runs/NAME/report.html from its metrics.jsonl

Aligns a fine-tuned model (an 'llmts sft' checkpoint) to a reward with RLOO (REINFORCE Leave-One-Out; Ahmadian et
al. 2024), as TRL's RLOOTrainer: --rlooK replies are sampled for each prompt from the policy (temperature only,
batched with a KV cache); each reply's reward is its score minus β·KL(π‖π_ref) summed over its tokens (k1, or k3
with --klEstimator=k3; minus --missingEosPenalty when it has no stop token); its advantage is its reward minus the
mean reward of the other k − 1 replies to the same prompt; the loss is the clipped sequence-level ratio loss, over
--ppoEpochs passes of each batch in minibatches. No value model.

The reward is a verifiable function (--reward FILE.mjs: an ES module exporting reward(prompt, reply) → number, or a
rater module exporting makeOracle, whose score is used; prompt is the conversation [{role, content}, …], reply the
decoded reply without its stop token), or a reward model (--rewardModel DIR, an 'llmts reward' checkpoint).

The prompts are TRL prompt-only JSONL: {"prompt": "text"} or {"prompt": [{"role": "user", "content": "..."}]}
(rendered with the chat template through the generation prompt). The last evalFraction of them are held out: the
reference's replies to them are the evaluation set (eval_loss: the policy's per-token cross-entropy on them).

metrics.jsonl carries TRL's names: objective/kl, objective/scores, objective/rlhf_reward, objective/non_score_reward,
objective/entropy, objective/kl_coef, policy/approxkl_avg, policy/clipfrac_avg, loss/policy_avg, val/ratio,
val/ratio_var, val/num_eos_tokens, reply_length, eos_rate, episode, learning_rate, grad_norm, eval_loss. The
checkpoint (runs/NAME/checkpoint) is a causal-LM folder with its chat template ('llmts chat' talks to it), with
rloo_state.json for --resume.

Presets (--preset=NAME):
${presetLines(RLOO_PRESETS)}

Settings (--key=value or --key value; TRL names such as --rloo_k, --kl_coef, --num_ppo_epochs work too):
${RLOO_SETTINGS.describe()}

Ctrl-C finishes the current step, writes a checkpoint and exits; --resume continues from it exactly.`;
}

export async function main(argv: string[]): Promise<number> {
  const cl = parseCommandLine(argv, RLOO_SETTINGS, OWN);
  if (cl.flags.has('help')) {
    console.log(help());
    return 0;
  }
  if (cl.flags.has('report-only')) {
    const dir = cl.flags.get('report-only')!;
    console.log(`report: ${writeReport(dir, { title: `llmts rloo run: ${path.basename(path.resolve(dir))}` })}`);
    return 0;
  }
  const overrides = RLOO_SETTINGS.fromPairs(cl.pairs) as Partial<RlooConfig>;
  const resume = cl.flags.has('resume');
  const pos = [...cl.positionals];
  if (!resume) {
    if (!overrides.model && pos.length) overrides.model = pos.shift()!;
    if (!overrides.data && pos.length) overrides.data = pos;
  }
  const config = resume
    ? null
    : buildRlooConfig({
        ...(cl.preset ? { preset: cl.preset } : {}),
        ...(cl.file ? { file: cl.file } : {}),
        overrides,
      });
  if (config) makeDirSync(config.outDir); // an unwritable path fails here, named
  const off = onStdoutClosed(() => {
    if (process.listenerCount('SIGINT') > 0) {
      process.emit('SIGINT');
      return true;
    }
    return false;
  });
  let r: RlooResult;
  try {
    r = config ? await rloo({ config }) : await rloo({ resume: cl.flags.get('resume') ?? '', overrides });
  } catch (e) {
    if (e instanceof TrainingDivergedError && e.runDir && config?.report !== false)
      console.error(`report: ${writeReport(e.runDir)}`);
    throw e;
  } finally {
    off();
    getBackend().dispose();
  }
  const why = r.reason === 'done' ? 'finished' : r.reason === 'time-limit' ? 'stopped at the time limit' : 'stopped';
  const b = r.lastBatch;
  const llmts = llmtsCommand();
  console.log(
    [
      '',
      `RLOO ${why} after ${r.steps} of ${r.maxSteps} steps (${formatDuration(r.seconds)} of training)${b ? `; last batch: score ${b['objective/scores']!.toFixed(3)}, KL ${b['objective/kl']!.toFixed(3)} nats, EOS ${(b['eos_rate']! * 100).toFixed(0)} %` : ''}${r.finalEvalLoss !== null ? `; eval loss ${r.finalEvalLoss.toFixed(4)}` : ''}.`,
      '',
      `checkpoint (a Hugging Face folder): ${r.checkpointDir}`,
      '',
      `Next: ${llmts} chat ${r.checkpointDir}    talk to it`,
      '',
      ...(r.reportPath ? [`report:     ${r.reportPath}  (open it in a browser; works offline)`] : []),
      `metrics:    ${path.join(r.runDir, 'metrics.jsonl')}`,
      ...(r.reason !== 'done' ? ['', `Continue: ${llmts} rloo --resume=${r.runDir}`] : []),
    ].join('\n'),
  );
  return 0;
}
