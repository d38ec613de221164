"""Redis: connection, key names, scripts and the functions that read and write."""
