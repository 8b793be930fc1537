// The palette: the catalogue's input and layer classes by category, then its initializers,
// regularizers and constraints. Enter or a click adds a card wired to the selected one (an
// object card into the selected card's first free socket of its kind); dragging drops it where
// it lands.
import { useMemo } from "react";
import { layersByCategory, type ObjectKind } from "../catalogue";
import type { ClassInfo } from "../gen/kiln/v1/catalogue_pb";
import { addCard, addObjectCard, clearCanvas } from "../graph";
import { getState, useAppState } from "../store";
import { DRAG_OBJECT_TYPE, DRAG_TYPE } from "./Canvas";

const OBJECT_SECTIONS: [ObjectKind, string][] = [
  ["initializers", "Initializers"],
  ["regularizers", "Regularizers"],
  ["constraints", "Constraints"],
];

function Item({ cls, kind }: { cls: ClassInfo; kind?: ObjectKind }) {
  return (
    <li>
      <button
        type="button"
        className="palette-item"
        data-testid={`palette-item-${cls.className}`}
        aria-label={`Add ${cls.className}`}
        title={cls.doc}
        draggable
        onDragStart={(e) => {
          if (kind) e.dataTransfer.setData(DRAG_OBJECT_TYPE, `${kind}:${cls.className}`);
          else e.dataTransfer.setData(DRAG_TYPE, cls.className);
          e.dataTransfer.effectAllowed = "copy";
        }}
        onClick={() => (kind ? addObjectCard(kind, cls.className) : addCard(cls.className))}
      >
        {cls.className}
      </button>
    </li>
  );
}

export function Palette() {
  const cat = useAppState((s) => s.catalogue);
  const groups = useMemo(() => (cat ? layersByCategory(cat) : []), [cat]);
  if (!cat) return <nav className="palette" aria-label="Layer palette" aria-busy="true" />;
  return (
    <nav className="palette" aria-label="Layer palette" data-testid="palette">
      <p className="hint">
        A new card connects to the selected card. The canvas is kept in this browser;{" "}
        <button
          type="button"
          className="link"
          data-testid="clear-canvas"
          onClick={() => {
            if (getState().cards.length === 0 || window.confirm("Remove every card from the canvas?")) clearCanvas();
          }}
        >
          clear it
        </button>
        .
      </p>
      {cat.input && (
        <section>
          <h3>Input</h3>
          <ul>
            <Item cls={cat.input} />
          </ul>
        </section>
      )}
      {groups.map(([category, classes]) => (
        <section key={category} data-testid={`palette-category-${category}`}>
          <h3>{category}</h3>
          <ul>
            {classes.map((c) => (
              <Item key={c.className} cls={c} />
            ))}
          </ul>
        </section>
      ))}
      {OBJECT_SECTIONS.map(([kind, title]) => (
        <section key={kind} data-testid={`palette-${kind}`}>
          <h3>{title}</h3>
          <ul>
            {cat[kind].map((c) => (
              <Item key={c.className} cls={c} kind={kind} />
            ))}
          </ul>
        </section>
      ))}
    </nav>
  );
}
