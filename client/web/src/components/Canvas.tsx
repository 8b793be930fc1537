// The React Flow canvas. Cards and wires live in the store; React Flow keeps only where each
// card sits and its measured size, so dragging a card never touches the server state.
import {
  Background,
  Controls,
  MiniMap,
  ReactFlow,
  useNodesState,
  useReactFlow,
  type Connection,
  type Edge,
  type EdgeChange,
  type Node,
  type NodeChange,
} from "@xyflow/react";
import { useCallback, useEffect, useMemo, useState, type DragEvent } from "react";
import { addCard, canConnect, connect, disconnect, removeCard, select } from "../graph";
import { getState, setStatus, useAppState } from "../store";
import { CardNode } from "./Cards";

const nodeTypes = { card: CardNode };

export const DRAG_TYPE = "application/x-kiln-class";

function portFrom(c: Connection | Edge) {
  return { card: c.source, output: Number((c.sourceHandle ?? "out0").replace(/^out/, "")) || 0 };
}

export function Canvas() {
  const cards = useAppState((s) => s.cards);
  const selected = useAppState((s) => s.selected);
  const [nodes, setNodes, onNodesChange] = useNodesState<Node>([]);
  const [selectedEdges, setSelectedEdges] = useState<Set<string>>(new Set());
  const flow = useReactFlow();

  // New cards appear where the graph placed them; existing ones keep where the user put them.
  // One new card is brought into view; a loaded graph is fitted to the canvas.
  useEffect(() => {
    setNodes((prev) => {
      const byId = new Map(prev.map((n) => [n.id, n]));
      const added = cards.filter((c) => !byId.has(c.id));
      if (added.length === 1 && prev.length > 0) {
        const p = added[0].position;
        setTimeout(() => void flow.setCenter(p.x + 125, p.y + 120, { zoom: flow.getZoom(), duration: 200 }), 0);
      } else if (added.length > 1 || (added.length === 1 && prev.length === 0)) {
        setTimeout(() => void flow.fitView({ maxZoom: 1, duration: 200 }), 50);
      }
      return cards.map(
        (c) =>
          byId.get(c.id) ?? {
            id: c.id,
            type: "card",
            position: c.position,
            data: {},
            dragHandle: ".card header",
          },
      );
    });
  }, [cards, setNodes, flow]);

  useEffect(() => {
    setNodes((prev) => prev.map((n) => (n.selected === (n.id === selected) ? n : { ...n, selected: n.id === selected })));
  }, [selected, setNodes]);

  const edges: Edge[] = useMemo(
    () =>
      cards.flatMap((c) =>
        c.inputs.map((p, i) => {
          const id = `e:${c.id}:${i}`;
          return {
            id,
            source: p.card,
            sourceHandle: `out${p.output}`,
            target: c.id,
            targetHandle: "in",
            selected: selectedEdges.has(id),
            label: c.inputs.length > 1 ? String(i) : undefined,
            ariaLabel: `wire from ${p.card} to ${c.id}`,
          };
        }),
      ),
    [cards, selectedEdges],
  );

  const handleNodesChange = useCallback(
    (changes: NodeChange[]) => {
      for (const ch of changes) {
        if (ch.type === "remove") removeCard(ch.id);
        if (ch.type === "select" && ch.selected) select(ch.id);
      }
      onNodesChange(changes.filter((ch) => ch.type !== "remove"));
    },
    [onNodesChange],
  );

  const handleEdgesChange = useCallback((changes: EdgeChange[]) => {
    // Remove from the highest input index down, so that earlier indices stay valid.
    const removals = changes
      .filter((ch) => ch.type === "remove")
      .map((ch) => /^e:(.*):(\d+)$/.exec(ch.id))
      .filter((m): m is RegExpExecArray => m !== null)
      .sort((a, b) => Number(b[2]) - Number(a[2]));
    for (const m of removals) disconnect(m[1], Number(m[2]));
    const selects = changes.filter((ch) => ch.type === "select");
    if (selects.length) {
      setSelectedEdges((prev) => {
        const next = new Set(prev);
        for (const ch of selects) {
          if (ch.type !== "select") continue;
          if (ch.selected) next.add(ch.id);
          else next.delete(ch.id);
        }
        return next;
      });
    }
  }, []);

  const onConnect = useCallback((c: Connection) => {
    const why = connect(portFrom(c), c.target);
    if (why) setStatus(why, true);
  }, []);

  const isValidConnection = useCallback((c: Connection | Edge) => !canConnect(getState(), portFrom(c), c.target), []);

  const onDrop = useCallback(
    (e: DragEvent) => {
      const className = e.dataTransfer.getData(DRAG_TYPE);
      if (!className) return;
      e.preventDefault();
      select(undefined);
      addCard(className, flow.screenToFlowPosition({ x: e.clientX, y: e.clientY }));
    },
    [flow],
  );

  return (
    <div className="canvas" data-testid="canvas" onDragOver={(e) => e.preventDefault()} onDrop={onDrop}>
      <ReactFlow
        nodes={nodes}
        edges={edges}
        nodeTypes={nodeTypes}
        onNodesChange={handleNodesChange}
        onEdgesChange={handleEdgesChange}
        onConnect={onConnect}
        isValidConnection={isValidConnection}
        onPaneClick={() => select(undefined)}
        deleteKeyCode={["Delete", "Backspace"]}
        minZoom={0.1}
        defaultViewport={{ x: 0, y: 0, zoom: 1 }}
        ariaLabelConfig={{ "node.a11yDescription.default": "Card. Press Enter to select it, Delete to remove it, arrow keys to move it." }}
      >
        <Background />
        <Controls />
        <MiniMap pannable zoomable ariaLabel="overview of the cards" />
      </ReactFlow>
    </div>
  );
}
