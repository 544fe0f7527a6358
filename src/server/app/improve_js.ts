/**
 * The page's "Improve the model" script (/app/improve.js): starts training on the collected feedback
 * (src/server/improve_job.ts) and shows the job's log, polled once a second, until it ends with a checkpoint.
 */
export const IMPROVE_JS = String.raw`// "Improve the model": starts training on the collected feedback (POST /api/improve: SFT on the corrections, then DPO
// on the choices, in child processes) and shows its log as it runs (GET /api/improve, polled once a second).
const $ = (id) => document.getElementById(id);

function show(job) {
  $('improve-state').textContent = job.state + (job.checkpoint && job.state === 'done' ? ': ' + job.checkpoint : '');
  $('improve-log').textContent = job.log.slice(-40).join('\n');
  $('improve-switch').hidden = !(job.can_switch && job.state === 'done' && job.serving !== job.checkpoint);
}

async function poll(app) {
  for (;;) {
    let job;
    try { job = await app.api('GET', '/api/improve'); } catch (e) { app.say(String(e.message ?? e), true); return; }
    show(job);
    if (job.state !== 'running') {
      $('improve-go').disabled = false;
      if (job.state === 'done') app.say('improved: ' + job.checkpoint + ' (Serve it, or --compare it with this one)');
      return;
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

export async function setupImprove(app) {
  let job;
  try { job = await app.api('GET', '/api/improve'); } catch { return; }
  $('improve').hidden = false;
  show(job);
  $('improve-go').addEventListener('click', async () => {
    $('improve-go').disabled = true;
    try {
      show(await app.api('POST', '/api/improve', { steps: Number($('improve-steps').value), lora: $('improve-lora').checked }));
      $('improve').open = true;
      poll(app);
    } catch (e) { app.say(String(e.message ?? e), true); $('improve-go').disabled = false; }
  });
  $('improve-switch').addEventListener('click', async () => {
    try {
      const j = await app.api('POST', '/api/improve/switch', {});
      show(j);
      app.say('now serving ' + j.serving);
    } catch (e) { app.say(String(e.message ?? e), true); }
  });
  if (job.state === 'running') { $('improve-go').disabled = true; poll(app); }
}
`;
