// Renders the app (or one view) on a given store, for the view tests.
import { render } from '@testing-library/react';
import type { ReactNode } from 'react';
import type { AppStore } from '../../renderer/state/store.ts';
import { App } from '../../renderer/ui/App.tsx';
import { StoreProvider } from '../../renderer/ui/context.tsx';

export function renderWith(store: AppStore, node: ReactNode = <App />) {
  return render(<StoreProvider store={store}>{node}</StoreProvider>);
}
