// Fit and evaluate: the job is started over Connect, then followed over SSE (job.ts) into a
// progress bar, per-batch and per-epoch charts, and the final metrics.
import { useState } from "react";
import { fail } from "../actions";
import { kiln } from "../client";
import { JobKind, JobState, type Metric } from "../gen/kiln/v1/jobs_pb";
import { isActive, JobTracker, stateName, useJobView, type JobView } from "../job";
import { setStatus, useAppState } from "../store";
import { refreshDatasets, refreshModelInfo } from "../sync";
import { Chart } from "./Chart";
import { DatasetSelect } from "./DataPanel";

function Metrics({ logs, testid }: { logs: Metric[]; testid: string }) {
  return (
    <dl className="metrics-list" data-testid={testid}>
      {logs.map((m) => (
        <div key={m.name} data-metric={m.name}>
          <dt>{m.name}</dt>
          <dd data-testid={`${testid}-${m.name}`}>{m.value.toFixed(4)}</dd>
        </div>
      ))}
    </dl>
  );
}

function accuracyOf(logs: Metric[], prefix = ""): Metric | undefined {
  return logs.find((m) => m.name.startsWith(prefix) && (prefix || !m.name.startsWith("val_")) && /acc/.test(m.name));
}

function Progress({ view, testid }: { view: JobView; testid: string }) {
  const fit = view.job.kind === JobKind.FIT;
  const pct = view.total ? Math.round((100 * view.done) / view.total) : 0;
  return (
    <div className="progress">
      <progress
        data-testid={testid}
        value={view.done}
        max={view.total || 1}
        aria-label={`${fit ? "fit" : "evaluate"} progress`}
        aria-valuetext={`${pct}%`}
        data-state={stateName(view.state)}
      />
      <div className="muted" aria-live="polite" data-testid={`${testid}-text`}>
        {stateName(view.state)}
        {fit && view.epochs ? ` · epoch ${Math.min(view.epoch + 1, view.epochs)}/${view.epochs}` : ""}
        {view.total ? ` · ${view.done}/${view.total} batches (${pct}%)` : ""}
        {view.samplesPerSecond ? ` · ${Math.round(view.samplesPerSecond).toLocaleString("en-US")} samples/s` : ""}
      </div>
      {view.error && (
        <div className="field-error" role="alert" data-testid={`${testid}-error`}>
          {view.error}
        </div>
      )}
    </div>
  );
}

function intOrUndefined(s: string): number | undefined {
  return s.trim() === "" ? undefined : Number(s);
}

export function TrainPanel() {
  const sessionId = useAppState((s) => s.sessionId);
  const model = useAppState((s) => s.model);
  const [data, setData] = useState("fashion_mnist");
  const [valData, setValData] = useState("");
  const [evalData, setEvalData] = useState("fashion_mnist:test");
  const [epochs, setEpochs] = useState("1");
  const [batchSize, setBatchSize] = useState("32");
  const [split, setSplit] = useState("0");
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [fit, setFit] = useState<JobTracker>();
  const [evaluation, setEvaluation] = useState<JobTracker>();
  const fitView = useJobView(fit);
  const evalView = useJobView(evaluation);

  const placeErrors = (e: unknown, what: string) => {
    const err = fail(what, e);
    const out: Record<string, string> = {};
    for (const v of err.fieldViolations) out[v.field.replace(/^(config|data|validation_data)\./, "")] = v.description;
    setErrors(out);
  };

  const startFit = async () => {
    if (!sessionId || !model) return setStatus("Create and compile a model first", true);
    setErrors({});
    try {
      const job = await kiln.jobs.startFit({
        sessionId,
        model,
        data: { source: { case: "dataset", value: data } },
        validationData: valData ? { source: { case: "dataset", value: valData } } : undefined,
        config: { epochs: intOrUndefined(epochs), batchSize: intOrUndefined(batchSize), validationSplit: Number(split) || 0 },
      });
      fit?.stop();
      const t = new JobTracker(job);
      t.start(sessionId, (v) => {
        setStatus(`Fit ${job.id} ${stateName(v.state).toLowerCase()}`, v.state !== JobState.SUCCEEDED);
        void refreshModelInfo().catch(() => {});
      });
      setFit(t);
      setStatus(`Fit ${job.id} started`);
    } catch (e) {
      placeErrors(e, "StartFit");
    }
  };

  const startEvaluate = async () => {
    if (!sessionId || !model) return;
    try {
      const job = await kiln.jobs.startEvaluate({
        sessionId,
        model,
        data: { source: { case: "dataset", value: evalData } },
        config: { batchSize: intOrUndefined(batchSize) },
      });
      evaluation?.stop();
      const t = new JobTracker(job);
      t.start(sessionId, (v) => {
        setStatus(`Evaluate ${job.id} ${stateName(v.state).toLowerCase()}`, v.state !== JobState.SUCCEEDED);
        void refreshDatasets().catch(() => {});
      });
      setEvaluation(t);
    } catch (e) {
      placeErrors(e, "StartEvaluate");
    }
  };

  const cancel = async () => {
    const active = [fitView, evalView].filter((v) => v && isActive(v.state));
    for (const v of active) {
      try {
        await kiln.jobs.cancelJob({ sessionId: sessionId!, jobId: v!.job.id });
      } catch (e) {
        fail("CancelJob", e);
      }
    }
  };

  const fitRunning = fitView !== undefined && isActive(fitView.state) && !fitView.ended;
  const evalRunning = evalView !== undefined && isActive(evalView.state) && !evalView.ended;
  const finalAcc = fitView && accuracyOf(fitView.lastEpochLogs);
  const finalValAcc = fitView && accuracyOf(fitView.lastEpochLogs, "val_");
  const input = (id: string, label: string, value: string, set: (v: string) => void, key: string) => (
    <div className="row">
      <label htmlFor={id}>{label}</label>
      <input id={id} inputMode="decimal" value={value} onChange={(e) => set(e.target.value)} data-testid={id} aria-invalid={errors[key] ? true : undefined} />
      {errors[key] && (
        <span className="field-error" role="alert" data-testid={`${id}-error`}>
          {errors[key]}
        </span>
      )}
    </div>
  );

  return (
    <section className="panel" aria-labelledby="train-heading" data-testid="train-panel">
      <h2 id="train-heading">Train</h2>
      <DatasetSelect id="fit-data" label="Training data" value={data} onChange={setData} testid="fit-dataset" />
      <DatasetSelect id="fit-val-data" label="Validation data" value={valData} onChange={setValData} testid="fit-validation-dataset" allowNone />
      {input("fit-epochs", "Epochs", epochs, setEpochs, "epochs")}
      {input("fit-batch-size", "Batch size", batchSize, setBatchSize, "batch_size")}
      {input("fit-validation-split", "Validation split", split, setSplit, "validation_split")}
      {Object.entries(errors)
        .filter(([k]) => !["epochs", "batch_size", "validation_split"].includes(k))
        .map(([k, v]) => (
          <div key={k} className="field-error" role="alert">
            {k}: {v}
          </div>
        ))}
      <div className="row buttons">
        <button type="button" onClick={() => void startFit()} disabled={!model || fitRunning} data-testid="fit-button">
          Fit {model}
        </button>
        <button type="button" onClick={() => void cancel()} disabled={!fitRunning && !evalRunning} data-testid="cancel-button">
          Cancel
        </button>
      </div>
      {fitView && (
        <>
          <Progress view={fitView} testid="progress-bar" />
          <Chart title="Per batch (running mean)" xLabel="epoch" series={fitView.batches} version={fitView.version} testid="chart-batch" />
          <Chart title="Per epoch" xLabel="epoch" series={fitView.epochSeries} version={fitView.version} testid="chart-epoch" points />
          {fitView.lastEpochLogs.length > 0 && (
            <div className="final">
              {finalAcc && (
                <div>
                  {finalAcc.name}: <strong data-testid="final-accuracy">{finalAcc.value.toFixed(4)}</strong>
                  {finalValAcc && (
                    <>
                      {" "}
                      · {finalValAcc.name}: <strong data-testid="final-val-accuracy">{finalValAcc.value.toFixed(4)}</strong>
                    </>
                  )}
                </div>
              )}
              <Metrics logs={fitView.lastEpochLogs} testid="epoch-logs" />
            </div>
          )}
        </>
      )}
      <h3>Evaluate</h3>
      <DatasetSelect id="eval-data" label="Data" value={evalData} onChange={setEvalData} testid="evaluate-dataset" />
      <button type="button" onClick={() => void startEvaluate()} disabled={!model || evalRunning || fitRunning} data-testid="evaluate-button">
        Evaluate {model}
      </button>
      {evalView && <Progress view={evalView} testid="evaluate-progress" />}
      {evalView && evalView.results.length > 0 && (
        <>
          {accuracyOf(evalView.results) && (
            <div>
              accuracy: <strong data-testid="evaluate-accuracy">{accuracyOf(evalView.results)!.value.toFixed(4)}</strong>
            </div>
          )}
          <Metrics logs={evalView.results} testid="evaluate-results" />
        </>
      )}
    </section>
  );
}
