import { useEffect, useRef } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

export type Series = { label: string; x: number[]; y: number[] };

const COLORS = ['#2b6cb0', '#e08e2b', '#3a9d6e', '#c84b4b', '#7a5cb8', '#2f9ca8', '#8a8a2a', '#b85c8a'];

/** Lines over steps with uPlot; series with different steps are joined on one x axis. */
export function LineChart({ series, height = 260, title }: { series: Series[]; height?: number; title?: string }) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const el = box.current;
    if (!el || series.length === 0) return;
    const xs = Array.from(new Set(series.flatMap((s) => s.x))).sort((a, b) => a - b);
    const at = new Map(xs.map((x, i) => [x, i]));
    const ys = series.map((s) => {
      const col: (number | null)[] = new Array(xs.length).fill(null);
      s.x.forEach((x, i) => (col[at.get(x)!] = s.y[i]));
      return col;
    });
    const plot = new uPlot(
      {
        title,
        width: Math.max(el.clientWidth, 320),
        height,
        scales: { x: { time: false } },
        axes: [{ label: 'step' }, {}],
        series: [
          { label: 'step' },
          ...series.map((s, i) => ({ label: s.label, stroke: COLORS[i % COLORS.length], width: 1.5, spanGaps: true })),
        ],
      },
      [xs, ...ys] as uPlot.AlignedData,
      el,
    );
    const resize = new ResizeObserver(() => plot.setSize({ width: Math.max(el.clientWidth, 320), height }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      plot.destroy();
    };
  }, [series, height, title]);
  return <div className="chart" ref={box} data-series={series.map((s) => s.label).join('|')} />;
}
