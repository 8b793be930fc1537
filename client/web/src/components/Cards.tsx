// A card on the canvas: one Input, layer, repeated call or object (initializer, regularizer,
// constraint). Its fields come from the catalogue; its shape, parameter count and errors from
// the server (see sync.ts).
import { Handle, Position, type NodeProps } from "@xyflow/react";
import { memo, useState } from "react";
import { objectKind, valueErrors } from "../catalogue";
import type { ArgumentInfo, ClassInfo } from "../gen/kiln/v1/catalogue_pb";
import type { TensorInfo } from "../gen/kiln/v1/model_pb";
import {
  addCallCard,
  classOf,
  connect,
  disconnect,
  inputsAllowed,
  outputsOf,
  parsePort,
  portName,
  removeCard,
  setValue,
  wouldCycle,
} from "../graph";
import { cardById, emptyLive, setStatus, useAppState } from "../store";
import { Field } from "./Field";
import { ObjectSockets, ObjectTargets } from "./ObjectWires";

export function formatShape(shape: bigint[]): string {
  const dims = shape.map((d) => (d < 0n ? "None" : d.toString()));
  return `(${dims.join(", ")}${dims.length === 1 ? "," : ""})`;
}

export function formatCount(n: bigint): string {
  return n.toLocaleString("en-US");
}

// Base-layer and object arguments fold away so that a card shows what usually changes.
function isSecondary(arg: ArgumentInfo): boolean {
  return objectKind(arg) !== undefined || ["name", "trainable", "dtype"].includes(arg.name);
}

function Outputs({ outputs }: { outputs: TensorInfo[] }) {
  return (
    <span data-testid="output-shape" className="shape">
      {outputs.map((t) => formatShape(t.shape)).join(" ")}
    </span>
  );
}

function InputSockets({ id }: { id: string }) {
  const cards = useAppState((s) => s.cards);
  const cat = useAppState((s) => s.catalogue)!;
  const live = useAppState((s) => s.live[id]) ?? emptyLive;
  const card = cards.find((c) => c.id === id)!;
  const { min, max } = inputsAllowed(cat, card);
  if (max === 0) return null;
  const candidates = cards
    .filter((c) => c.id !== id && !wouldCycle(cards, c.id, id))
    .flatMap((c) => Array.from({ length: outputsOf(cat, c) }, (_, k) => portName({ card: c.id, output: k })));
  const range = max === Infinity ? `${min}+` : min === max ? `${min}` : `${min}–${max}`;
  return (
    <div className="sockets nodrag">
      <div className="socket-title">
        inputs <span className="muted">({range})</span>
      </div>
      <ul aria-label={`inputs of ${id}`}>
        {card.inputs.map((p, i) => (
          <li key={`${portName(p)}-${i}`} data-testid="card-input">
            <span>{portName(p)}</span>
            <button type="button" className="icon" aria-label={`Disconnect ${portName(p)} from ${id}`} onClick={() => disconnect(id, i)}>
              ×
            </button>
            {live.inputErrors[i] && (
              <div className="field-error" role="alert" data-testid="input-error">
                {live.inputErrors[i]}
              </div>
            )}
          </li>
        ))}
      </ul>
      {card.inputs.length < max || max === 1 ? (
        <select
          aria-label={`Connect an input to ${id}`}
          data-testid="connect-input"
          value=""
          onChange={(e) => {
            const why = connect(parsePort(e.target.value), id);
            if (why) setStatus(why, true);
          }}
        >
          <option value="">{max === 1 && card.inputs.length ? "replace input…" : "connect input…"}</option>
          {candidates.map((p) => (
            <option key={p} value={p}>
              {p}
            </option>
          ))}
        </select>
      ) : null}
    </div>
  );
}

function Fields({ id, cls }: { id: string; cls: ClassInfo }) {
  const cat = useAppState((s) => s.catalogue)!;
  const card = useAppState((s) => cardById(s, id))!;
  const live = useAppState((s) => s.live[id]) ?? emptyLive;
  const local = valueErrors(cat, cls, card.values);
  const errorOf = (a: ArgumentInfo) => local[a.name] ?? live.fieldErrors[a.name];
  // A wired socket's value is edited on the object card wired into it.
  const args = cls.arguments.filter((a) => !card.links?.[a.name]);
  const primary = args.filter((a) => !isSecondary(a) || a.required);
  const secondary = args.filter((a) => isSecondary(a) && !a.required);
  const secondaryError = secondary.some((a) => errorOf(a));
  const [open, setOpen] = useState(false);
  const field = (a: ArgumentInfo) => (
    <Field
      key={a.name}
      cat={cat}
      arg={a}
      value={card.values[a.name]}
      onChange={(v) => setValue(id, a.name, v)}
      error={errorOf(a)}
      idPrefix={`card-${id}`}
    />
  );
  return (
    <div className="fields nodrag nowheel">
      {primary.map(field)}
      {secondary.length > 0 && (
        <details open={open || secondaryError} onToggle={(e) => setOpen(e.currentTarget.open)}>
          <summary data-testid="more-arguments">more arguments ({secondary.length})</summary>
          {secondary.map(field)}
        </details>
      )}
    </div>
  );
}

function CardNodeImpl({ id, selected }: NodeProps) {
  const card = useAppState((s) => cardById(s, id));
  const cat = useAppState((s) => s.catalogue);
  const live = useAppState((s) => s.live[id]) ?? emptyLive;
  if (!card || !cat) return null;
  const cls = classOf(cat, card);
  const { max } = inputsAllowed(cat, card);
  const outputs = outputsOf(cat, card);
  const title = card.kind === "call" ? `${card.className} (call of ${card.callOf})` : card.className;
  return (
    <div
      className={`card card-${card.kind}${selected ? " selected" : ""}${live.errorText || Object.keys(live.fieldErrors).length ? " card-has-error" : ""}`}
      data-testid={`card-${card.className}`}
      data-card-id={card.id}
      data-kind={card.kind}
      role="group"
      aria-label={`${title} card ${card.id}`}
    >
      {max > 0 && <Handle type="target" position={Position.Left} id="in" aria-label={`input socket of ${id}`} />}
      <header>
        <span className="card-class" title={cls?.doc}>
          {title}
        </span>
        <span className="card-id" data-testid="card-id">
          {card.id}
        </span>
        <span className="card-actions nodrag">
          {card.kind === "layer" && (
            <button type="button" className="icon" aria-label={`Call ${id} again (shared weights)`} title="Call this layer again (shared weights)" data-testid="reuse-layer" onClick={() => addCallCard(id)}>
              ↻
            </button>
          )}
          <button type="button" className="icon" aria-label={`Remove ${id}`} title="Remove card" data-testid="remove-card" onClick={() => removeCard(id)}>
            ×
          </button>
        </span>
      </header>
      {cls && card.kind !== "call" && cls.doc && <p className="doc">{cls.doc}</p>}
      <InputSockets id={id} />
      <ObjectSockets id={id} />
      {cls && card.kind !== "call" && <Fields id={id} cls={cls} />}
      {card.kind === "object" ? (
        <ObjectTargets id={id} />
      ) : (
        <footer aria-live="polite">
          {live.busy && <span className="muted">sending…</span>}
          {!live.busy && live.waiting && (
            <span className="muted" data-testid="card-waiting">
              {live.waiting}
            </span>
          )}
          {live.outputs.length > 0 && (
            <div>
              out <Outputs outputs={live.outputs} />
            </div>
          )}
          {live.params !== undefined && (
            <div>
              params{" "}
              <span data-testid="param-count" className="params">
                {formatCount(live.params)}
              </span>
              {card.kind === "call" && <span className="muted"> (shared)</span>}
            </div>
          )}
          {live.layer && <div className="muted">server layer {live.layer}</div>}
          {live.errorText && (
            <div className="card-error" role="alert" data-testid="card-error">
              {live.errorText}
            </div>
          )}
        </footer>
      )}
      {Array.from({ length: outputs }, (_, k) => (
        <Handle
          key={k}
          type="source"
          position={Position.Right}
          id={`out${k}`}
          style={outputs > 1 ? { top: `${((k + 1) * 100) / (outputs + 1)}%` } : undefined}
          aria-label={`output ${k} of ${id}`}
        />
      ))}
    </div>
  );
}

export const CardNode = memo(CardNodeImpl);
