const UNITS = ["B", "KiB", "MiB", "GiB", "TiB"];

/** Bytes for people: "1.5 GiB", "512 B". */
export function formatSize(bytes: number): string {
  let value = bytes;
  let unit = 0;
  // 1023.96 KiB would read "1024.0 KiB": round up into the next unit instead
  while (unit < UNITS.length - 1 && (unit === 0 ? value >= 1024 : value >= 1023.95)) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${UNITS[unit]}`;
}

/** A transfer rate for people: "12.3 MiB/s"; "--" while there is none to tell. */
export function formatRate(bytesPerSecond: number | undefined): string {
  if (bytesPerSecond === undefined || !Number.isFinite(bytesPerSecond) || bytesPerSecond < 0) return "--";
  return `${formatSize(Math.round(bytesPerSecond))}/s`;
}

/** A time left or taken, for people: "42s", "3m05s", "2h07m"; "--" when unknown. */
export function formatDuration(seconds: number | undefined): string {
  if (seconds === undefined || !Number.isFinite(seconds) || seconds < 0) return "--";
  const whole = Math.ceil(seconds);
  if (whole < 60) return `${whole}s`;
  if (whole < 3600) return `${Math.floor(whole / 60)}m${String(whole % 60).padStart(2, "0")}s`;
  const minutes = Math.floor(whole / 60);
  if (minutes >= 100 * 60) return ">99h";
  return `${Math.floor(minutes / 60)}h${String(minutes % 60).padStart(2, "0")}m`;
}
