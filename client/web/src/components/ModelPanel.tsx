// The model panel: which cards are the model's inputs and outputs, CreateModel over the live
// graph or DefineModel from the definition, and the session's models.
import { useState } from "react";
import { createModel, defineModel, drawModel, fail } from "../actions";
import { kiln } from "../client";
import { modelInputs, modelOutputs, openEnds, outputsOf, portName } from "../graph";
import { getState, setState, useAppState } from "../store";
import { refreshModelInfo, refreshModels } from "../sync";
import { formatCount } from "./Cards";

function toggle(list: string[], item: string, on: boolean): string[] {
  return on ? [...list.filter((x) => x !== item), item] : list.filter((x) => x !== item);
}

function IoChooser() {
  const cards = useAppState((s) => s.cards);
  const cat = useAppState((s) => s.catalogue);
  const explicitIn = useAppState((s) => s.modelInputs);
  const explicitOut = useAppState((s) => s.modelOutputs);
  if (!cat) return null;
  const s = getState();
  const ins = modelInputs(s);
  const outs = modelOutputs(s);
  const inputCards = cards.filter((c) => c.kind === "input");
  const ports = cards
    .filter((c) => c.kind !== "input")
    .flatMap((c) => Array.from({ length: outputsOf(cat, c) }, (_, k) => portName({ card: c.id, output: k })));
  return (
    <div className="io">
      <fieldset>
        <legend>
          Inputs {explicitIn ? "" : <span className="muted">(all input cards)</span>}
        </legend>
        {inputCards.length === 0 && <span className="muted">add an Input card</span>}
        {inputCards.map((c) => (
          <label key={c.id}>
            <input
              type="checkbox"
              checked={ins.includes(c.id)}
              data-testid={`model-input-${c.id}`}
              onChange={(e) => setState((st) => ({ ...st, modelInputs: toggle(modelInputs(st), c.id, e.target.checked) }))}
            />
            {c.id}
          </label>
        ))}
      </fieldset>
      <fieldset>
        <legend>
          Outputs {explicitOut ? "" : <span className="muted">(open ends)</span>}
        </legend>
        {ports.map((p) => (
          <label key={p}>
            <input
              type="checkbox"
              checked={outs.includes(p)}
              data-testid={`model-output-${p}`}
              onChange={(e) => setState((st) => ({ ...st, modelOutputs: toggle(modelOutputs(st), p, e.target.checked) }))}
            />
            {p}
          </label>
        ))}
      </fieldset>
      {(explicitIn || explicitOut) && (
        <button type="button" className="link" onClick={() => setState((st) => ({ ...st, modelInputs: undefined, modelOutputs: undefined }))}>
          back to defaults ({openEnds(s).join(", ") || "none"})
        </button>
      )}
    </div>
  );
}

export function ModelPanel() {
  const modelName = useAppState((s) => s.modelName);
  const models = useAppState((s) => s.models);
  const model = useAppState((s) => s.model);
  const info = useAppState((s) => s.modelInfo);
  const sessionId = useAppState((s) => s.sessionId);
  const [busy, setBusy] = useState(false);
  const run = (f: () => Promise<void>) => async () => {
    setBusy(true);
    try {
      await f();
    } finally {
      setBusy(false);
    }
  };
  return (
    <section className="panel" aria-labelledby="model-heading" data-testid="model-panel">
      <h2 id="model-heading">Model</h2>
      <div className="row">
        <label htmlFor="model-name">Name</label>
        <input id="model-name" value={modelName} data-testid="model-name" onChange={(e) => setState((s) => ({ ...s, modelName: e.target.value }))} />
      </div>
      <IoChooser />
      <div className="row buttons">
        <button type="button" onClick={run(createModel)} disabled={busy || !sessionId} data-testid="create-model-button" title="CreateModel over the cards' live tensors">
          Create model
        </button>
        <button type="button" onClick={run(defineModel)} disabled={busy || !sessionId} data-testid="define-model-button" title="DefineModel from the saved-definition form (uses card names, replaces a model of that name)">
          Define model
        </button>
      </div>
      <div className="row">
        <label htmlFor="model-select">Current model</label>
        <select
          id="model-select"
          data-testid="model-select"
          value={model}
          onChange={(e) => {
            setState((s) => ({ ...s, model: e.target.value, modelInfo: undefined }));
            void refreshModelInfo().catch((err) => fail("GetModel", err));
          }}
        >
          {models.length === 0 && <option value="">no models yet</option>}
          {models.map((m) => (
            <option key={m.name} value={m.name}>
              {m.name}
            </option>
          ))}
        </select>
        <button
          type="button"
          disabled={!model || busy}
          aria-label="Delete the current model"
          onClick={run(async () => {
            try {
              await kiln.models.deleteModel({ sessionId: sessionId!, name: model });
              await refreshModels();
            } catch (e) {
              fail("DeleteModel", e);
            }
          })}
        >
          Delete
        </button>
        <button type="button" disabled={!model || busy} data-testid="draw-model" title="Replace the canvas with the current model's cards (GetModel's definition)" onClick={run(drawModel)}>
          Draw
        </button>
      </div>
      {info && (
        <div className="model-info">
          <div>
            <span data-testid="model-params">{formatCount(info.totalParams)}</span> parameters ({formatCount(info.trainableParams)} trainable)
            {info.compiled ? <span data-testid="model-compiled"> · compiled</span> : <span className="muted"> · not compiled</span>}
          </div>
          <details>
            <summary>summary</summary>
            <pre data-testid="model-summary">{info.summary}</pre>
          </details>
        </div>
      )}
    </section>
  );
}
