/** A startup failure with one line for the operator, naming the config key (or flag) to change (D15). */
export class StartupError extends Error {
  constructor(
    message: string,
    readonly key?: string,
  ) {
    super(message);
    this.name = 'StartupError';
  }
}
