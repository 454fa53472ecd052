// A uPlot line chart that follows its data: created once, then setData on each change, and
// resized to its box (narrow screens included). A text summary goes with it for screen readers.
import { useEffect, useRef } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

export interface ChartProps {
  label: string;
  xLabel: string;
  yLabel: string;
  x: number[];
  y: number[];
  color: string;
  summary: string;
  testId?: string;
}

/** Whether this document can draw on a canvas (uPlot needs 2D; test DOMs have none). */
function canvasAvailable(): boolean {
  try {
    return document.createElement('canvas').getContext('2d') !== null;
  } catch {
    return false;
  }
}

export function LineChart({ label, xLabel, yLabel, x, y, color, summary, testId }: ChartProps) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);

  useEffect(() => {
    const el = box.current;
    if (!el || !canvasAvailable()) return; // the summary below still says it in words
    const width = Math.max(200, el.clientWidth || 320);
    plot.current = new uPlot(
      {
        width,
        height: 180,
        scales: { x: { time: false } },
        // Steps and rounds are whole numbers: no 1.5 ticks.
        axes: [{ label: xLabel, size: 36, incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000] }, { label: yLabel, size: 56 }],
        series: [{ label: xLabel }, { label: yLabel, stroke: color, width: 2, points: { show: x.length < 40 } }],
        legend: { show: false },
        cursor: { show: true },
      },
      [x, y],
      el,
    );
    const observer = typeof ResizeObserver === 'function' ? new ResizeObserver(() => plot.current?.setSize({ width: Math.max(200, el.clientWidth), height: 180 })) : null;
    observer?.observe(el);
    return () => {
      observer?.disconnect();
      plot.current?.destroy();
      plot.current = null;
    };
    // Made once; data flows in through the effect below.
  }, []);

  useEffect(() => {
    plot.current?.setData([x, y]);
  }, [x, y]);

  return (
    <figure className="chart" data-testid={testId} data-points={x.length}>
      <figcaption>{label}</figcaption>
      <div ref={box} role="img" aria-label={`${label}: ${summary}`} />
      <p className="summary">{summary}</p>
    </figure>
  );
}
