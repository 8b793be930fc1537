// Keeps the canvas (cards, wires, the model's name, inputs, outputs and compile choices) in the
// browser's localStorage, so that a reload or a closed tab loses no work. The server session is
// new after a reload: sync.ts sends every card to it again.
import { getState, setState, subscribe, type AppState } from "./store";

const KEY = "kiln.editor.canvas.v1";

type Kept = Pick<AppState, "cards" | "modelName" | "modelInputs" | "modelOutputs" | "compile">;

function kept(s: AppState): Kept {
  return { cards: s.cards, modelName: s.modelName, modelInputs: s.modelInputs, modelOutputs: s.modelOutputs, compile: s.compile };
}

// Puts back what an earlier page kept; something unreadable (another version's) is dropped.
export function restoreCanvas(): void {
  try {
    const text = localStorage.getItem(KEY);
    if (!text) return;
    const k = JSON.parse(text) as Kept;
    if (!Array.isArray(k.cards)) throw new Error("no cards");
    setState((s) => ({ ...s, ...k, modelName: k.modelName || s.modelName }));
  } catch {
    localStorage.removeItem(KEY);
  }
}

// Writes the canvas a moment after it changes (typing changes it on every key).
export function keepCanvas(): void {
  let last = kept(getState());
  let timer: ReturnType<typeof setTimeout> | undefined;
  subscribe(() => {
    const now = kept(getState());
    if ((Object.keys(now) as (keyof Kept)[]).every((key) => now[key] === last[key])) return;
    last = now;
    clearTimeout(timer);
    timer = setTimeout(() => {
      try {
        localStorage.setItem(KEY, JSON.stringify(kept(getState())));
      } catch {
        // Storage full or disabled: the canvas still works, it is just not kept.
      }
    }, 300);
  });
}
