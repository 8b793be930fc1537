// The React Flow canvas. Cards and wires live in the store; React Flow keeps only where each
// card sits and its measured size, so dragging a card never touches the server state. Two kinds
// of wire: tensors (an output to a card's input) and objects (an object card to a socket).
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
  type OnConnectStart,
} from "@xyflow/react";
import { useCallback, useEffect, useMemo, useState, type DragEvent } from "react";
import type { ObjectKind } from "../catalogue";
import { addCard, addObjectCard, canConnect, canLink, connect, disconnect, link, moveCard, removeCard, select, unlink } from "../graph";
import { cardById, getState, setState, setStatus, useAppState } from "../store";
import { CardNode } from "./Cards";
import { OBJECT_HANDLE, SOCKET_PREFIX } from "./ObjectWires";

const nodeTypes = { card: CardNode };

export const DRAG_TYPE = "application/x-kiln-class";
export const DRAG_OBJECT_TYPE = "application/x-kiln-object"; // "<kind>:<ClassName>"

function portFrom(c: Connection | Edge) {
  return { card: c.source, output: Number((c.sourceHandle ?? "out0").replace(/^out/, "")) || 0 };
}

// The socket an object wire ends at, or undefined for a tensor wire.
function socketOf(c: Connection | Edge): string | undefined {
  if (c.sourceHandle !== OBJECT_HANDLE) return undefined;
  return c.targetHandle?.startsWith(SOCKET_PREFIX) ? c.targetHandle.slice(SOCKET_PREFIX.length) : "";
}

function setConnecting(kind: ObjectKind | undefined): void {
  if (getState().connecting !== kind) setState((s) => ({ ...s, connecting: kind }));
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
      cards.flatMap((c) => [
        ...c.inputs.map((p, i) => {
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
        ...Object.entries(c.links ?? {}).map(([arg, objectId]) => {
          const id = `o:${c.id}:${arg}`;
          return {
            id,
            source: objectId,
            sourceHandle: OBJECT_HANDLE,
            target: c.id,
            targetHandle: `${SOCKET_PREFIX}${arg}`,
            selected: selectedEdges.has(id),
            className: "object-wire",
            ariaLabel: `wire from ${objectId} to ${c.id}.${arg}`,
          };
        }),
      ]),
    [cards, selectedEdges],
  );

  const handleNodesChange = useCallback(
    (changes: NodeChange[]) => {
      for (const ch of changes) {
        if (ch.type === "remove") removeCard(ch.id);
        if (ch.type === "select" && ch.selected) select(ch.id);
        if (ch.type === "position" && ch.dragging === false && ch.position) moveCard(ch.id, ch.position);
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
    for (const ch of changes) {
      const o = ch.type === "remove" ? /^o:(.*):([^:]+)$/.exec(ch.id) : null;
      if (o) unlink(o[1], o[2]);
    }
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
    const socket = socketOf(c);
    const why = socket === undefined ? connect(portFrom(c), c.target) : link(c.source, c.target, socket);
    if (why) setStatus(why, true);
  }, []);

  const isValidConnection = useCallback((c: Connection | Edge) => {
    const socket = socketOf(c);
    if (socket === undefined) return c.targetHandle === "in" && !canConnect(getState(), portFrom(c), c.target);
    return !canLink(getState(), c.source, c.target, socket);
  }, []);

  // Dragging an object card's wire opens the sockets of its kind on every card.
  const onConnectStart: OnConnectStart = useCallback((_, { nodeId, handleId }) => {
    if (handleId === OBJECT_HANDLE && nodeId) setConnecting(cardById(getState(), nodeId)?.objectKind);
  }, []);
  const onConnectEnd = useCallback(() => setConnecting(undefined), []);

  const onDrop = useCallback(
    (e: DragEvent) => {
      const className = e.dataTransfer.getData(DRAG_TYPE);
      const [kind, objectClass] = e.dataTransfer.getData(DRAG_OBJECT_TYPE).split(":");
      if (!className && !objectClass) return;
      e.preventDefault();
      select(undefined);
      const at = flow.screenToFlowPosition({ x: e.clientX, y: e.clientY });
      if (className) addCard(className, at);
      else addObjectCard(kind as ObjectKind, objectClass, at);
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
        onConnectStart={onConnectStart}
        onConnectEnd={onConnectEnd}
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
