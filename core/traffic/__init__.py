"""Traffic: the rows a served model answered, written, read back and sunk."""
