// A live line chart of a job's logs (uPlot: small, and redraws thousands of points per second
// without effort). The plot is rebuilt only when the set of series changes; new points go in
// through setData.
import { useEffect, useRef } from "react";
import uPlot from "uplot";
import type { Series } from "../job";

const COLORS = ["#1f6feb", "#d9480f", "#2b8a3e", "#ae3ec9", "#e67700", "#0b7285", "#c2255c", "#5c940d"];

interface Props {
  title: string;
  xLabel: string;
  series: Series;
  version: number; // changes whenever points were added
  testid: string;
  points?: boolean; // mark each point (few, e.g. epochs)
}

function toData(series: Series): uPlot.AlignedData {
  return [series.x, ...[...series.y.values()]] as uPlot.AlignedData;
}

export function Chart({ title, xLabel, series, version, testid, points = false }: Props) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const names = [...series.y.keys()].join("\n");

  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const opts: uPlot.Options = {
      title,
      width: Math.max(200, el.clientWidth),
      height: 180,
      scales: { x: { time: false } },
      axes: [{ label: xLabel }, {}],
      series: [
        { label: xLabel },
        ...names
          .split("\n")
          .filter(Boolean)
          .map((name, i) => ({
            label: name,
            stroke: COLORS[i % COLORS.length],
            width: 1.5,
            dash: name.startsWith("val_") ? [6, 4] : undefined,
            spanGaps: true,
            points: { show: points },
          })),
      ],
    };
    const p = new uPlot(opts, toData(series), el);
    plot.current = p;
    const resize = new ResizeObserver(() => p.setSize({ width: Math.max(200, el.clientWidth), height: 180 }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      p.destroy();
      plot.current = null;
    };
    // Rebuilt for a new series set only; data updates go through the effect below.
  }, [names, title, xLabel, points]);

  useEffect(() => {
    plot.current?.setData(toData(series));
  }, [series, version]);

  const last = [...series.y].map(([k, v]) => `${k} ${v[v.length - 1]?.toFixed(4) ?? "–"}`).join(", ");
  return <div className="chart" ref={box} data-testid={testid} role="img" aria-label={`${title}: ${series.x.length} points${last ? `; latest ${last}` : ""}`} data-points={series.x.length} />;
}
