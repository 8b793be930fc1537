// Keeps the canvas (cards, wires, the model's name, inputs, outputs and compile choices) in the
// browser's localStorage, so that a reload or a closed tab loses no work. The server session is
// new after a reload: sync.ts sends every card to it again.
import { OBJECT_KINDS } from "./catalogue";
import { getState, setState, subscribe, type AppState, type Card } from "./store";

const KEY = "kiln.editor.canvas.v1";

type Kept = Pick<AppState, "cards" | "modelName" | "modelInputs" | "modelOutputs" | "compile">;

function kept(s: AppState): Kept {
  return { cards: s.cards, modelName: s.modelName, modelInputs: s.modelInputs, modelOutputs: s.modelOutputs, compile: s.compile };
}

const KINDS = new Set(["input", "layer", "call", "object"]);

// Whether a stored card has the shape the editor renders (a build with other fields may have
// written it): a card that does not is dropped rather than breaking the page on every reload.
function wellFormed(c: unknown): c is Card {
  const card = c as Card;
  return (
    typeof card === "object" &&
    card !== null &&
    typeof card.id === "string" &&
    KINDS.has(card.kind) &&
    typeof card.className === "string" &&
    typeof card.values === "object" &&
    card.values !== null &&
    Array.isArray(card.inputs) &&
    card.inputs.every((p) => typeof p?.card === "string" && Number.isInteger(p.output)) &&
    Number.isFinite(card.position?.x) &&
    Number.isFinite(card.position?.y) &&
    (card.kind !== "object" || OBJECT_KINDS.some((k) => k === card.objectKind)) &&
    (card.links === undefined || (typeof card.links === "object" && card.links !== null))
  );
}

// Puts back what an earlier page kept; something unreadable is dropped.
export function restoreCanvas(): void {
  try {
    const text = localStorage.getItem(KEY);
    if (!text) return;
    const k = JSON.parse(text) as Kept;
    if (!Array.isArray(k.cards)) throw new Error("no cards");
    const cards = k.cards.filter(wellFormed);
    setState((s) => ({ ...s, ...k, cards, modelName: k.modelName || s.modelName }));
  } catch {
    localStorage.removeItem(KEY);
  }
}

function write(): void {
  try {
    localStorage.setItem(KEY, JSON.stringify(kept(getState())));
  } catch {
    // Storage full or disabled: the canvas still works, it is just not kept.
  }
}

// Writes the canvas a moment after it changes (typing changes it on every key), and at once
// when the page goes away, so that the last edit is not lost. Every tab writes the same key:
// the tab changed last is the one a reload brings back.
export function keepCanvas(): void {
  let last = kept(getState());
  let timer: ReturnType<typeof setTimeout> | undefined;
  const flush = () => {
    clearTimeout(timer);
    timer = undefined;
    write();
  };
  subscribe(() => {
    const now = kept(getState());
    if ((Object.keys(now) as (keyof Kept)[]).every((key) => now[key] === last[key])) return;
    last = now;
    clearTimeout(timer);
    timer = setTimeout(flush, 300);
  });
  // Only a pending write: a tab left idle must not overwrite another tab's newer canvas.
  window.addEventListener("pagehide", () => {
    if (timer !== undefined) flush();
  });
}
