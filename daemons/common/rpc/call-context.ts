// The server-side state of one call in flight, which is also the handler's `ctx`. The AbortSignal,
// its deadline timer and the per-request logger are created only when a handler asks for them:
// most small calls never do, and each costs an allocation or a timer on the hot path.
import type { Logger } from '../log.js';
import { crc32c } from '../crc32c.js';
import { crc32cOfTail } from '../crc32c-combine.js';
import { ThreeFsError } from '../errors.js';
import type { Frame } from './frame.js';
import type { CallContext, ConnectionScope } from './service.js';

export class ServerCall implements CallContext {
  private controller: AbortController | undefined;
  private abortReason: ThreeFsError | undefined;
  private deadlineTimer: NodeJS.Timeout | undefined;
  private logger: Logger | undefined;
  private finished = false;
  readonly deadline: number | undefined;
  readonly payload: Buffer | undefined;
  private knownPayloadCrc: number | undefined;

  /** `frame` has passed its data CRC check (both transports verify before dispatching). */
  constructor(
    readonly peer: string,
    readonly connection: ConnectionScope,
    readonly requestId: number,
    private readonly frame: Frame,
    timeoutMs: number,
    readonly startedAt: number,
    private readonly parentLog: Logger,
    private readonly labels: { service: string; method: string },
  ) {
    this.deadline = timeoutMs > 0 ? Date.now() + timeoutMs : undefined;
    this.payload = frame.payload;
  }

  get payloadCrc(): number {
    if (this.knownPayloadCrc === undefined) {
      const { header, body, payload } = this.frame;
      this.knownPayloadCrc =
        payload === undefined || payload.length === 0
          ? 0
          : crc32cOfTail(header.dataCrc, crc32c(body), payload.length);
    }
    return this.knownPayloadCrc;
  }

  get signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.abortReason !== undefined) {
        this.controller.abort(this.abortReason);
      } else if (this.deadline !== undefined && !this.finished) {
        const remaining = this.deadline - Date.now();
        if (remaining <= 0) this.abort(this.deadlineError());
        else this.deadlineTimer = setTimeout(() => this.abort(this.deadlineError()), remaining);
      }
    }
    return this.controller.signal;
  }

  get log(): Logger {
    this.logger ??= this.parentLog.child({
      requestId: this.requestId,
      peer: this.peer,
      ...this.labels,
    });
    return this.logger;
  }

  /** Aborts the handler's signal (cancel frame, deadline, connection closed). First reason wins. */
  abort(reason: ThreeFsError): void {
    if (this.abortReason !== undefined || this.finished) return;
    this.abortReason = reason;
    this.controller?.abort(reason);
  }

  get aborted(): ThreeFsError | undefined {
    return this.abortReason;
  }

  /** The call has replied: release its timer. */
  finish(): void {
    this.finished = true;
    if (this.deadlineTimer !== undefined) clearTimeout(this.deadlineTimer);
  }

  private deadlineError(): ThreeFsError {
    return new ThreeFsError('DEADLINE_EXCEEDED', `deadline of request ${this.requestId} passed`);
  }
}
