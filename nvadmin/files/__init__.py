"""Writing files safely: atomic replacement and spreadsheet-safe cells."""
