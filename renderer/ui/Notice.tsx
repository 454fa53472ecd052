// The one message banner: errors and warnings in words, announced to screen readers.
import { useApp } from './context.tsx';

export function NoticeBanner() {
  const notice = useApp((s) => s.notice);
  const dismiss = useApp((s) => s.dismissNotice);
  const chooseTabWallet = useApp((s) => s.chooseTabWallet);
  const inTab = useApp((s) => s.desktop === null);
  if (!notice) return null;
  return (
    <div className={`notice ${notice.severity}`} role={notice.severity === 'error' ? 'alert' : 'status'} data-kind={notice.kind}>
      <div>
        <strong>{notice.title}</strong>
        <p>{notice.text}</p>
        {notice.action === 'another-wallet' && inTab && (
          <button type="button" className="primary" onClick={() => void chooseTabWallet()}>
            Use another wallet in this tab
          </button>
        )}
      </div>
      <button type="button" className="plain" onClick={dismiss} aria-label="Dismiss message">
        ×
      </button>
    </div>
  );
}
