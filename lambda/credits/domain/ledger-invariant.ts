/** A ledger answer this code does not expect: a bug or a misconfigured ledger, never user input. */
export class LedgerInvariantError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LedgerInvariantError';
  }
}
