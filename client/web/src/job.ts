// Follows one job: folds its events into progress, chart series and results for the panels.
import { useSyncExternalStore } from "react";
import { JobKind, JobState, type Job, type JobEvent, type Metric } from "./gen/kiln/v1/jobs_pb";
import { watchJob, type JobWatch } from "./sse";

// Chart data in uPlot's layout: one x array and one y array per log name (null where a name
// had no value, e.g. val_* outside validation epochs).
export interface Series {
  x: number[];
  y: Map<string, (number | null)[]>;
}

export interface JobView {
  job: Job;
  state: JobState;
  initialEpoch: number;
  epochs: number;
  steps: number;
  epoch: number;
  done: number; // batches completed in this run
  total: number; // batches the run will take; 0 while unknown
  samplesPerSecond: number;
  batches: Series; // per batch: x in epochs (2.5 = half-way through the third)
  epochSeries: Series; // per finished epoch: x = epoch number from 1
  lastEpochLogs: Metric[];
  results: Metric[]; // evaluate
  outputDataset: string; // predict
  error?: string;
  ended: boolean; // the event stream ended: the job is over
  version: number;
}

function push(series: Series, x: number, logs: Metric[]): void {
  const n = series.x.length;
  series.x.push(x);
  for (const m of logs) {
    if (!series.y.has(m.name)) series.y.set(m.name, new Array<number | null>(n).fill(null));
  }
  const byName = new Map(logs.map((m) => [m.name, m.value]));
  for (const [name, values] of series.y) values.push(byName.get(name) ?? null);
}

export class JobTracker {
  view: JobView;
  private listeners = new Set<() => void>();
  private watch?: JobWatch;

  constructor(job: Job) {
    this.view = {
      job,
      state: job.state,
      initialEpoch: 0,
      epochs: job.epochs,
      steps: Number(job.stepsPerEpoch),
      epoch: job.epoch,
      done: 0,
      total: job.kind === JobKind.FIT ? job.epochs * Number(job.stepsPerEpoch) : Number(job.stepsPerEpoch),
      samplesPerSecond: 0,
      batches: { x: [], y: new Map() },
      epochSeries: { x: [], y: new Map() },
      lastEpochLogs: [],
      results: [],
      outputDataset: job.outputDataset,
      ended: false,
      version: 0,
    };
  }

  start(sessionId: string, onEnd?: (v: JobView) => void): void {
    this.watch = watchJob(sessionId, this.view.job.id, {
      onEvent: (e) => this.apply(e),
      onEnd: () => {
        this.update((v) => (v.ended = true));
        onEnd?.(this.view);
      },
      onError: (message) => this.update((v) => (v.error = message)),
    });
  }

  stop(): void {
    this.watch?.close();
  }

  apply(e: JobEvent): void {
    this.update((v) => {
      const ev = e.event;
      switch (ev.case) {
        case "stateChanged":
          v.state = ev.value.state;
          break;
        case "trainBegin":
          v.initialEpoch = ev.value.initialEpoch;
          v.epochs = ev.value.epochs;
          v.steps = Number(ev.value.stepsPerEpoch);
          v.total = (v.epochs - v.initialEpoch) * v.steps;
          break;
        case "epochBegin":
          v.epoch = ev.value.epoch;
          break;
        case "batchEnd": {
          const b = ev.value;
          const steps = Number(b.steps) || v.steps;
          v.epoch = b.epoch;
          v.samplesPerSecond = b.samplesPerSecond;
          if (v.job.kind === JobKind.FIT) {
            v.done = (b.epoch - v.initialEpoch) * steps + Number(b.batch) + 1;
          } else {
            v.done = Number(b.batch) + 1;
            v.total = steps;
          }
          if (b.logs.length) push(v.batches, b.epoch + (Number(b.batch) + 1) / steps, b.logs);
          break;
        }
        case "epochEnd":
          v.lastEpochLogs = ev.value.logs;
          push(v.epochSeries, ev.value.epoch + 1, ev.value.logs);
          break;
        case "resumed":
          v.initialEpoch = ev.value.epoch;
          v.total = (v.epochs - v.initialEpoch) * v.steps;
          v.done = Number(ev.value.batch);
          break;
        case "finished": {
          const f = ev.value;
          v.state = f.state;
          v.results = f.results;
          if (f.outputDataset) v.outputDataset = f.outputDataset;
          if (f.error && f.error.message) v.error = f.error.message;
          if (f.state === JobState.SUCCEEDED && v.total) v.done = v.total;
          const last = f.history[f.history.length - 1];
          if (last) v.lastEpochLogs = last.logs;
          break;
        }
        default:
          break;
      }
    });
  }

  private update(f: (v: JobView) => void): void {
    f(this.view);
    // A new object per update: React compares snapshots by identity.
    this.view = { ...this.view, version: this.view.version + 1 };
    for (const l of this.listeners) l();
  }

  subscribe = (l: () => void): (() => void) => {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  };
}

const idle = { subscribe: () => () => {}, get: () => undefined };

export function useJobView(tracker: JobTracker | undefined): JobView | undefined {
  return useSyncExternalStore(tracker?.subscribe ?? idle.subscribe, () => tracker?.view ?? idle.get());
}

export function isActive(state: JobState): boolean {
  return state === JobState.QUEUED || state === JobState.RUNNING || state === JobState.CANCELLING;
}

export function stateName(state: JobState): string {
  return JobState[state] ?? String(state);
}

export function metric(logs: Metric[], name: string): number | undefined {
  return logs.find((m) => m.name === name)?.value;
}
