"""The API's routes, one module per area; each stays thin: parse → call the ledger → shape."""
