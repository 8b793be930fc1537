// Datasets: the session's (ListDatasets), the server's built-ins, and uploads through
// BeginUpload / AppendUploadChunk / FinishUpload (browsers cannot stream a request).
import { useState, type FormEvent } from "react";
import { fail } from "../actions";
import { kiln } from "../client";
import type { DatasetInfo } from "../gen/kiln/v1/data_pb";
import { setStatus, useAppState } from "../store";
import { refreshDatasets } from "../sync";
import { formatShape } from "./Cards";

// The server's built-ins (DataRef.dataset, README "OpenDataset"): the bare name is the train
// split for fit and the test split for evaluate and predict. The API cannot list them.
export const BUILTIN_DATASETS = ["fashion_mnist", "fashion_mnist:train", "fashion_mnist:test"];

const CHUNK = 1 << 20;

function formatOf(fileName: string): string | undefined {
  const n = fileName.toLowerCase();
  if (n.endsWith(".npy")) return "npy";
  if (n.endsWith(".csv")) return "csv";
  if (n.includes("idx") || n.includes("-ubyte")) return "idx";
  return undefined;
}

// "1/255" or "0.0039": image bytes are usually scaled to [0, 1].
function parseScale(s: string): number | undefined | "bad" {
  const t = s.trim();
  if (!t) return undefined;
  const m = /^([\d.eE+-]+)\s*\/\s*([\d.eE+-]+)$/.exec(t);
  const v = m ? Number(m[1]) / Number(m[2]) : Number(t);
  return Number.isFinite(v) ? v : "bad";
}

export function describeDataset(d: DatasetInfo): string {
  const x = d.x.map((t) => formatShape(t.shape)).join(" ");
  const y = d.y ? ` → ${formatShape(d.y.shape)}` : "";
  return `${d.name}: ${d.samples} samples, x ${x}${y} (${d.source})`;
}

export function DatasetSelect(props: { id: string; label: string; value: string; onChange: (v: string) => void; testid: string; allowNone?: boolean }) {
  const datasets = useAppState((s) => s.datasets);
  return (
    <div className="row">
      <label htmlFor={props.id}>{props.label}</label>
      <select id={props.id} data-testid={props.testid} value={props.value} onChange={(e) => props.onChange(e.target.value)}>
        {props.allowNone && <option value="">none</option>}
        {datasets.length > 0 && (
          <optgroup label="This session">
            {datasets.map((d) => (
              <option key={d.name} value={d.name}>
                {d.name} ({d.samples} samples)
              </option>
            ))}
          </optgroup>
        )}
        <optgroup label="Built-in">
          {BUILTIN_DATASETS.map((b) => (
            <option key={b} value={b}>
              {b}
            </option>
          ))}
        </optgroup>
      </select>
    </div>
  );
}

function Upload() {
  const sessionId = useAppState((s) => s.sessionId);
  const [name, setName] = useState("upload");
  const [x, setX] = useState<File>();
  const [y, setY] = useState<File>();
  const [scale, setScale] = useState("");
  const [shape, setShape] = useState("");
  const [progress, setProgress] = useState<number>();
  const [error, setError] = useState("");

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setError("");
    if (!sessionId || !x) return setError("choose a features file");
    const xf = formatOf(x.name);
    const yf = y ? formatOf(y.name) : undefined;
    if (!xf || (y && !yf)) return setError("files must be .npy, .csv or IDX (*-ubyte, .gz too)");
    const sc = parseScale(scale);
    if (sc === "bad") return setError("scale must be a number or a fraction such as 1/255");
    const sampleShape = shape.split(/[\s,()[\]]+/).filter(Boolean);
    if (!sampleShape.every((d) => /^\d+$/.test(d))) return setError("sample shape: integers separated by commas");
    const total = x.size + (y?.size ?? 0);
    let sent = 0;
    setProgress(0);
    try {
      const { uploadId } = await kiln.data.beginUpload({
        header: {
          sessionId,
          name,
          x: [{ format: xf }],
          y: yf ? { format: yf } : undefined,
          transform: { scale: sc, sampleShape: sampleShape.map(BigInt) },
        },
      });
      for (const [array, file] of [["x", x], ["y", y]] as const) {
        if (!file) continue;
        for (let offset = 0; offset < file.size; offset += CHUNK) {
          const data = new Uint8Array(await file.slice(offset, offset + CHUNK).arrayBuffer());
          await kiln.data.appendUploadChunk({ sessionId, uploadId, chunk: { array, data }, offset: BigInt(offset) });
          sent += data.length;
          setProgress(sent / total);
        }
      }
      const info = await kiln.data.finishUpload({ sessionId, uploadId });
      setStatus(`Uploaded ${describeDataset(info)}`);
      await refreshDatasets();
    } catch (err) {
      setError(fail("Upload", err).message);
    } finally {
      setProgress(undefined);
    }
  };

  return (
    <form className="upload" onSubmit={submit} aria-label="Upload a dataset">
      <div className="row">
        <label htmlFor="upload-name">Name</label>
        <input id="upload-name" value={name} onChange={(e) => setName(e.target.value)} data-testid="upload-name" />
      </div>
      <div className="row">
        <label htmlFor="upload-x">Features (x)</label>
        <input id="upload-x" type="file" accept=".npy,.csv,.gz,*" onChange={(e) => setX(e.target.files?.[0])} data-testid="upload-x" />
      </div>
      <div className="row">
        <label htmlFor="upload-y">Labels (y)</label>
        <input id="upload-y" type="file" accept=".npy,.csv,.gz,*" onChange={(e) => setY(e.target.files?.[0])} data-testid="upload-y" />
      </div>
      <div className="row">
        <label htmlFor="upload-scale">Scale x by</label>
        <input id="upload-scale" placeholder="1 (e.g. 1/255)" value={scale} onChange={(e) => setScale(e.target.value)} />
      </div>
      <div className="row">
        <label htmlFor="upload-shape">Sample shape</label>
        <input id="upload-shape" placeholder="as stored (e.g. 28, 28, 1)" value={shape} onChange={(e) => setShape(e.target.value)} />
      </div>
      <button type="submit" disabled={!sessionId || progress !== undefined} data-testid="upload-button">
        Upload
      </button>
      {progress !== undefined && <progress value={progress} max={1} aria-label="upload progress" data-testid="upload-progress" />}
      {error && (
        <div className="field-error" role="alert" data-testid="upload-error">
          {error}
        </div>
      )}
    </form>
  );
}

export function DataPanel() {
  const datasets = useAppState((s) => s.datasets);
  const sessionId = useAppState((s) => s.sessionId);
  const [builtin, setBuiltin] = useState(BUILTIN_DATASETS[1]);
  const open = async () => {
    if (!sessionId) return;
    try {
      const info = await kiln.data.openDataset({ sessionId, name: builtin.replace(":", "_"), source: { case: "builtin", value: builtin } });
      setStatus(`Opened ${describeDataset(info)}`);
      await refreshDatasets();
    } catch (e) {
      fail("OpenDataset", e);
    }
  };
  return (
    <section className="panel" aria-labelledby="data-heading" data-testid="data-panel">
      <h2 id="data-heading">Data</h2>
      <ul className="datasets" data-testid="dataset-list">
        {datasets.length === 0 && <li className="muted">No datasets in this session; built-ins are used directly.</li>}
        {datasets.map((d) => (
          <li key={d.name}>{describeDataset(d)}</li>
        ))}
      </ul>
      <div className="row">
        <label htmlFor="builtin">Built-in</label>
        <select id="builtin" value={builtin} onChange={(e) => setBuiltin(e.target.value)}>
          {BUILTIN_DATASETS.filter((b) => b.includes(":")).map((b) => (
            <option key={b}>{b}</option>
          ))}
        </select>
        <button type="button" onClick={() => void open()} disabled={!sessionId} title="OpenDataset: copy the built-in into the session (to see its shapes)">
          Open
        </button>
        <button type="button" onClick={() => void refreshDatasets().catch((e) => fail("ListDatasets", e))} disabled={!sessionId}>
          Refresh
        </button>
      </div>
      <details>
        <summary>Upload a dataset</summary>
        <Upload />
      </details>
    </section>
  );
}
