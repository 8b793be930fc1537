// Compile: optimizer (with its arguments), loss and metrics, all from the catalogue.
import { useState } from "react";
import { compileModel } from "../actions";
import { defaultValues } from "../catalogue";
import { setState, useAppState, type CompileState } from "../store";
import { Field } from "./Field";

function update(f: (c: CompileState) => CompileState) {
  setState((s) => (s.compile ? { ...s, compile: f(s.compile) } : s));
}

export function CompilePanel() {
  const cat = useAppState((s) => s.catalogue);
  const c = useAppState((s) => s.compile);
  const model = useAppState((s) => s.model);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [busy, setBusy] = useState(false);
  if (!cat || !c) return null;
  const opt = cat.optimizers.find((o) => o.field === c.optimizer);
  return (
    <section className="panel" aria-labelledby="compile-heading" data-testid="compile-panel">
      <h2 id="compile-heading">Compile</h2>
      <div className="row">
        <label htmlFor="optimizer">Optimizer</label>
        <select
          id="optimizer"
          data-testid="optimizer-select"
          value={c.optimizer}
          onChange={(e) => {
            const next = cat.optimizers.find((o) => o.field === e.target.value);
            update((cs) => ({ ...cs, optimizer: e.target.value, optimizerValues: next ? defaultValues(cat, next) : {} }));
          }}
        >
          {cat.optimizers.map((o) => (
            <option key={o.field} value={o.field} title={o.doc}>
              {o.className}
            </option>
          ))}
        </select>
      </div>
      {opt && (
        <details className="optimizer-args" open={Object.keys(errors).some((k) => opt.arguments.some((a) => a.name === k))}>
          <summary>{opt.className} arguments</summary>
          <div className="fields">
            {opt.arguments.map((a) => (
              <Field
                key={a.name}
                cat={cat}
                arg={a}
                value={c.optimizerValues[a.name]}
                onChange={(v) => update((cs) => ({ ...cs, optimizerValues: { ...cs.optimizerValues, [a.name]: v } }))}
                error={errors[a.name]}
                idPrefix="optimizer"
                testPrefix="optimizer-"
              />
            ))}
          </div>
        </details>
      )}
      <div className="row">
        <label htmlFor="loss">Loss</label>
        <select id="loss" data-testid="loss-select" value={c.loss} aria-invalid={errors.loss ? true : undefined} onChange={(e) => update((cs) => ({ ...cs, loss: e.target.value }))}>
          <option value="">choose…</option>
          {cat.losses.map((l) => (
            <option key={l.name} value={l.name} title={l.doc}>
              {l.name}
            </option>
          ))}
        </select>
        <label className="inline">
          <input type="checkbox" checked={c.fromLogits} data-testid="from-logits" onChange={(e) => update((cs) => ({ ...cs, fromLogits: e.target.checked }))} />
          from logits
        </label>
      </div>
      {errors.loss && (
        <div className="field-error" role="alert" data-testid="compile-error-loss">
          {errors.loss}
        </div>
      )}
      <fieldset className="metrics">
        <legend>Metrics</legend>
        {cat.metrics.map((m) => (
          <label key={m.name} title={m.doc}>
            <input
              type="checkbox"
              data-testid={`metric-${m.name}`}
              checked={c.metrics.includes(m.name)}
              onChange={(e) =>
                update((cs) => ({ ...cs, metrics: e.target.checked ? [...cs.metrics, m.name] : cs.metrics.filter((x) => x !== m.name) }))
              }
            />
            {m.name}
          </label>
        ))}
      </fieldset>
      {errors.metrics && (
        <div className="field-error" role="alert">
          {errors.metrics}
        </div>
      )}
      <button
        type="button"
        data-testid="compile-button"
        disabled={busy || !model}
        onClick={async () => {
          setBusy(true);
          try {
            setErrors((await compileModel()) ?? {});
          } finally {
            setBusy(false);
          }
        }}
      >
        Compile {model}
      </button>
    </section>
  );
}
