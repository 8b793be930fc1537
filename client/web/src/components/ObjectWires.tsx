// Wires between object cards (initializers, regularizers, constraints) and the sockets of layer
// cards: the socket rows a layer card shows, and the "wire into" list on an object card. Both
// have a keyboard path (a button, a select) beside React Flow's drag handles.
import { Handle, Position } from "@xyflow/react";
import { useState } from "react";
import { isObjectValue, objectKind, type FieldValue } from "../catalogue";
import type { ArgumentInfo } from "../gen/kiln/v1/catalogue_pb";
import { link, linksOf, objectSockets, unlink } from "../graph";
import { cardById, emptyLive, setStatus, useAppState } from "../store";

export const OBJECT_HANDLE = "object";
export const SOCKET_PREFIX = "arg:";

function summary(v: FieldValue | undefined): string {
  return isObjectValue(v) && v.choice ? v.choice : "None";
}

// A layer card's object sockets. Wired ones always show (their wires need a handle to end at);
// the rest fold away unless the user opens them or a wire of their kind is being dragged.
export function ObjectSockets({ id }: { id: string }) {
  const cat = useAppState((s) => s.catalogue)!;
  const card = useAppState((s) => cardById(s, id))!;
  const connecting = useAppState((s) => s.connecting);
  const live = useAppState((s) => s.live[id]) ?? emptyLive;
  const [open, setOpen] = useState(false);
  const sockets = objectSockets(cat, card);
  if (sockets.length === 0) return null;
  const wired = (a: ArgumentInfo) => card.links?.[a.name];
  const shown = sockets.filter((a) => wired(a) || (connecting ? objectKind(a) === connecting : open));
  return (
    <div className="sockets object-sockets nodrag">
      <button
        type="button"
        className="link socket-title"
        aria-expanded={open}
        data-testid="show-sockets"
        title="Initializer, regularizer and constraint sockets: wire an object card from the palette into one"
        onClick={() => setOpen(!open)}
      >
        {open ? "▾" : "▸"} sockets ({sockets.length})
      </button>
      <ul aria-label={`object sockets of ${id}`}>
        {shown.map((a) => {
          const objectId = wired(a);
          const error = live.fieldErrors[a.name];
          return (
            <li key={a.name} className={`object-socket socket-${objectKind(a)}`} data-testid={`socket-${a.name}`}>
              <Handle type="target" position={Position.Left} id={`${SOCKET_PREFIX}${a.name}`} className="socket-handle" aria-label={`${a.name} socket of ${id}`} />
              <span className="socket-name" title={a.doc}>
                {a.name}
              </span>
              {objectId ? (
                <>
                  <span data-testid="socket-link">← {objectId}</span>
                  <button type="button" className="icon" aria-label={`Unwire ${objectId} from ${id}.${a.name}`} data-testid="unwire" onClick={() => unlink(id, a.name)}>
                    ×
                  </button>
                </>
              ) : (
                <span className="muted">{summary(card.values[a.name])}</span>
              )}
              {error && (
                <div className="field-error" role="alert" data-testid={`field-error-${a.name}`}>
                  {error}
                </div>
              )}
            </li>
          );
        })}
      </ul>
    </div>
  );
}

// An object card's wires: the sockets it feeds, and a select to wire it into another one.
export function ObjectTargets({ id }: { id: string }) {
  const cat = useAppState((s) => s.catalogue)!;
  const cards = useAppState((s) => s.cards);
  const card = cards.find((c) => c.id === id)!;
  const feeds = linksOf(cards, id);
  const free = cards.flatMap((c) =>
    objectSockets(cat, c)
      .filter((a) => objectKind(a) === card.objectKind && c.links?.[a.name] !== id)
      .map((a) => `${c.id}.${a.name}`),
  );
  return (
    <div className="sockets nodrag">
      <div className="socket-title">wired into</div>
      <ul aria-label={`sockets ${id} is wired into`}>
        {feeds.length === 0 && <li className="muted">no socket yet</li>}
        {feeds.map((l) => (
          <li key={`${l.card}.${l.arg}`} data-testid="wired-into">
            <span>
              {l.card}.{l.arg}
            </span>
            <button type="button" className="icon" aria-label={`Unwire ${id} from ${l.card}.${l.arg}`} onClick={() => unlink(l.card, l.arg)}>
              ×
            </button>
          </li>
        ))}
      </ul>
      <select
        aria-label={`Wire ${id} into a socket`}
        data-testid="wire-into"
        value=""
        onChange={(e) => {
          const dot = e.target.value.lastIndexOf(".");
          const why = link(id, e.target.value.slice(0, dot), e.target.value.slice(dot + 1));
          if (why) setStatus(why, true);
        }}
      >
        <option value="">wire into…</option>
        {free.map((t) => (
          <option key={t} value={t}>
            {t}
          </option>
        ))}
      </select>
      {/* On top: an object card sits below the cards it serves. */}
      <Handle type="source" position={Position.Top} id={OBJECT_HANDLE} aria-label={`wire of ${id}`} />
    </div>
  );
}
