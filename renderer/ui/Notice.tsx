// The one message banner: errors and warnings in words, announced to screen readers.
import { useApp } from './context.tsx';

export function NoticeBanner() {
  const notice = useApp((s) => s.notice);
  const dismiss = useApp((s) => s.dismissNotice);
  if (!notice) return null;
  return (
    <div className={`notice ${notice.severity}`} role={notice.severity === 'error' ? 'alert' : 'status'} data-kind={notice.kind}>
      <div>
        <strong>{notice.title}</strong>
        <p>{notice.text}</p>
      </div>
      <button type="button" className="plain" onClick={dismiss} aria-label="Dismiss message">
        ×
      </button>
    </div>
  );
}
