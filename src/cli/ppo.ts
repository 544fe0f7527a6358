/**
 * `llmts ppo`: PPO with a KL leash (src/align/ppo.ts), on the command-line pattern of reward / dpo
 * (pref_command.ts):
 *
 *   llmts ppo <sft-dir> --rewardModel <rm-dir> <prompts.jsonl …> [--preset=NAME] [--config=FILE.json] [--key=value …]
 *   llmts ppo --resume[=runs/NAME]          continue a run exactly where it stopped
 *   llmts ppo --report-only runs/NAME       (re)write runs/NAME/report.html and exit
 */
import path from 'node:path';
import { ppo, type PpoResult } from '../align/ppo.js';
import { buildPpoConfig, PPO_PRESETS, PPO_SETTINGS, type PpoConfig } from '../align/ppo_settings.js';
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
  return `usage: llmts ppo <sft-dir> --rewardModel <rm-dir> <prompts.jsonl …> [--preset=NAME] [--config=FILE.json] [--key=value …]
       llmts ppo --resume[=runs/NAME] [--totalEpisodes=N …]
       llmts ppo --report-only runs/NAME     (re)write runs/NAME/report.html from its metrics.jsonl

Aligns a fine-tuned model (an 'llmts sft' checkpoint) to a reward model (an 'llmts reward' checkpoint) with PPO, as
TRL's PPOTrainer: batches of replies sampled from the policy (temperature only) are scored by the reward model, with
a per-token KL penalty −β·KL(π‖π_ref) to the frozen starting model (k1, or k3 with --klEstimator=k3; β fixed, or
steered to --targetKl by the adaptive controller), the score at the reply's last token (minus --missingEosPenalty
when the reply has no stop token), GAE (γ, λ), whitened advantages, the clipped policy loss and the clipped value loss,
--ppoEpochs passes over each batch in minibatches. The value model is a trained copy of the reward model
(--valueModel=reward) or a head on the policy (--valueModel=policy).

The prompts are TRL prompt-only JSONL: {"prompt": "text"} or {"prompt": [{"role": "user", "content": "..."}]}
(rendered with the chat template through the generation prompt). The last evalFraction of them are held out: the
reference's replies to them are the evaluation set (eval_loss: the policy's per-token cross-entropy on them).

metrics.jsonl carries TRL's names: objective/kl, objective/scores, objective/rlhf_reward, objective/non_score_reward,
objective/entropy, objective/kl_coef, policy/approxkl_avg, policy/clipfrac_avg, loss/policy_avg, loss/value_avg,
val/clipfrac_avg, val/ratio, val/ratio_var, val/num_eos_tokens, reply_length, eos_rate, episode, learning_rate,
grad_norm, eval_loss. The checkpoint (runs/NAME/checkpoint) is a causal-LM folder with its chat template ('llmts chat'
talks to it), with value_model/ and ppo_state.json for --resume.

Presets (--preset=NAME):
${presetLines(PPO_PRESETS)}

Settings (--key=value or --key value; TRL names such as --kl_coef, --num_ppo_epochs, --missing_eos_penalty work too):
${PPO_SETTINGS.describe()}

Ctrl-C finishes the current step, writes a checkpoint and exits; --resume continues from it exactly.`;
}

export async function main(argv: string[]): Promise<number> {
  const cl = parseCommandLine(argv, PPO_SETTINGS, OWN);
  if (cl.flags.has('help')) {
    console.log(help());
    return 0;
  }
  if (cl.flags.has('report-only')) {
    const dir = cl.flags.get('report-only')!;
    console.log(`report: ${writeReport(dir, { title: `llmts ppo run: ${path.basename(path.resolve(dir))}` })}`);
    return 0;
  }
  const overrides = PPO_SETTINGS.fromPairs(cl.pairs) as Partial<PpoConfig>;
  const resume = cl.flags.has('resume');
  const pos = [...cl.positionals];
  if (!resume) {
    if (!overrides.model && pos.length) overrides.model = pos.shift()!;
    if (!overrides.data && pos.length) overrides.data = pos;
  }
  const config = resume
    ? null
    : buildPpoConfig({
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
  let r: PpoResult;
  try {
    r = config ? await ppo({ config }) : await ppo({ resume: cl.flags.get('resume') ?? '', overrides });
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
      `PPO ${why} after ${r.steps} of ${r.maxSteps} steps (${formatDuration(r.seconds)} of training)${b ? `; last batch: score ${b['objective/scores']!.toFixed(3)}, KL ${b['objective/kl']!.toFixed(3)} nats, EOS ${(b['eos_rate']! * 100).toFixed(0)} %` : ''}${r.finalEvalLoss !== null ? `; eval loss ${r.finalEvalLoss.toFixed(4)}` : ''}.`,
      '',
      `checkpoint (a Hugging Face folder): ${r.checkpointDir}`,
      '',
      `Next: ${llmts} chat ${r.checkpointDir}    talk to it`,
      '',
      ...(r.reportPath ? [`report:     ${r.reportPath}  (open it in a browser; works offline)`] : []),
      `metrics:    ${path.join(r.runDir, 'metrics.jsonl')}`,
      ...(r.reason !== 'done' ? ['', `Continue: ${llmts} ppo --resume=${r.runDir}`] : []),
    ].join('\n'),
  );
  return 0;
}
