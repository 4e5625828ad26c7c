import { useState } from 'react';
import { api } from './api';
import { ErrorBox, Loading, useLoad } from './components/load';
import { Browser } from './screens/Browser';
import { Library } from './screens/Library';
import { Models } from './screens/Models';
import { Retrieval } from './screens/Retrieval';
import { Runs } from './screens/Runs';
import { Train } from './screens/Train';
import { Vqa } from './screens/Vqa';

const SCREENS = ['Library', 'Browse', 'Train', 'Runs', 'Retrieval', 'Ask', 'Models'] as const;
type Screen = (typeof SCREENS)[number];

export function App() {
  const [screen, setScreen] = useState<Screen>('Library');
  const [openDataset, setOpenDataset] = useState<string | null>(null);
  // An item another screen asked to show (a retrieval hit).
  const [focus, setFocus] = useState<{ dataset: string; id: number } | null>(null);
  // What several screens pick from, read again whenever the screen changes.
  const [shared] = useLoad(
    () => Promise.all([api.datasets(), api.runs(), api.systemInfo()]),
    [screen],
    true,
  );
  const body = () => {
    if (screen === 'Library')
      return (
        <Library
          open={(d) => {
            setOpenDataset(d);
            setFocus(null);
            setScreen('Browse');
          }}
        />
      );
    if (screen === 'Runs') return <Runs />;
    if (screen === 'Models') return <Models />;
    if (shared.state === 'loading') return <Loading what="the store" />;
    if (shared.state === 'error') return <ErrorBox error={shared.error} />;
    const [datasets, runs, info] = shared.value;
    const names = datasets.map((d) => d.name);
    switch (screen) {
      case 'Browse':
        return <Browser dataset={focus?.dataset ?? openDataset} focus={focus?.id} datasets={names} />;
      case 'Train':
        return <Train datasets={names} presets={info.presets} runs={runs} />;
      case 'Retrieval':
        return (
          <Retrieval
            runs={runs}
            datasets={names}
            open={(dataset, id) => {
              setFocus({ dataset, id });
              setScreen('Browse');
            }}
          />
        );
      case 'Ask':
        return <Vqa runs={runs} datasets={names} />;
    }
  };
  return (
    <div className="app">
      <nav className="sidebar" aria-label="screens">
        <div className="brand">Tessera</div>
        {SCREENS.map((s) => (
          <button
            key={s}
            className={s === screen ? 'active' : ''}
            aria-current={s === screen}
            onClick={() => {
              setFocus(null);
              setScreen(s);
            }}
          >
            {s}
          </button>
        ))}
      </nav>
      <main>{body()}</main>
    </div>
  );
}
